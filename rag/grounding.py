"""Figures in an answer that its sources do not hold.

A small model asked about a report copies most numbers from the passages it was given, and
sometimes writes one that is in none of them. Such a figure is worth a flag: the reader checks it
against the cited page instead of trusting it. A figure counts as found when a number in the
sources (or the question) gives it at the precision the answer writes it, in the same unit or a
thousand, million or billion times larger or smaller (tables are often "in thousands": 3,562,123
is "3.6 billion"), or as a percentage of a fraction. A scale word the sources write is kept,
though: where a source says "5.2 million", an answer's "5.2 billion" is not found there (a number
in a table, with no word beside it, still gives any of those units). Years, citation markers
("[2]") and one-digit numbers are not checked. A figure the model computed (a ratio, a sum) is
flagged too: it is not in the sources, and the reader should see how it was made.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence

# A number as prose and tables write it: 1,234.5 or 12.5 or 7341, with $ before or % after;
# not a part of a word or code ("FY2022", "Q4"), nor a decimal's tail.
_NUMBER = re.compile(r"(?<![\w.,])\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
_CITATION = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
_SCALES = (1.0, 1e3, 1e6, 1e9, 1e-3, 1e-6, 1e-9, 1e2, 1e-2)
# A scale written after a number: "5.2 million", "3 billion".
_WORD = re.compile(r"[ \t]*(thousand|million|billion|trillion)\b", re.IGNORECASE)
_WORD_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}


def _numbers(text: str) -> Iterable[tuple[re.Match[str], float, int]]:
    """(the match, its value, its decimals) for each number in `text`."""
    for match, value, decimals, _ in _worded_numbers(text):
        yield match, value, decimals


def _worded_numbers(text: str) -> Iterable[tuple[re.Match[str], float, int, float | None]]:
    """(the match, its value, its decimals, the scale of a word after it or None) per number."""
    blanked = _CITATION.sub(lambda m: " " * len(m.group()), text)  # positions stay
    for match in _NUMBER.finditer(blanked):
        whole, fraction = match.group(1), match.group(2) or ""
        word = _WORD.match(blanked, match.end())
        scale = _WORD_SCALE[word.group(1).lower()] if word else None
        value = float(whole.replace(",", "") + fraction)
        yield match, value, max(len(fraction) - 1, 0), scale


def _is_checked(value: float, decimals: int) -> bool:
    """Not a one-digit count and not a year (1900-2100 written without decimals)."""
    return not (decimals == 0 and (value < 10 or 1900 <= value <= 2100))


def _figures(answer: str) -> list[tuple[str, float, int, float | None]]:
    """The checked figures of an answer: (as written, value, decimals, scale word's or None)."""
    return [
        (m.group(0), v, d, scale) for m, v, d, scale in _worded_numbers(answer) if _is_checked(v, d)
    ]


def _gives(source: float, value: float, decimals: int) -> bool:
    """Whether `source`, in some unit of `_SCALES`, rounds to `value` at `decimals`. `round`
    gives the double nearest the rounded decimal, as `float` does for a written figure."""
    return any(round(source / scale, decimals) == value for scale in _SCALES)


class _Sorted:
    """Numbers, sorted on first lookup after an addition."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._sorted = True

    def add(self, value: float) -> None:
        self.values.append(value)
        self._sorted = False

    def gives(self, value: float, decimals: int, scales: Sequence[float]) -> bool:
        """Whether a number here, divided by one of `scales`, rounds to `value` at `decimals`."""
        if not self._sorted:
            self.values.sort()
            self._sorted = True
        half = 0.5 * 10.0**-decimals
        for scale in scales:  # the numbers that could round to it, then the exact test
            low, high = (value - half) * scale, (value + half) * scale
            at = bisect.bisect_left(self.values, low - abs(low) * 1e-9)
            while at < len(self.values) and self.values[at] <= high + abs(high) * 1e-9:
                if round(self.values[at] / scale, decimals) == value:
                    return True
                at += 1
        return False


class KnownFigures:
    """The numbers of some texts (sources, questions), for checking answers against; texts can
    be added as a conversation goes on, each read once."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._bare = _Sorted()  # numbers with no scale word: a table's, in whatever unit
        self._as_written = _Sorted()  # numbers with one, as written ("5.2" of "5.2 million")
        self._absolute = _Sorted()  # and what they are (5,200,000)
        self.add(texts)

    def add(self, texts: Iterable[str]) -> None:
        """Read more texts."""
        for text in texts:
            for _, value, _, scale in _worded_numbers(text):
                if scale is None:
                    self._bare.add(value)
                else:
                    self._as_written.add(value)
                    self._absolute.add(value * scale)

    def gives(self, value: float, decimals: int, scale: float | None = None) -> bool:
        """Whether a known number gives `value` at `decimals` (see the module's rules); with
        `scale`, the answer wrote a scale word, which a source's own word must agree with."""
        if self._bare.gives(value, decimals, _SCALES):
            return True
        if scale is None:
            return self._as_written.gives(value, decimals, _SCALES)
        return self._absolute.gives(value, decimals, (scale,))

    def unsupported(self, answer: str) -> list[str]:
        """The figures of `answer`, as written, that no known number gives; each once."""
        flagged: list[str] = []
        for written, value, decimals, scale in _figures(answer):
            if written not in flagged and not self.gives(value, decimals, scale):
                flagged.append(written)
        return flagged


def unsupported_figures(answer: str, sources: Sequence[str]) -> list[str]:
    """The figures of `answer`, as written, that no number in `sources` gives; each once."""
    return KnownFigures(sources).unsupported(answer)


def supporting_spans(answer: str, source: str) -> list[tuple[int, int]]:
    """Where `source` gives a figure of `answer`: the (start, end) of each such number in it."""
    figures = _figures(answer)
    return [
        match.span()
        for match, value, _ in _numbers(source)
        if any(_gives(value, v, d) for _, v, d, _ in figures)
    ]
