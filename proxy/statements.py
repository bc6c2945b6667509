"""Statement detection and splicing.

Plan
----
Nearly every statement passes untouched. A cheap byte search (``PREFILTER``) picks the few that
may need the proxy: those that name the extension's schemas or functions, ``pg_settings``,
``CREATE/ALTER EXTENSION``, ``scann``, ``auto_maintenance`` or ``TRUNCATE`` (proxy/scann.py), the
word ``ivf`` (proxy/ivf.py), ``alloydb_ai_nl``, ``parameterized_views`` or ``vector_assist``
(their flags' ``SHOW``), ``session_read_only`` (proxy/readonly.py), or ``$@`` (AlloyDB's view parameters,
proxy/pviews.py). Only those are parsed, with pglast (libpg_query: PostgreSQL's own grammar), and
rewritten by *splicing*: replacement text goes into the original string at the parser's
locations; nothing is regenerated from the syntax tree, so every byte the proxy does not mean to
change (pgvector's ``<=>``, comments, dollar quotes) survives as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Bytes that make a Query or Parse worth parsing. Case-insensitive: SQL keywords and unquoted
# identifiers are.
PREFILTER: Final = re.compile(
    rb"google_ml|embedding\s*\(|\bai\s*\.|\"ai\"|ml_predict_row|pg_settings|extension|scann"
    rb"|\bivf\b|truncate|auto_maintenance|alloydb_ai_nl|parameterized_views|session_read_only"
    rb"|vector_assist",
    re.IGNORECASE,
)


# A looser, case-sensitive form of PREFILTER for lowercased text: it matches wherever PREFILTER
# does, and runs about four times faster (the regex engine skips to the letters its literals
# start with, which IGNORECASE and a leading \b prevent). Every client Query meets it, so the
# words of ivf.py and TRUNCATE are searched by a part that starts with a rare letter ("vf" of
# "ivf", "uncate" of "truncate"): with "ivf|truncate" an 8 KB INSERT took 142 us, 106 without
# them, 115 us so. ``ALTER INDEX i SET (auto_maintenance = on)`` (ai/maintain-vector-indexes) names
# no "scann" when the index's name does not: its word is searched by "maintenan", whose "m" the
# alternatives already start with (8 KB INSERT: 94 us with it and without; "auto_maint", 102).
# ``SHOW alloydb_ai_nl.enabled`` (rewrites.py) likewise by "ydb_ai_nl", "y" being rare, and
# ``SHOW parameterized_views.enabled`` by "zed_vi". ``alloydb_session_read_only``
# (proxy/readonly.py) by "session_read_only", whose "s" the alternatives already start with, and
# ``SHOW vector_assist.enabled`` by "vector_assist", whose "v" "vf" starts with.
_LOWERCASE_PREFILTER: Final = re.compile(
    rb"google_ml|embedding|ai\s*\.|\"ai\"|ml_predict_row|pg_settings|extension|scann|vf|uncate"
    rb"|maintenan|ydb_ai_nl|zed_vi|session_read_only|vector_assist"
)


# ScaNN's index options other than auto_maintenance, which ``ALTER INDEX i SET (...)`` may name
# when nothing else in the text says ScaNN (the index's name need not): pgvector's handler would
# refuse them (22023 unrecognized parameter), proxy/scann.py takes them. Looked for only in texts
# of at most _SHAPE_MAX bytes whose digit-free form is not known yet, never by PREFILTER: one
# alternative more there cost every 8 KB INSERT 4 to 8 % more prefilter time, whatever its first
# letter; here a short text not seen before pays about 0.5 us more (3.2 -> 3.8 us for a 90-byte
# INSERT), a long or a known one nothing.
def _names_scann_option(lowered: bytes) -> bool:
    return (b"q" in lowered and b"quantizer" in lowered) or (
        b"_le" in lowered and (b"num_leaves" in lowered or b"num_levels" in lowered))


# Texts known not to match PREFILTER once their digits are deleted. Deleting digits never
# removes a match: no alternative matches a digit, and a digit is a word character, so the
# character before a match's ``\b`` is none. So a text whose digit-free form does not match does
# not match either, and statements that differ only in their numbers (the simple protocol's
# literals: every pgbench -S Query) are decided by one set lookup instead of two regex scans.
_NOT_WORTH: set[bytes] = set()
_NOT_WORTH_MAX = 512  # entries, then the set starts over: at most 512 x _SHAPE_MAX bytes
_SHAPE_MAX = 2048  # longer texts are scanned every time
_DIGITS: Final = b"0123456789"


def worth_parsing(sql: bytes, start: int = 0, end: int | None = None) -> bool:
    """Whether ``sql[start:end]`` (a whole Query or Parse) may need the proxy: exactly whether
    PREFILTER matches it or it holds ``$@``, or, in a text of at most _SHAPE_MAX bytes, whether
    it names a ScaNN option (``_names_scann_option``, in any case)."""
    end = len(sql) if end is None else end
    if end - start > _SHAPE_MAX:
        return _matches(sql, start, end)
    shape = sql[start:end].translate(None, _DIGITS)
    if type(shape) is not bytes:
        shape = bytes(shape)  # a bytearray or memoryview: hashable, for the set
    if shape in _NOT_WORTH:
        return False
    lowered = shape.lower()
    if not _matches(shape, 0, len(shape), lowered):
        if _names_scann_option(lowered):
            return True  # deleting digits takes none of these words away either
        if len(_NOT_WORTH) >= _NOT_WORTH_MAX:
            _NOT_WORTH.clear()
        _NOT_WORTH.add(shape)
        return False
    return _matches(sql, start, end) or _names_scann_option(lowered)


def _matches(sql: bytes, start: int, end: int, lowered: bytes | None = None) -> bool:
    """``lowered``: ``sql[start:end].lower()`` when the caller has it."""
    if sql.find(b"$@", start, end) >= 0:  # AlloyDB's view parameters (proxy/pviews.py)
        return True
    if _LOWERCASE_PREFILTER.search(sql[start:end].lower() if lowered is None else lowered) is None:
        return False
    return PREFILTER.search(sql, start, end) is not None


@dataclass(frozen=True, slots=True)
class Splice:
    """Replace ``text[start:end]`` with ``replacement`` (character offsets)."""

    start: int
    end: int
    replacement: str


def apply_splices(text: str, splices: list[Splice]) -> str:
    """The text with every splice applied. Splices must not overlap."""
    result: list[str] = []
    cursor = 0
    for splice in sorted(splices, key=lambda s: (s.start, s.end)):
        if splice.start < cursor:
            raise ValueError(f"overlapping splices at offset {splice.start}")
        result.append(text[cursor : splice.start])
        result.append(splice.replacement)
        cursor = splice.end
    result.append(text[cursor:])
    return "".join(result)


# An identifier as written in SQL: plain or double-quoted, optionally schema-qualified.
_IDENT = r'(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)'
QUALIFIED_NAME: Final = re.compile(rf"{_IDENT}(?:\s*\.\s*{_IDENT})*")


def name_span(text: str, location: int) -> tuple[int, int]:
    """The span of the (qualified) name that starts at ``location``."""
    match = QUALIFIED_NAME.match(text, location)
    if match is None:
        return location, location
    return match.start(), match.end()


def call_span(text: str, location: int) -> tuple[int, int]:
    """The span of a function call ``name(...)`` starting at ``location``, parentheses balanced,
    skipping string literals, quoted identifiers, dollar quotes and comments."""
    start, name_end = name_span(text, location)
    pos = _skip_space(text, name_end)
    if pos >= len(text) or text[pos] != "(":
        return start, name_end  # not a call: the name alone, not the space after it
    depth = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return start, pos + 1
        elif ch == "'":
            pos = _skip_quoted(text, pos, "'")
            continue
        elif ch == '"':
            pos = _skip_quoted(text, pos, '"')
            continue
        elif ch == "$":
            dollar = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", text[pos:])
            if dollar:
                tag = dollar.group(0)
                close = text.find(tag, pos + len(tag))
                pos = n if close < 0 else close + len(tag)
                continue
        elif text.startswith("--", pos):
            eol = text.find("\n", pos)
            pos = n if eol < 0 else eol
            continue
        elif text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            pos = n if close < 0 else close + 2
            continue
        pos += 1
    return start, n


def _skip_quoted(text: str, pos: int, quote: str) -> int:
    pos += 1
    n = len(text)
    while pos < n:
        if text[pos] == quote:
            if pos + 1 < n and text[pos + 1] == quote:
                pos += 2
                continue
            return pos + 1
        pos += 1
    return n


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos
