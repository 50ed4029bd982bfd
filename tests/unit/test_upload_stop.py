"""The Library tab's Stop: which uploads it reaches, per browser session."""

import pytest

from app.ui.library_tab import _Stops

pytestmark = pytest.mark.unit


def test_stop_reaches_every_upload_of_its_session_until_the_last_one_ends():
    stops = _Stops()
    assert not stops.stop("a")  # nothing dropped: a Stop means nothing
    stops.arm("a")
    stops.arm("a")  # a second batch dropped while the first runs (it waits in the queue)
    stops.arm("b")
    running = stops.event("a")
    assert running is not None and stops.stop("a") and running.is_set()
    assert not stops.event("b").is_set()  # another user's upload goes on
    stops.disarm("a")
    assert stops.event("a") is running  # the queued batch sees the same Stop
    stops.disarm("a")
    assert stops.event("a") is None
    stops.arm("a")  # a later upload starts afresh
    assert not stops.event("a").is_set()
