"""Figures of an answer that its sources do not hold, on text as the PDF reader gives it."""

import pytest

from rag.grounding import unsupported_figures

pytestmark = pytest.mark.unit

# As pypdf reads MGM Resorts' Q4 2022 earnings release (amounts in thousands).
MGM_PAGE = """Three months ended December 31, Twelve months ended December 31,
2022 2021 2022 2021
Net revenues $ 3,589,339 $ 3,102,766 $ 13,127,485 $ 9,680,140
Net income attributable to MGM Resorts International $ 284,002 $ 131,013 $ 1,473,093
Interest expense, net of amounts capitalized 137,132 201,477 594,954 799,593
Operating margin 12.8% 11.5%"""


def test_figures_copied_or_rescaled_from_the_sources_pass():
    answer = (
        "Net revenues were $3,589,339 thousand in Q4 2022 ($3.6 billion, or $3.59 billion), "
        "against $3.1 billion a year earlier [1]. Full-year revenue was $13.1 billion and "
        "interest expense $594,954 thousand [2]. The operating margin was 12.8%."
    )
    assert unsupported_figures(answer, [MGM_PAGE]) == []


def test_figures_in_no_source_are_named_once_as_written():
    answer = (
        "Net revenue was $35.6 million in the fourth quarter, down from $17.8 million [1][2]; "
        "$35.6 million is a decrease. Net revenues were $3.6 billion."
    )
    assert unsupported_figures(answer, [MGM_PAGE]) == ["$35.6", "$17.8"]


def test_a_figure_off_at_the_precision_it_is_written_is_flagged():
    # 3,589,339 thousand is 3.59 (not 3.58) billion, and 3.5893 (not 3.5894) billion.
    answer = "It was $3.58 billion, or $3.5894 billion; $3.5893 billion."
    assert unsupported_figures(answer, [MGM_PAGE]) == ["$3.58", "$3.5894"]


def test_percentages_of_fractions_and_the_question_count_as_sources():
    assert unsupported_figures("Growth was 23.5%.", ["growth ratio 0.235"]) == []
    assert unsupported_figures("The ratio for 2,500 units is 2,500.", [""]) == ["2,500"]
    assert unsupported_figures("For 2,500 units it is 2,500.", ["", "How about 2,500 units?"]) == []


def test_years_counts_citations_and_codes_are_not_checked():
    answer = "In 2022 the 3 resorts [12] in FY2023 and Q4 reported [1-3] growth."
    assert unsupported_figures(answer, [""]) == []


def test_the_numbers_that_give_an_answer_s_figures_are_found_in_the_source():
    from rag.grounding import supporting_spans

    answer = "Q4 net revenues were $3.6 billion [1] in 2022, and the margin 12.8%."
    spans = supporting_spans(answer, MGM_PAGE)
    assert [MGM_PAGE[a:b] for a, b in spans] == ["3,589,339", "12.8"]
    assert supporting_spans("Nothing to check in 2022.", MGM_PAGE) == []


def test_any_text_gives_figures_from_the_answer_and_spans_inside_the_source():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rag.grounding import supporting_spans

    text = st.text(alphabet="0123456789,.$%[]- abcFY\n", max_size=80)

    @settings(max_examples=300, deadline=None)
    @given(answer=text, source=text)
    def check(answer: str, source: str) -> None:
        assert all(figure in answer for figure in unsupported_figures(answer, [source]))
        for start, end in supporting_spans(answer, source):
            assert 0 <= start < end <= len(source)
        assert unsupported_figures(answer, [answer]) == []  # an answer holds its own figures

    check()


def test_a_scale_word_that_disagrees_with_the_source_s_is_flagged():
    source = "Revenue reached 5.2 million dollars; the fleet grew to 1,250 vessels."
    assert unsupported_figures("Revenue was $5.2 billion.", [source]) == ["$5.2"]
    assert unsupported_figures("Revenue was 5.2 thousand.", [source]) == ["5.2"]
    agreeing = "Revenue was 5.2 million, i.e. 5,200,000 or 5,200 thousand; 5.2 in all."
    assert unsupported_figures(agreeing, [source]) == []
    # A number without a word (a table's, in an unknown unit) still gives every unit.
    assert unsupported_figures("The fleet was 1.25 million, or 1,250 thousand.", [source]) == []
    assert unsupported_figures("Costs were 3.1 Billion.", ["costs: 3.1 billion"]) == []
