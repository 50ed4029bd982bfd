"""`python -m app ...`: what `python launch.py ...` runs once the environment is ready."""

import sys

from app import privacy

privacy.apply()  # before any third-party import reads its environment

from app.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
