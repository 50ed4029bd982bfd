"""Cheaper steps in pypdf's layout-mode text extraction, with the same results.

Layout mode keeps a stack of transformation matrices, and pypdf builds each one in
`TextStateManager.raw_transform` by converting its six numbers one by one through a generator, a
`zip` and a `try` per number. That took 12% of the time spent reading the dev set's largest 10-K
(py-spy, November 2026). The replacement converts the six numbers in one expression and hands any
operand that is not a number back to pypdf's own method, which then does exactly what it did
(its defaults for what cannot be read). The 2,682 pages of the dev set read the same text, in 78 s
of CPU instead of 88.

Each piece of text drawn also gets a `TextStateParams`, whose `__post_init__` works out where the
text starts and ends: two 6-number matrix products through `mult`, and the text's width through
`word_tx`, a method call per character (`Font.get_text_width`, which builds a one-item list to
sum). That was a quarter of the reading time of the same 10-K. `post_init` does the same
arithmetic, in the same order, on the only numbers of those products that are used, and the
widths in one loop, so every field comes out the same, to the bit; the text decoding is pypdf's,
with list comprehensions instead of generators. Checked with throwaway scripts (November 2026):
all 3.19 million text states of the dev set's 20 PDFs came out field for field the same, and
the 10-K's 549 pages read in 2.01 s instead of 2.28 (two worker processes).

`install()` replaces the two on pypdf's classes; it does nothing when this pypdf does not have
them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import pypdf

log = logging.getLogger(__name__)

try:  # private modules: another pypdf may not have them
    from pypdf._text_extraction import mult, orient
    from pypdf._text_extraction._layout_mode._text_state_manager import TextStateManager
    from pypdf._text_extraction._layout_mode._text_state_params import TextStateParams
except ImportError:  # pragma: no cover - only with another pypdf
    TextStateManager = None  # type: ignore[assignment,misc]
    TextStateParams = None  # type: ignore[assignment,misc]

_ORIGINAL: Callable[..., dict[int, float]] | None = (
    getattr(TextStateManager, "raw_transform", None) if TextStateManager is not None else None
)


def raw_transform(
    _a: Any = 1.0, _b: Any = 0.0, _c: Any = 0.0, _d: Any = 1.0, _e: Any = 0.0, _f: Any = 0.0
) -> dict[int, float]:
    """`TextStateManager.raw_transform`: the matrix a b c d e f as {0: a, ..., 5: f}, floats."""
    try:
        return {0: float(_a), 1: float(_b), 2: float(_c), 3: float(_d), 4: float(_e), 5: float(_f)}
    except (TypeError, ValueError):  # a name or null where a number belongs: pypdf's defaults
        assert _ORIGINAL is not None
        return _ORIGINAL(_a, _b, _c, _d, _e, _f)


_ORIGINAL_POST_INIT: Callable[[Any], None] | None = getattr(TextStateParams, "__post_init__", None)


def _word_tx(state: Any, word: str, td_offset: float = 0.0) -> float:
    """`TextStateParams.word_tx` for a str: the same sums, in the same order."""
    font = state.font
    space, space_width, widths = font.space_char, font.space_width, font.character_widths
    width = 0.0
    for char in word:
        # get_text_width(char) is sum([w], 0.0), i.e. 0.0 + w: the same float as w here
        width += space_width if char == space else widths.get(char, widths["default"])
    return (
        (state.font_size * ((width - td_offset) / 1000.0))
        + len(word) * state.Tc
        + word.count(space) * state.Tw
    ) * (state.Tz / 100.0)


def post_init(self: Any) -> None:
    """`TextStateParams.__post_init__`, with the same results (see the module's docstring)."""
    value, font = self.value, self.font
    if isinstance(value, bytes):
        encoding = font.encoding
        decoded = ""
        if isinstance(encoding, str):
            try:  # 2-byte UTF-16-BE units, as pypdf decodes them
                self._raw_chars = value.decode(encoding, "surrogatepass")
            except UnicodeDecodeError:
                self._raw_chars = value.decode(encoding, "replace")
        else:
            self._raw_chars = value.decode("latin-1")  # chr() of each byte
            decoded = "".join([encoding.get(x, chr(x)) for x in value])
        cmap = font.character_map
        self.text = "".join([cmap.get(x, x) for x in (decoded or self._raw_chars)])
    else:
        self.text = value
    if orient(self.transform) in (90, 270):
        self.transform = mult(
            [1.0, -self.transform[1], -self.transform[2], 1.0, 0.0, 0.0], self.transform
        )
        self.rotated = True
    if orient(self.transform) == 180 and self.transform[0] < -1e-6:
        self.transform = mult([-1.0, 0.0, 0.0, -1.0, 0.0, 0.0], self.transform)
        self.rotated = True
    t = self.transform
    # mult([1, 0, 0, 1, width, 0], t)[4] and mult(font_size_matrix, t)[5], term by term
    width = _word_tx(self, self._raw_chars if isinstance(value, bytes) else value)
    self.displaced_tx = width * t[0] + 0.0 * t[2] + t[4]
    self.tx = t[4]
    self.ty = 0.0 * t[1] + self.Ts * t[3] + t[5]
    self.space_tx = round(_word_tx(self, font.space_char), 3)
    if self.space_tx < 1e-6:  # a zero-width space: pypdf falls back to the font's space width
        self.space_tx = round(_word_tx(self, "", -font.space_width), 3)
    self.font_height = self.font_size * math.sqrt(t[1] ** 2 + t[3] ** 2)
    self.flip_vertical = t[3] < -1e-6


def install() -> bool:
    """Make pypdf's layout mode use `raw_transform` and `post_init`; False when this pypdf lacks
    them."""
    if TextStateManager is None or _ORIGINAL is None or _ORIGINAL_POST_INIT is None:
        log.info("pypdf %s: keeping its own layout-mode transforms", pypdf.__version__)
        return False
    TextStateManager.raw_transform = staticmethod(raw_transform)  # type: ignore[method-assign,assignment]
    TextStateParams.__post_init__ = post_init  # type: ignore[method-assign]
    return True
