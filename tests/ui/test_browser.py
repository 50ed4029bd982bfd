"""A person's session in headless Chromium: upload a PDF, ask, watch the answer stream, read the
source and open the PDF at its page. Saves screenshots under test-artifacts/ for review."""

import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from tests.conftest import ARTIFACTS, AURORA_PAGE

pytestmark = [pytest.mark.ui, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(running_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.requests_seen = []
        page.on("request", lambda r: page.requests_seen.append(r.url))
        yield page
        context.close()
        browser.close()


BOT_BUBBLES = "#quipu-chatbot .message.bot, #quipu-chatbot [data-testid='bot']"


def bot_text(page) -> str:
    bubbles = page.locator(BOT_BUBBLES)
    return bubbles.last.inner_text() if bubbles.count() else ""


def test_upload_ask_stream_and_cite_in_the_browser(page, running_app, aurora_pdf):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(running_app.url)
    page.get_by_role("tab", name="Library").click()
    page.locator("#quipu-upload input[type=file]").set_input_files(str(aurora_pdf))
    expect(page.locator("#quipu-ingest-report")).to_contain_text("5 pages", timeout=120_000)
    expect(page.locator("#quipu-library")).to_contain_text("aurora-report.pdf", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "library.png"), full_page=True)
    # The upload was indexed and kept once, in the library's own folder; none is left behind.
    assert not [p for p in (running_app.data_dir / "uploads").rglob("*.pdf")]
    kept = list((running_app.data_dir / "files").glob("*.pdf"))
    assert [p.read_bytes() for p in kept] == [aurora_pdf.read_bytes()]

    # Find passages, no model involved: the best first, the query's words marked, its page a link.
    page.locator("#quipu-find textarea").fill("launch code of Aurora")
    page.locator("#quipu-find textarea").press("Enter")
    found = page.locator("#quipu-found")
    expect(found).to_contain_text(f"[1] aurora-report.pdf — p. {AURORA_PAGE}", timeout=30_000)
    first = found.locator(".quipu-source").first
    assert {m.lower() for m in first.locator("mark").all_inner_texts()} == {
        "launch",
        "code",
        "aurora",
    }
    href = first.locator("a.quipu-open").get_attribute("href")
    assert href.endswith(f"#page={AURORA_PAGE}"), href
    page.screenshot(path=str(ARTIFACTS / "found.png"), full_page=True)

    page.get_by_role("tab", name="Chat").click()
    page.locator("#quipu-question textarea").fill("What is the launch code of the Aurora project?")
    page.locator("#quipu-send").click()

    seen: list[str] = []
    sources_while_writing = False
    deadline = time.monotonic() + 120
    sources = page.locator("#quipu-sources")
    while time.monotonic() < deadline:
        text = bot_text(page)
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        if "tokens/s" in text:  # the last line under a finished answer
            break
        sources_while_writing |= "aurora-report.pdf" in sources.inner_text()
        time.sleep(0.02)
    final = bot_text(page)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

    assert "7341" in final
    assert len(seen) >= 3, f"expected the answer to stream in, saw {seen}"
    assert sources_while_writing, "the passages show while the answer is being written"
    # Copy gives the answer and its sources as text: no HTML, no path to the kept PDF.
    page.locator("#quipu-chatbot").get_by_label("Copy message").last.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "7341" in copied and f"Sources: [1] aurora-report.pdf, p. {AURORA_PAGE}" in copied
    assert "<" not in copied and "file=" not in copied and "tokens/s" not in copied
    # The same for an answer's linked [n] marks (the model did not write one here).
    page.evaluate(
        "navigator.clipboard.writeText(\"7341 <a class='quipu-cite' href='x' title='p. 3'>[1]"
        "</a>.\\n\\n<small>Sources: [1] <a href='x'>p. 3</a></small>\")"
    )
    assert page.evaluate("navigator.clipboard.readText()") == "7341 [1].\n\nSources: [1] p. 3"
    assert f"[1] aurora-report.pdf — p. {AURORA_PAGE}" in sources.inner_text()

    # The cited page opens the PDF itself, at that page, in a new tab.
    link = sources.locator("a.quipu-open").first
    href = link.get_attribute("href")
    assert href.endswith(f"#page={AURORA_PAGE}"), href
    fetched = page.request.get(urljoin(page.url, href))
    assert fetched.status == 200
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.body() == aurora_pdf.read_bytes()
    with page.context.expect_page() as opened:
        link.click()
    assert opened.value.url.endswith(f"#page={AURORA_PAGE}"), opened.value.url
    opened.value.close()

    # The conversation is listed in the sidebar and survives a reload.
    page.reload()
    page.locator("#quipu-conversations").get_by_text("What is the launch code").first.click()
    page.locator("#quipu-chatbot").get_by_text("7341").first.wait_for(timeout=30_000)
    assert re.search(r"first words after [\d.]+ s · \d+ tokens · \d+ tokens/s", bot_text(page))

    # The conversation exports as Markdown: question, answer, and the pages it came from.
    page.locator("#quipu-export").click()
    download_link = page.locator("#quipu-exported a").first
    download_link.wait_for(timeout=30_000)
    with page.expect_download() as download:
        download_link.click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert exported.startswith("# What is the launch code of the Aurora project?")
    assert "**You:** What is the launch code of the Aurora project?" in exported
    assert "7341" in exported.split("**Quipu:**", 1)[1]
    assert f"] aurora-report.pdf, p. {AURORA_PAGE}" in exported
    page.locator("#quipu-new-chat").click()  # the file belongs to the conversation left
    expect(page.locator("#quipu-exported")).to_be_hidden(timeout=10_000)

    # The Models tab lists the catalog with sizes and whether each fits this machine.
    page.get_by_role("tab", name="Models").click()
    expect(page.get_by_text("Llama 3.2 1B Instruct").filter(visible=True).first).to_be_visible(
        timeout=30_000
    )
    expect(
        page.get_by_text("SmolLM2 135M Instruct (bundled)").filter(visible=True).first
    ).to_be_visible()
    # Its settings panel shows the active model's settings (the app runs with temperature 0 and
    # 96 answer tokens), not the controls' defaults.
    page.get_by_text("Settings of the active model").click()
    expect(page.locator("#quipu-max-tokens input[type=number]")).to_have_value("96")
    expect(page.locator("#quipu-temperature input[type=number]")).to_have_value("0")
    page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)

    app_host = urlparse(running_app.url).netloc
    outside = [
        u
        for u in page.requests_seen
        if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != app_host
    ]
    assert not outside, f"the page fetched from outside the app: {outside[:5]}"


