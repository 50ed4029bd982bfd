"""A faster parser for PDF content streams, producing exactly what pypdf's own parser produces.

pypdf reads a page's content stream (the operators that draw its text) a byte at a time in pure
Python, and that was almost half of the time its text extraction takes: on the first 40 pages of
each dev-set report, parsing took 64 of the 144 ms that layout-mode extraction spent on a page.
This module reads the same stream with one regular expression per token over the whole buffer,
and builds the same pypdf objects (`NumberObject`, `FloatObject`, `NameObject`, string objects,
`ArrayObject`). What it does not read itself goes to pypdf's own readers, at the same position
and with the same arguments: dictionaries, strings with escapes or nested brackets, names with
#-escapes, inline images, malformed tokens. A stream with what only pypdf's parser reads exactly
as pypdf does (a comment or \x0b inside an array, an indirect reference, more bytes than pypdf's
parsing budget) is parsed by pypdf from the start. So the operations are the same, warnings and
errors included, and pypdf's limits on parsing work still apply.
`tests/unit/test_content_stream.py` compares the two parsers on typical, odd and randomly
damaged streams, and on generated PDFs.

Measured with throwaway scripts: on those 750 pages, 65 -> 29 ms per page to parse; on all 2,682
pages of the dev set, the layout and the plain text of every page (what `bench/retrieval.py`
reads) came out identical and took 331 s of CPU instead of 522.

`install()` makes every `ContentStream` use it. It checks that pypdf still has the private methods
it relies on, and does nothing otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pypdf
from pypdf._configuration import get_configuration
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    ContentStream,
    FloatObject,
    NameObject,
    NullObject,
    NumberObject,
    read_object,
)
from pypdf.generic._utils import StreamParsingBudget, create_string_object

log = logging.getLogger(__name__)

# What pypdf's readers take as part of an operator or a name: anything up to a delimiter
# (`NameObject.delimiter_pattern`), and as part of a number (`NumberObject.NumberPattern`).
_WORD_CHAR = rb"[^\s()<>\[\]{}/%]"
_NUMBER_CHAR = rb"[+,\-.0-9]"
# One token, after the whitespace before it (pypdf's whitespace at the top level; inside arrays
# it also skips \x0b, which therefore sends the stream to pypdf). Each alternative matches only
# what is read here exactly as pypdf reads it. A number must end within read_object's 20-byte
# peek; names and operators must stay clear of pypdf's length limits, which it checks in 16-byte
# steps. "other" is read by pypdf's `read_object` at that position: a dictionary, a string with
# escapes or nested brackets, a name with #-escapes, a malformed token.
_TOKEN = re.compile(
    rb"[\x00\t\n\f\r ]*(?:(?P<end>\Z)"
    rb"|(?P<op>[A-Za-z'\"]" + _WORD_CHAR + rb"{0,95})(?!" + _WORD_CHAR + rb")"
    rb"|(?P<longop>[A-Za-z'\"])"
    rb"|(?P<num>" + _NUMBER_CHAR + rb"{1,19})(?=[^+,\-.0-9])"
    rb"|(?P<name>/[^\s()<>\[\]{}/%#\x80-\xff]{0,4000})(?!" + _WORD_CHAR + rb")"
    rb"|\((?P<str>[^()\\]*)\)"
    rb"|<(?P<hex>[0-9A-Fa-f\x00\t\n\f\r ]*)>"
    rb"|(?P<open>\[)"
    rb"|(?P<close>\])"
    rb"|(?P<comment>%[^\r\n]*[\r\n]?)"
    rb"|(?P<other>[\s\S]))"
)
_HEX_SPACE = re.compile(rb"[\x00\t\n\f\r ]")
# read_object refuses an indirect reference ("12 0 R") in a content stream; this finds every
# place where `IndirectPattern` could match, and more, much faster.
_MAYBE_REFERENCE = re.compile(rb"\sR[^a-zA-Z]")

# pypdf's own parser: the fallback, and what the tests compare with (None if pypdf lacks it).
_ORIGINAL: Any = getattr(ContentStream, "_parse_content_stream", None)


class _Slow(Exception):
    """This stream needs pypdf's own parser from the start."""


def _number(text: bytes) -> Any:
    try:
        if b"." in text:
            return float.__new__(FloatObject, float(text))
        return int.__new__(NumberObject, int(text))
    except ValueError:  # "1.2.3", "-": pypdf's constructors warn and use 0
        return FloatObject(text) if b"." in text else NumberObject(text)


