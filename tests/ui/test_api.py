"""The running app's named endpoints through gradio_client, as other programs use them."""

import pytest
from gradio_client import Client, handle_file

from tests.conftest import AURORA_PAGE, start_app

pytestmark = [pytest.mark.ui, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(running_app, aurora_pdf):
    client = Client(running_app.url, verbose=False)
    report = client.predict([handle_file(str(aurora_pdf))], api_name="/ingest")
    assert [(r["file"], r["status"]) for r in report] in (
        [("aurora-report.pdf", "ok")],
        [("aurora-report.pdf", "skipped")],  # the browser test may have added it first
    )
    return client


def test_an_upload_is_kept_once_by_the_library_and_not_left_in_the_upload_folder(
    client, running_app, aurora_pdf
):
    assert (running_app.data_dir / "uploads").is_dir()  # Gradio's uploads land in the data dir
    assert not list((running_app.data_dir / "uploads").rglob("*.pdf"))
    kept = list((running_app.data_dir / "files").glob("*.pdf"))
    assert [p.read_bytes() for p in kept] == [aurora_pdf.read_bytes()]


def test_named_endpoints_are_published(client):
    assert {"/chat", "/search", "/ingest"} <= set(
        client.view_api(return_format="dict")["named_endpoints"]
    )


def test_search_returns_hits_with_pages(client):
    hits = client.predict("Aurora launch code", 3, "", api_name="/search")
    assert len(hits) == 3
    assert (hits[0]["file"], hits[0]["page"]) == ("aurora-report.pdf", AURORA_PAGE)
    assert hits[0]["score"] >= hits[-1]["score"]


def test_chat_streams_partial_updates_then_the_answer_with_sources(client):
    job = client.submit(
        "What is the launch code of the Aurora project?", True, "", api_name="/chat"
    )
    updates = list(job)
    assert len(updates) >= 3, "the answer should arrive in several partial updates"
    texts = [u["text"] for u in updates]
    assert all(len(a) <= len(b) for a, b in zip(texts, texts[1:])), "each update extends the last"
    final = updates[-1]
    assert final["done"] and "7341" in final["text"]
    assert final["timing"]["tokens"] > 1 and final["timing"]["tokens_per_s"] > 0
    assert "7341" not in final["unverified"], "a figure copied from the page is not flagged"
    given = " ".join(s["text"] for s in final["sources"]).replace(",", "")
    for figure in final["unverified"]:  # whatever the model made up is in no source
        assert figure.strip("$%").replace(",", "") not in given
    assert (final["sources"][0]["file"], final["sources"][0]["page"]) == (
        "aurora-report.pdf",
        AURORA_PAGE,
    )


def test_ingesting_a_broken_file_reports_it_and_the_app_keeps_working(client, tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage")
    report = client.predict([handle_file(str(bad))], api_name="/ingest")
    assert report[0]["status"] == "failed" and report[0]["file"] == "broken.pdf"
    assert client.predict("Aurora", 1, "", api_name="/search")[0]["file"] == "aurora-report.pdf"


@pytest.fixture(scope="module")
def own_client(tmp_path_factory):
    """A client of an app of its own: the shared app's library is other tests' business."""
    with start_app(tmp_path_factory.mktemp("own-app")) as app:
        client = Client(app.url, verbose=False)
        yield client
        client.close()


def test_two_files_of_one_name_uploaded_together_are_two_documents(own_client, tmp_path):
    from tests.pdf_factory import write_pdf

    one = write_pdf(tmp_path / "a" / "minutes.pdf", ["Minutes of the March board meeting."])
    two = write_pdf(tmp_path / "b" / "minutes.pdf", ["Minutes of the April staff meeting."])
    report = own_client.predict([handle_file(str(one)), handle_file(str(two))], api_name="/ingest")
    assert [(r["file"], r["status"]) for r in report] == [
        ("minutes.pdf", "ok"),
        ("minutes (2).pdf", "ok"),
    ]
    assert all("replaced" not in r["message"] for r in report)
    hits = own_client.predict("meeting", 5, "minutes (2).pdf", api_name="/search")
    assert [h["text"] for h in hits] == ["Minutes of the April staff meeting."]


def test_ingest_streams_each_files_outcome_and_a_cancelled_job_stops_the_batch(
    own_client, tmp_path
):
    """A program that cancels its ingest job stops the batch as the page's Stop adding does:
    the file that was done stays, the one under way and those after it are not added."""
    import time

    client = own_client

    from tests.pdf_factory import write_pdf

    first = write_pdf(tmp_path / "cancel-first.pdf", ["Tide tables for the northern harbour."])
    long = write_pdf(
        tmp_path / "cancel-long.pdf",
        [f"Log {n}: pump {n % 17} ran {n * 3} minutes at {n * 7} litres." for n in range(1500)],
    )
    after = write_pdf(tmp_path / "cancel-after.pdf", ["Lighthouse keeper rota for March."])
    files = [handle_file(str(p)) for p in (first, long, after)]
    job = client.submit(files, api_name="/ingest")
    deadline = time.monotonic() + 120
    while not any(out and out[0]["file"] == "cancel-first.pdf" for out in job.outputs()):
        assert time.monotonic() < deadline, job.outputs()
        assert not job.done(), job.outputs()  # the long file must still be under way
        time.sleep(0.1)
    assert [r["status"] for r in job.outputs()[-1]] == ["ok"]  # streamed as it ended
    job.cancel()
    # Batches run one at a time: this one starts once the cancelled one has really ended.
    later = write_pdf(tmp_path / "cancel-later.pdf", ["Fog horn maintenance notes."])
    report = client.predict([handle_file(str(later))], api_name="/ingest")
    assert [(r["file"], r["status"]) for r in report] == [("cancel-later.pdf", "ok")]

    hits = client.predict("pump log tide lighthouse fog harbour", 50, "", api_name="/search")
    assert {h["file"] for h in hits} - {"minutes.pdf", "minutes (2).pdf"} == {
        "cancel-first.pdf",
        "cancel-later.pdf",
    }


@pytest.mark.parametrize(
    "route",
    [
        "gradio_api/file=/etc/passwd",
        "gradio_api/file=../../../../etc/passwd",
        "gradio_api/file=%2Fetc%2Fpasswd",
        "file=/etc/passwd",
    ],
)
def test_file_routes_serve_nothing_outside_the_data_dir(running_app, route):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(running_app.url + route, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, b""
    assert status in (200, 400, 403, 404)
    assert b"root:" not in body