def test_stop_ends_the_answer_at_once(page, running_app):
    from playwright.sync_api import expect

    page.goto(running_app.url)
    page.locator("#quipu-new-chat").click()
    page.get_by_label("Answer from my documents").uncheck()
    page.locator("#quipu-question textarea").fill(
        "Write a very long story about a lighthouse keeper."
    )
    page.locator("#quipu-send").click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not bot_text(page).strip("… \n"):
        time.sleep(0.02)
    page.locator("#quipu-stop").click()
    expect(page.locator("#quipu-chatbot")).to_contain_text("(stopped)", timeout=15_000)
    stopped = bot_text(page)
    time.sleep(1.0)
    assert bot_text(page) == stopped, "nothing streams in after Stop"
    page.screenshot(path=str(ARTIFACTS / "stopped.png"), full_page=True)


def newest_conversation(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "chats.sqlite3") as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM conversations").fetchone()[0])


def stored_turns(data_dir: Path, conversation: int) -> list[tuple[int, str, str]]:
    """(id, role, text) of a conversation's stored turns."""
    with sqlite3.connect(data_dir / "chats.sqlite3") as db:
        rows = db.execute(
            "SELECT id, role, content FROM messages WHERE conversation_id = ? ORDER BY id",
            (conversation,),
        ).fetchall()
    return [(int(i), str(role), str(text)) for i, role, text in rows]