def _hex(text: bytes) -> bytes:
    if len(text) % 2 == 0 and text.isalnum():
        return bytes.fromhex(text.decode("ascii"))
    digits = _HEX_SPACE.sub(b"", text)  # pypdf skips whitespace anywhere, pads an odd digit
    return bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode("ascii"))


def _parse(content: ContentStream, data: bytes, budget: StreamParsingBudget) -> None:
    """Fill `content._operations` from `data`, as `ContentStream._parse_content_stream` does.

    Raises:
        _Slow: the stream holds something only pypdf's parser reads exactly as pypdf does.
    """
    forced = content.forced_encoding
    as_bytes = forced == "bytes"
    max_items = get_configuration().array_maximum_element_count
    stream = BytesIO(data)  # for pypdf's readers, positioned where a token starts
    operations = content._operations
    operands: list[Any] = []
    target: list[Any] = operands  # where the next value goes: the operands, or an open array
    arrays: list[list[Any]] = []  # the arrays being read, outermost first
    # Always a match: "other" takes any byte and "end" the end.
    match_at: Callable[[bytes, int], re.Match[bytes]] = _TOKEN.match  # type: ignore[assignment]
    at = 0
    while True:
        match = match_at(data, at)
        kind = match.lastgroup
        at = match.end()
        if kind == "num":
            target.append(_number(match.group(kind)))
        elif kind == "op":
            operator = match.group(kind)
            if arrays:
                if operator != b"null":  # true/false, or pypdf's odd reading of "nullx"
                    raise _Slow
                target.append(NullObject())
            elif operator == b"BI":
                assert operands == []
                content._check_limits(parsing_budget=budget, token_decrement=2)
                stream.seek(at)
                image = content._read_inline_image(stream, parsing_budget=budget)
                operations.append((image, b"INLINE IMAGE"))
                at = stream.tell()
            else:
                operations.append((operands, operator))
                operands = target = []
        elif kind == "name":
            target.append(NameObject(match.group(kind).decode("ascii")))
        elif kind == "str" or kind == "hex":
            text = match.group(kind)
            raw = text if kind == "str" else _hex(text)
            target.append(ByteStringObject(raw) if as_bytes else create_string_object(raw, forced))
        elif kind == "open":
            array = ArrayObject()
            target.append(array)
            arrays.append(target)
            target = array
        elif kind == "close" and arrays:
            if len(target) > max_items:
                raise _Slow  # pypdf raises its error
            target = arrays.pop()
        elif kind == "end":
            if arrays:
                raise _Slow  # an unterminated array
            return
        elif kind == "comment" and not arrays:
            continue
        elif kind == "other" and arrays and match.group(kind) == b"\x0b":
            raise _Slow  # whitespace inside an array only
        elif kind == "other" or kind == "close":  # "]" with no array open: pypdf's error
            stream.seek(match.start(kind))
            target.append(read_object(stream, None, forced, parsing_budget=budget))
            at = stream.tell()
        else:  # a comment in an array, an over-long operator
            raise _Slow


def _parse_content_stream(self: ContentStream, stream: Any) -> None:
    """Replacement for `ContentStream._parse_content_stream` (same results, see module doc)."""
    stream.seek(0, 0)
    data = stream.read()
    config = get_configuration()
    # Every token pypdf counts against its parsing budget is at least a byte long, so a stream
    # shorter than the budget cannot exhaust it and the fast path need not count.
    if (
        len(data) < config.stream_parsing_work_maximum_count
        and _MAYBE_REFERENCE.search(data) is None
    ):
        budget = StreamParsingBudget(remaining_budget=config.stream_parsing_work_maximum_count)
        try:
            _parse(self, data, budget)
            return
        except _Slow:
            self._operations = []
    _ORIGINAL(self, stream)


def install() -> bool:
    """Make pypdf's `ContentStream` use this parser; False when this pypdf lacks the hook."""
    if getattr(ContentStream, "_parse_content_stream", None) is _parse_content_stream:
        return True
    needed = ("_parse_content_stream", "_check_limits", "_read_inline_image")
    if _ORIGINAL is None or not all(callable(getattr(ContentStream, n, None)) for n in needed):
        log.info("pypdf %s: keeping its own content-stream parser", pypdf.__version__)
        return False
    ContentStream._parse_content_stream = _parse_content_stream  # type: ignore[method-assign]
    return True
