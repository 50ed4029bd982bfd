"""Figures in an answer that its sources do not hold.

A small model asked about a report copies most numbers from the passages it was given, and
sometimes writes one that is in none of them. Such a figure is worth a flag: the reader checks it
against the cited page instead of trusting it. A figure counts as found when a number in the
sources (or the question) gives it at the precision the answer writes it, in the same unit or a
thousand, million or billion times larger or smaller (tables are often "in thousands": 3,562,123
is "3.6 billion"), or as a percentage of a fraction. Years, citation markers ("[2]") and
one-digit numbers are not checked. A figure the model computed (a ratio, a sum) is flagged too:
it is not in the sources, and the reader should see how it was made.
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


def _numbers(text: str) -> Iterable[tuple[re.Match[str], float, int]]:
    """(the match, its value, its decimals) for each number in `text`."""
    blanked = _CITATION.sub(lambda m: " " * len(m.group()), text)  # positions stay
    for match in _NUMBER.finditer(blanked):
        whole, fraction = match.group(1), match.group(2) or ""
        yield match, float(whole.replace(",", "") + fraction), max(len(fraction) - 1, 0)


def _is_checked(value: float, decimals: int) -> bool:
    """Not a one-digit count and not a year (1900-2100 written without decimals)."""
    return not (decimals == 0 and (value < 10 or 1900 <= value <= 2100))


def _figures(answer: str) -> list[tuple[str, float, int]]:
    """The checked figures of an answer: (as written, value, decimals)."""
    return [(m.group(0), v, d) for m, v, d in _numbers(answer) if _is_checked(v, d)]


def _gives(source: float, value: float, decimals: int) -> bool:
    """Whether `source`, in some unit of `_SCALES`, rounds to `value` at `decimals`. `round`
    gives the double nearest the rounded decimal, as `float` does for a written figure."""
    return any(round(source / scale, decimals) == value for scale in _SCALES)


class KnownFigures:
    """The numbers of some texts (sources, questions), for checking answers against; texts can
    be added as a conversation goes on, each read once."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._values: list[float] = []
        self._sorted = True
        self.add(texts)

    def add(self, texts: Iterable[str]) -> None:
        """Read more texts."""
        for text in texts:
            self._values += [value for _, value, _ in _numbers(text)]
            self._sorted = False

    def gives(self, value: float, decimals: int) -> bool:
        """Whether a known number gives `value` at `decimals` (see the module's rules)."""
        if not self._sorted:
            self._values.sort()
            self._sorted = True
        half = 0.5 * 10.0**-decimals
        for scale in _SCALES:  # the numbers that could round to it, then the exact test
            low, high = (value - half) * scale, (value + half) * scale
            at = bisect.bisect_left(self._values, low - abs(low) * 1e-9)
            while at < len(self._values) and self._values[at] <= high + abs(high) * 1e-9:
                if round(self._values[at] / scale, decimals) == value:
                    return True
                at += 1
        return False

    def unsupported(self, answer: str) -> list[str]:
        """The figures of `answer`, as written, that no known number gives; each once."""
        flagged: list[str] = []
        for written, value, decimals in _figures(answer):
            if written not in flagged and not self.gives(value, decimals):
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
        if any(_gives(value, v, d) for _, v, d in figures)
    ]
