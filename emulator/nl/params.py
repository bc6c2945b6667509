"""Literals and parameters of templates and fragments.

Operations:

- ``literals(sql)``: the constants of a statement (strings and numbers), with their character spans,
  from PostgreSQL's own scanner (pglast), so text inside identifiers or comments never counts.
- ``parameterize(sql, intent, known)``: AlloyDB's automatic parameterization: a literal of the
  SQL whose value the intent also names becomes ``$k`` in both, longest value first (the order
  Google's page shows: ``T."A11" BETWEEN $2 AND $1`` for 6000 and 10000), with a manifest where
  each value is "a given <kind>".
- ``parameter_kinds(sql, psql)``: for each ``$k``, the literal it stands for in ``sql``
  (aligned token by token) - its original value and whether it was a number.
- ``fill(psql, values)``: ``$k`` replaced by SQL literals, outside strings and comments.
- ``sql_string(value)``: a quoted SQL string literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pglast import parser

NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
MAX_PATTERN_PARAMETERS = 4  # more parameters: the intent is not used as a pattern
MAX_VALUE_CHARS = 100  # the longest value a pattern parameter captures
_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Literal:
    start: int  # character offsets into the text, end exclusive
    end: int
    value: str
    numeric: bool


@dataclass(frozen=True, slots=True)
class Parameterized:
    psql: str
    pintent: str
    manifest: str
    values: dict[int, str]


def _tokens(sql: str) -> list[Any]:
    """PostgreSQL's tokens of ``sql``; their offsets count characters (code points), not bytes."""
    try:
        return list(parser.scan(sql))
    except parser.ParseError:  # an unterminated string, say: no tokens to trust
        return []


def _unquote(raw: str) -> str | None:
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    match = re.fullmatch(r"(\$\w*\$)(.*)\1", raw, re.DOTALL)
    if match:
        return match.group(2)
    return None  # E'' and U&'' strings: left alone


def literals(sql: str) -> list[Literal]:
    found: list[Literal] = []
    for token in _tokens(sql):
        raw = sql[token.start:token.end + 1]
        if token.name == "SCONST":
            value = _unquote(raw)
            if value is not None:
                found.append(Literal(token.start, token.end + 1, value, False))
        elif token.name in ("ICONST", "FCONST"):
            found.append(Literal(token.start, token.end + 1, raw, True))
    return found


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def word_pattern(value: str) -> re.Pattern[str]:
    """``value`` as a whole phrase (not inside a longer word), any case."""
    return re.compile(r"(?<!\w)" + re.escape(value) + r"(?!\w)", re.IGNORECASE)


def _kind_words(value: str, numeric: bool, known: list[dict[str, Any]]) -> str:
    if numeric or NUMBER.match(value):
        return "a given number"
    for entry in known:
        if str(entry.get("value", "")).lower() == value.lower():
            concept = str(entry.get("concept_type") or "value")
            return "a given " + concept.removesuffix("_name").replace("_", " ")
    return "a given value"


def parameterize(sql: str, intent: str, known: list[dict[str, Any]]) -> Parameterized:
    chosen: dict[str, bool] = {}  # value -> numeric, in first-appearance order
    for lit in literals(sql):
        if lit.value in chosen or (not lit.numeric and len(lit.value) < 2):
            continue
        if word_pattern(lit.value).search(intent):
            chosen[lit.value] = lit.numeric
    order = sorted(chosen, key=lambda v: -len(v))  # stable: ties keep first appearance
    numbers = {value: index + 1 for index, value in enumerate(order)}
    psql = _replace_literals(sql, {v: f"${n}" for v, n in numbers.items()})
    pintent = _replace_phrases(intent, [(v, f"${numbers[v]}") for v in order])
    manifest = _replace_phrases(intent, [(v, _kind_words(v, chosen[v], known)) for v in order])
    return Parameterized(psql, pintent, manifest, {n: v for v, n in numbers.items()})