def wait_for_turns(
    data_dir: Path, conversation: int, check, timeout_s: float = 60.0
) -> list[tuple[int, str, str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        turns = stored_turns(data_dir, conversation)
        if check(turns):
            return turns
        time.sleep(0.1)
    raise AssertionError(f"never got there: {stored_turns(data_dir, conversation)}")


def test_retry_edit_and_undo_a_question(page, running_app):
    """The conversation's own buttons: Retry answers the last question again, Edit asks an
    earlier one anew, Undo takes the last one back into the box; each drops what followed, in
    the stored conversation as on the page. Clear starts a new chat and deletes nothing."""
    from playwright.sync_api import expect

    data = running_app.data_dir
    page.goto(running_app.url)
    page.get_by_label("Answer from my documents").uncheck()
    chat = page.locator("#quipu-chatbot")
    bubbles = chat.locator(".message.user, .message.bot")
    box = page.locator("#quipu-question textarea")

    earlier = newest_conversation(data)
    box.fill("Name a colour.")
    page.locator("#quipu-send").click()
    deadline = time.monotonic() + 30
    while newest_conversation(data) == earlier and time.monotonic() < deadline:
        time.sleep(0.1)
    this = newest_conversation(data)
    assert this > earlier

    def answered(turns: int):
        return lambda t: len(t) == turns and t[-1][1] == "assistant"

    first = wait_for_turns(data, this, answered(2))
    assert first[0][1:] == ("user", "Name a colour.")

    chat.get_by_label("Retry").click()  # answered again: new stored turns replace the old
    again = wait_for_turns(data, this, lambda t: answered(2)(t) and t[0][0] > first[-1][0])
    assert again[0][1:] == ("user", "Name a colour.")
    expect(bubbles).to_have_count(2, timeout=30_000)

    box.fill("Name a fruit.")
    page.locator("#quipu-send").click()
    wait_for_turns(data, this, answered(4))
    expect(bubbles).to_have_count(4, timeout=30_000)
    chat.get_by_label("Edit").first.click()  # the first question, edited: the rest goes
    chat.locator("textarea").first.fill("Name an animal.")
    chat.get_by_label("Submit").click()
    edited = wait_for_turns(
        data, this, lambda t: answered(2)(t) and t[0][1:] == ("user", "Name an animal.")
    )
    expect(bubbles).to_have_count(2, timeout=30_000)
    expect(chat).not_to_contain_text("Name a fruit.")
    # The conversation is titled by its first question, as edited.
    expect(page.locator("#quipu-conversations")).to_contain_text("Name an animal.")
    expect(page.locator("#quipu-conversations")).not_to_contain_text("Name a colour.")

    chat.get_by_label("Undo").first.click()  # back into the box, gone from the conversation
    wait_for_turns(data, this, lambda t: t == [])
    expect(box).to_have_value("Name an animal.")
    expect(bubbles).to_have_count(0, timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "undone.png"), full_page=True)

    page.locator("#quipu-send").click()
    kept = wait_for_turns(data, this, answered(2))
    assert kept[0][0] > edited[-1][0]
    chat.get_by_label("Clear").click()  # a new chat; the last one stays in the sidebar
    expect(bubbles).to_have_count(0, timeout=30_000)
    box.fill("Name a planet.")
    page.locator("#quipu-send").click()
    wait_for_turns(data, this + 1, answered(2))
    assert stored_turns(data, this) == kept
    expect(page.locator("#quipu-conversations")).to_contain_text("Name an animal.")

    # The sidebar finds a conversation by its title or by any of its turns.
    box.fill("Name a river.")
    page.locator("#quipu-send").click()
    wait_for_turns(data, this + 1, answered(4))
    page.locator("#quipu-new-chat").click()
    listed = page.locator("#quipu-conversations label")
    finder = page.locator("#quipu-find-chat textarea")
    for words, titles in (("RIVER", ["Name a planet."]), ("animal", ["Name an animal."])):
        finder.fill(words)
        expect(listed).to_have_text(titles, timeout=10_000)
    finder.fill("")
    expect(listed).not_to_have_count(1, timeout=10_000)


BOREALIS_PAGES = [
    "Borealis field notes. The Borealis project counts reindeer herds in the far north.",
    "The launch code of the Borealis project is 5820. Borealis was started in 2021 in Oslo.",
]


def test_stop_adding_drops_the_file_under_way(page, running_app, tmp_path):
    """A long PDF dropped by mistake: Stop ends its ingest, and nothing of it is in the library."""
    from playwright.sync_api import expect

    from tests.pdf_factory import write_pdf

    long = write_pdf(
        tmp_path / "long-log.pdf",
        [f"Log {n}: pump {n % 17} ran {n * 3} minutes at {n * 7} litres." for n in range(1500)],
    )
    page.goto(running_app.url)
    page.get_by_role("tab", name="Library").click()
    stop = page.locator("#quipu-ingest-stop")
    expect(stop).to_be_hidden()
    page.locator("#quipu-upload input[type=file]").set_input_files(str(long))
    expect(stop).to_be_visible(timeout=10_000)
    report = page.locator("#quipu-ingest-report")
    expect(report).to_contain_text("embedded", timeout=120_000)  # the progress line
    page.screenshot(path=str(ARTIFACTS / "adding.png"), full_page=True)
    box = report.bounding_box()
    assert box and box["height"] > 30, "the progress bar shows, even over an empty report"
    stop.click()
    expect(report).to_contain_text("stopped", timeout=30_000)
    expect(report).to_contain_text("long-log.pdf: not added: stopped while")
    expect(stop).to_be_hidden(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "stopped.png"), full_page=True)
    expect(page.locator("#quipu-library")).not_to_contain_text("long-log.pdf")
    assert not [p for p in (running_app.data_dir / "uploads").rglob("long-log.pdf")]


