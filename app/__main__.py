"""`python -m app ...`: what `python launch.py ...` runs once the environment is ready."""

import sys

from app import privacy

if __name__ == "__main__":  # guarded: PDF-reader worker processes import this module too
    privacy.apply()  # before any third-party import reads its environment

    from app.cli import main

    sys.exit(main(sys.argv[1:]))
