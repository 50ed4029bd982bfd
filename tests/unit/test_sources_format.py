"""The Sources panel and the line under an answer: labels, the cited mark, links to pages."""

import re

import pytest

from app.ui.format import cite_links, passages_markdown, sources_footer, sources_markdown

pytestmark = pytest.mark.unit


def source(number: int, page: int, *, cited: bool = False, page_end: int | None = None) -> dict:
    return {
        "number": number,
        "file": "r&d <report>.pdf",
        "page": page,
        "page_end": page if page_end is None else page_end,
        "score": 0.61,
        "cited": cited,
        "text": "Revenue grew.",
        "file_id": "a" * 64,
    }


def test_each_source_shows_file_page_and_whether_the_answer_cites_it():
    panel = sources_markdown([source(1, 3, cited=True), source(2, 4, page_end=5)])
    assert "[1] r&amp;d &lt;report&gt;.pdf — p. 3" in panel
    assert "[2] r&amp;d &lt;report&gt;.pdf — pp. 4-5" in panel
    assert panel.count("<b>cited</b>") == 1 and "**" not in panel  # HTML: markdown is not parsed
    assert "<a " not in panel  # no copy of the PDF: no link


def test_the_number_beside_a_passage_is_named_similarity_and_explained():
    panel = sources_markdown([source(1, 3)])
    assert "· similarity 0.61" in panel and "relevance" not in panel
    tip = re.search(r"class='quipu-score' title='([^']*)'", panel)
    assert tip and "words" in tip.group(1)  # why a lower number can be ranked first


def test_pages_link_to_the_pdf_when_a_copy_is_kept():
    def link(s: dict) -> str | None:
        return f"gradio_api/file=/data/files/{s['file_id']}.pdf?x='1'#page={s['page']}"

    panel = sources_markdown([source(1, 3)], link)
    assert f"href='gradio_api/file=/data/files/{'a' * 64}.pdf?x=&#x27;1&#x27;#page=3'" in panel
    assert "target='_blank' rel='noopener'" in panel and ">p. 3</a>" in panel
    footer = sources_footer([source(1, 3, cited=True), source(2, 7)], link)
    assert ">p. 3</a>" in footer and "p. 7" not in footer  # only the cited ones are listed
    assert sources_footer([source(2, 7)], None).endswith(
        "[2] r&amp;d &lt;report&gt;.pdf, p. 7</small>"
    )


def test_answers_show_the_figures_nothing_the_model_had_holds():
    from app.chats import StoredMessage
    from app.ui.chat_tab import display
    from app.ui.format import unverified

    given = {**source(1, 79, cited=True), "text": "Revenue was 4,512 in 2022."}
    answer = "Revenue was 4,512 [1] (p. 79), up from 3,977 for the 1,200 stores."
    # A follow-up may use what the conversation's earlier sources and questions hold.
    later = {**source(2, 80), "text": "Costs were 1,020."}
    follow_up = "Costs were 1,020 against revenue of 4,512, for 1,200 stores; margin 77.4%."
    conversation = [
        StoredMessage("user", "How did the 1,200 stores do?", []),
        StoredMessage("assistant", answer, [given]),
        StoredMessage("user", "And the costs?", []),
        StoredMessage("assistant", follow_up, [later]),
        StoredMessage("user", "Say hi", []),
        StoredMessage("assistant", "Hi! About 3,977 people say hi.", []),  # plain chat
    ]
    assert unverified(conversation) == [[], ["3,977"], [], ["77.4"], [], []]
    shown = [m["content"] for m in display(conversation)]
    assert shown[0] == "How did the 1,200 stores do?"
    assert shown[1].endswith(
        "Not in the sources: 3,977. Check these figures against the pages.</small>"
    )
    assert "Not in the sources: 77.4." in shown[3]
    assert "Not in the sources" not in shown[5], "plain chat has no sources to check against"


def test_the_sources_panel_marks_the_numbers_that_give_the_answer_s_figures():
    given = {**source(1, 4), "text": "R&D <costs> were 1,250 and staff 4,512 in 2022."}
    panel = sources_markdown([given], None, "Staff was 4,512 [1].")
    assert "R&amp;D &lt;costs&gt; were 1,250 and staff <mark>4,512</mark> in 2022." in panel
    assert "<mark>" not in sources_markdown([given], None, "")


def test_a_conversation_exports_as_markdown_with_its_sources_and_unverified_figures():
    from app.chats import StoredMessage
    from app.ui.format import conversation_markdown

    given = [
        {**source(1, 3, cited=True), "file": "report.pdf", "text": "Revenue was 4,512."},
        {**source(2, 4, page_end=5), "file": "report.pdf", "text": "Costs rose."},
    ]
    text = conversation_markdown(
        "Revenue 2022",
        [
            StoredMessage("user", "What was the revenue?", []),
            StoredMessage("assistant", "It was 4,512 [1], up from 3,977.", given),
            StoredMessage("user", "Thanks!", []),
            StoredMessage("assistant", "You are welcome.", []),
        ],
    )
    assert text == (
        "# Revenue 2022\n\n"
        "**You:** What was the revenue?\n\n"
        "**Quipu:** It was 4,512 [1], up from 3,977.\n\n"
        "- [1] report.pdf, p. 3 (cited)\n"
        "- [2] report.pdf, pp. 4-5\n"
        "- Not in the sources: 3,977\n\n"
        "**You:** Thanks!\n\n"
        "**Quipu:** You are welcome.\n"
    )


def test_found_passages_are_numbered_best_first_with_the_query_words_marked():
    hit = {k: v for k, v in source(0, 7).items() if k not in ("number", "cited")}
    found = [
        {**hit, "text": "Launch codes <b> of the AURORA project: 7341; launched in 2019."},
        {**hit, "page": 9, "page_end": 9, "text": "Nothing to see."},
    ]
    panel = passages_markdown(found, "What is the launch code of Aurora in 2019?", None)
    assert panel.index("[1] r&amp;d &lt;report&gt;.pdf — p. 7") < panel.index("[2] r&amp;d")
    marked = re.findall(r"<mark>(.*?)</mark>", panel)
    # Words and their longer forms, in any case; not "what", "the" or "of"; HTML escaped.
    assert marked == ["Launch", "codes", "AURORA", "launched", "2019"]
    assert "&lt;b&gt;" in panel and "<b> of" not in panel
    assert passages_markdown([], "anything", None) == "*Nothing in the library matches.*"
    assert "<mark>" not in passages_markdown(found, "of the", None)  # only common words


def test_an_answers_marks_open_their_pages():
    sources = [source(1, 3), source(2, 5, page_end=6)]
    sources[0]["file"] = "a.pdf"

    def link(s):
        kept = f"gradio_api/file=/x/{s['file_id']}.pdf#page={s['page']}"
        return None if s["number"] == 2 else kept

    text = "Launch code 7341 [1]. Also [2], [3] and [1](http://example.org)."
    shown = cite_links(text, sources, link)
    opened = re.findall(r"<a class='quipu-cite' href='([^']*)'[^>]*>\[(\d)\]</a>", shown)
    assert opened == [(f"gradio_api/file=/x/{'a' * 64}.pdf#page=3", "1")]  # once, for [1]
    assert "title='a.pdf, p. 3'" in shown
    assert "Also [2], [3] and [1](http://example.org)." in shown  # no copy, no source, a link
    assert cite_links(text, sources, None) == text


def test_the_chat_shows_an_answer_with_its_marks_linked_and_its_lines_under_it():
    from app.chats import StoredMessage
    from app.ui.chat_tab import display

    sources = [{**source(1, 3, cited=True), "file": "a.pdf"}]
    turns = [
        StoredMessage("user", "Code? [1]", []),
        StoredMessage("assistant", "7341 [1].", sources),
    ]
    question, answer = display(turns, lambda s: f"file=/{s['file']}#page={s['page']}")
    assert question["content"] == "Code? [1]"  # a question is shown as typed
    assert answer["content"].startswith("7341 <a class='quipu-cite' href='file=/a.pdf#page=3'")
    assert "<small>Sources: [1] a.pdf, <a class='quipu-open'" in answer["content"]


def test_an_answer_that_did_not_end_by_itself_says_why():
    from app.ui.chat_tab import end_note
    from rag.types import Answer

    assert end_note(Answer("a", stopped=True)) == "\n\n*(stopped)*"
    assert "cut short" in end_note(Answer("a", cut=True)) and "Max answer tokens" in end_note(
        Answer("a", cut=True)
    )
    assert end_note(Answer("a")) == end_note(None) == ""


def test_where_the_model_runs_is_said_in_words():
    from app.ui.format import placement
    from models.base import ModelInfo

    def info(gpu_layers: int) -> ModelInfo:
        return ModelInfo("m", "m.gguf", "llama.cpp", 4096, 8192, gpu_layers, 4)

    assert placement(info(-1)) == "GPU, all layers"  # llama.cpp's -1, the default on a GPU
    assert placement(info(12)) == "GPU, 12 layers (the rest on 4 CPU threads)"
    assert placement(info(0)) == "CPU, 4 threads"
