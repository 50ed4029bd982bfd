"""Many users, one model: concurrent API clients are queued, each gets its own answer."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file

from tests.pdf_factory import write_pdf

pytestmark = [pytest.mark.ui, pytest.mark.slow]
TOPICS = ["volcanoes", "penguins", "violins", "tunnels", "orchids", "comets", "bridges", "glaciers"]


@pytest.fixture(scope="module")
def topic_library(running_app, tmp_path_factory):
    folder = tmp_path_factory.mktemp("topics")
    files = [
        write_pdf(
            folder / f"{topic}.pdf",
            [f"All about {topic}. The {topic} code word is {topic.upper()}-{n}."],
        )
        for n, topic in enumerate(TOPICS)
    ]
    report = Client(running_app.url, verbose=False).predict(
        [handle_file(str(f)) for f in files], api_name="/ingest"
    )
    assert {r["status"] for r in report} <= {"ok", "skipped"}
    return running_app


def ask(url: str, topic: str) -> tuple[str, dict, float]:
    client = Client(url, verbose=False)
    start = time.monotonic()
    job = client.submit(
        f"What is the code word about {topic}?", True, f"{topic}.pdf", api_name="/chat"
    )
    updates = list(job)
    return topic, updates[-1], time.monotonic() - start


def test_eight_concurrent_clients_each_get_their_own_answer(topic_library):
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: ask(topic_library.url, t), TOPICS))
    wall = time.monotonic() - start
    for topic, final, _ in results:
        assert final["done"] and final["text"].strip()
        assert {s["file"] for s in final["sources"]} == {f"{topic}.pdf"}, (
            "sources of another client"
        )
        others = [t.upper() for t in TOPICS if t != topic]
        assert not any(o in final["text"] for o in others), (
            f"{topic} answer contains another's text"
        )
    slowest = max(r[2] for r in results)
    print(
        f"\n8 concurrent clients: all answered in {wall:.1f} s "
        f"(slowest {slowest:.1f} s, queued one at a time)"
    )


def test_an_abandoned_stream_does_not_block_the_next_user(topic_library):
    client = Client(topic_library.url, verbose=False)
    job = client.submit(
        "Tell me everything about volcanoes.", True, "volcanoes.pdf", api_name="/chat"
    )
    for _ in job:
        job.cancel()  # the user closes the tab mid-answer
        break
    _, final, seconds = ask(topic_library.url, "penguins")
    assert final["done"] and {s["file"] for s in final["sources"]} == {"penguins.pdf"}
    assert seconds < 60


def test_ingest_while_chatting(topic_library, tmp_path):
    extra = write_pdf(
        tmp_path / "lanterns.pdf",
        [f"Page {p}. Paper lanterns glow at the festival." for p in range(30)],
    )
    client = Client(topic_library.url, verbose=False)
    chat = client.submit(
        "What is the code word about comets?", True, "comets.pdf", api_name="/chat"
    )
    ingest = Client(topic_library.url, verbose=False).submit(
        [handle_file(str(extra))], api_name="/ingest"
    )
    final = list(chat)[-1]
    report = ingest.result(timeout=300)
    assert final["done"] and {s["file"] for s in final["sources"]} == {"comets.pdf"}
    assert report[0]["status"] == "ok" and report[0]["pages"] == 30


def test_the_same_pdf_uploaded_by_two_users_at_once_is_added_once_and_neither_fails(
    running_app, tmp_path
):
    """Both uploads are one file on the server (Gradio names it by its bytes), and ingests run
    one at a time: the first deletes the upload once indexed, under the second's feet."""
    pdf = write_pdf(tmp_path / "twice.pdf", [f"The twice code word is TWICE-{time.time_ns()}."])

    def upload(_: int) -> dict:
        client = Client(running_app.url, verbose=False)
        (result,) = client.predict([handle_file(str(pdf))], api_name="/ingest")
        return result

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(upload, range(2)))
    assert sorted(r["status"] for r in results) == ["ok", "skipped"], results
    skipped = next(r for r in results if r["status"] == "skipped")
    assert "already in the library" in skipped["message"]
    assert (skipped["pages"], skipped["chunks"]) == (1, 1)