def test_search_in_the_documents_picked(page, running_app, aurora_pdf, tmp_path):
    """ "Search in" takes any number of documents: answers cite only those; none is all."""
    from playwright.sync_api import expect

    from tests.pdf_factory import write_pdf

    borealis = write_pdf(tmp_path / "borealis-notes.pdf", BOREALIS_PAGES)
    page.goto(running_app.url)
    page.get_by_role("tab", name="Library").click()
    page.locator("#quipu-upload input[type=file]").set_input_files([str(aurora_pdf), str(borealis)])
    expect(page.locator("#quipu-library")).to_contain_text("borealis-notes.pdf", timeout=120_000)
    expect(page.locator("#quipu-library")).to_contain_text("aurora-report.pdf")
    page.get_by_role("tab", name="Chat").click()
    picker = page.locator("#quipu-doc-filter")
    sources = page.locator("#quipu-sources")

    def ask(question: str) -> str:
        page.locator("#quipu-new-chat").click()
        expect(sources).not_to_contain_text(".pdf", timeout=10_000)
        page.locator("#quipu-question textarea").fill(question)
        page.locator("#quipu-send").click()
        expect(page.locator("#quipu-chatbot .message.bot").last).to_contain_text(
            "tokens/s", timeout=120_000
        )  # the last line under a finished answer
        return sources.inner_text()

    def pick(name: str) -> None:
        picker.locator("input").click()
        page.get_by_role("option", name=name).click()
        page.keyboard.press("Escape")

    pick("borealis-notes.pdf")
    cited = ask("What is the launch code of the project?")
    assert "borealis-notes.pdf" in cited and "aurora-report.pdf" not in cited
    pick("aurora-report.pdf")  # both picked
    cited = ask("Where was each project started?")
    page.screenshot(path=str(ARTIFACTS / "picked.png"), full_page=True)
    assert "borealis-notes.pdf" in cited or "aurora-report.pdf" in cited
    picker.locator(".token", has_text="borealis-notes.pdf").locator(".token-remove").click()
    cited = ask("What is the launch code of the project?")
    assert "aurora-report.pdf" in cited and "borealis-notes.pdf" not in cited

    # Deleting a picked document unpicks it; the other pick stays (and the shared app's library
    # is as the other tests expect it).
    pick("borealis-notes.pdf")
    page.get_by_role("tab", name="Library").click()
    page.locator("#quipu-delete-choice input").click()
    page.get_by_role("option", name="borealis-notes.pdf").click()
    page.get_by_role("button", name="Delete from library").click()
    expect(page.locator("#quipu-library")).not_to_contain_text("borealis", timeout=30_000)
    tokens = picker.locator(".token")
    expect(tokens).to_have_count(1, timeout=10_000)
    expect(tokens).to_have_text("aurora-report.pdf")