def _replace_phrases(text: str, replacements: list[tuple[str, str]]) -> str:
    """Each phrase (whole; see _phrase_pattern for case) replaced, in one pass over ``text``: where several phrases
    start at one place the first listed wins (longest first: a value inside a longer one is not
    split), and a replacement is never searched again (the "1" of the "$1" put in for "10" is
    not the value 1)."""
    if not replacements:
        return text
    alternatives = "|".join(f"(?P<v{i}>{_phrase_pattern(text, phrase)})"
                            for i, (phrase, _) in enumerate(replacements))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    return pattern.sub(lambda m: replacements[int(str(m.lastgroup)[1:])][1], text)


def _phrase_pattern(text: str, phrase: str) -> str:
    """``phrase`` as it is written where ``text`` has it so (in "Rows named ROWS", the value ROWS
    is the second word, not the first), in any case where it has not."""
    escaped = re.escape(phrase)
    if re.search(rf"(?<!\w){escaped}(?!\w)", text):
        return escaped
    return f"(?i:{escaped})"


def _replace_literals(sql: str, marks: dict[str, str]) -> str:
    out: list[str] = []
    position = 0
    for lit in literals(sql):
        mark = marks.get(lit.value)
        if mark is None:
            continue
        out.append(sql[position:lit.start])
        out.append(mark)
        position = lit.end
    out.append(sql[position:])
    return "".join(out)


def parameter_kinds(sql: str, psql: str) -> dict[int, Literal]:
    """Each ``$k`` of ``psql`` and the literal of ``sql`` at the same token position (only when
    the two statements have the same token count, as an automatic parameterization does)."""
    original = _tokens(sql)
    parameterized = _tokens(psql)
    if len(original) != len(parameterized):
        return {}
    kinds: dict[int, Literal] = {}
    for tok, ptok in zip(original, parameterized):
        if ptok.name != "PARAM":
            continue
        number = int(psql[ptok.start + 1:ptok.end + 1])
        raw = sql[tok.start:tok.end + 1]
        if tok.name == "SCONST":
            kinds[number] = Literal(tok.start, tok.end + 1, _unquote(raw) or raw, False)
        elif tok.name in ("ICONST", "FCONST"):
            kinds[number] = Literal(tok.start, tok.end + 1, raw, True)
    return kinds


def parameters_of(text: str) -> list[int]:
    """The ``$k`` numbers of an intent, in order of appearance, each once."""
    seen: list[int] = []
    for match in _PARAM.finditer(text):
        number = int(match.group(1))
        if number not in seen:
            seen.append(number)
    return seen


def fill(psql: str, values: dict[int, str], numeric: dict[int, bool]) -> str:
    """``psql`` with each ``$k`` token replaced by its value as a literal."""
    out: list[str] = []
    position = 0
    for token in _tokens(psql):
        if token.name != "PARAM":
            continue
        number = int(psql[token.start + 1:token.end + 1])
        if number not in values:
            continue
        value = values[number]
        text = value if numeric.get(number) and NUMBER.match(value) else sql_string(value)
        out.append(psql[position:token.start])
        out.append(text)
        position = token.end + 1
    out.append(psql[position:])
    return "".join(out)


def intent_pattern(pintent: str) -> re.Pattern[str] | None:
    """A parameterized intent as a pattern over questions: ``$k`` captures a value."""
    parts = _PARAM.split(pintent.strip().rstrip(".?!"))
    if len(parts) < 3 or len(parts) > 2 * MAX_PATTERN_PARAMETERS + 1:
        return None
    pattern = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            words = [re.escape(w) for w in part.split()]
            pattern += r"\s*" + r"\s+".join(words) + r"\s*" if words else r"\s*"
        else:
            # A bounded lazy value: long questions cannot make the search explode.
            pattern += (rf"(?P<p{part}>.{{1,{MAX_VALUE_CHARS}}}?)"
                        if f"(?P<p{part}>" not in pattern else f"(?P=p{part})")
    return re.compile(pattern + r"(?=$|[\s.?!,;])", re.IGNORECASE)


def captured(match: re.Match[str]) -> dict[int, str]:
    return {int(name[1:]): value.strip().strip("'\"") for name, value in match.groupdict().items()
            if value is not None}
