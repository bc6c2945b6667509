"""Split one batched LLM prompt into the prompts of its items.

`ai.if`, `ai.rank` and `ai.generate` batch n prompts into one request whose response schema is an
ARRAY of n items. The items arrive either as separate text parts (after an optional instruction
part) or as one text that lists them. `split_items(parts, n)` returns n item prompts, trying in
turn:

1. several parts: the last n parts are the items, earlier parts the shared instruction;
2. one text holding a JSON array of n elements (strings, or values rendered as JSON);
3. one text listing items with markers: `1. x`, `2) x`, `[3] x`, `- x`, `* x` (an item runs until
   the next marker line);
4. the last n non-empty lines;
5. the whole text, repeated n times.

When `n` is None (an ARRAY without minItems/maxItems) the first method that finds any items wins.
Each item prompt is the item alone when it asks its own question (contains "?"), else the shared
instruction followed by the item, so "Is this about delivery?" + ["late parcel", "nice color"]
becomes two full questions.
"""

from __future__ import annotations

import json
import re

_MARKER = re.compile(r"^\s*(?:\d+\s*[.):]|\[\d+\]|[-*\u2022])\s+(.*)$")


def _combine(preamble: str, items: list[str]) -> list[str]:
    preamble = preamble.strip()
    if not preamble:
        return [item.strip() for item in items]
    return [item.strip() if "?" in item else f"{preamble}\n{item.strip()}" for item in items]


def _json_array(text: str, n: int | None) -> tuple[str, list[str]] | None:
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "["):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, list) and value and (n is None or len(value) == n):
            items = [v if isinstance(v, str) else json.dumps(v) for v in value]
            return text[:start], items
    return None


def _marked_lines(text: str) -> tuple[str, list[str]]:
    preamble: list[str] = []
    items: list[list[str]] = []
    for line in text.splitlines():
        marker = _MARKER.match(line)
        if marker is not None:
            items.append([marker.group(1)])
        elif items:
            items[-1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble), ["\n".join(lines).strip() for lines in items]


def split_items(parts: list[str], n: int | None) -> list[str]:
    """The prompts of the batch's items: exactly n of them when n is given."""
    parts = [p for p in parts if p.strip()]
    if len(parts) > 1 and (n is None or len(parts) >= n):
        count = len(parts) if n is None else n
        return _combine("\n".join(parts[: len(parts) - count]), parts[len(parts) - count :])
    text = "\n".join(parts)
    found = _json_array(text, n)
    if found is not None:
        return _combine(*found)
    preamble, marked = _marked_lines(text)
    if marked and (n is None or len(marked) == n):
        return _combine(preamble, marked)
    lines = [line for line in text.splitlines() if line.strip()]
    if n is not None and 1 < n <= len(lines):
        return _combine("\n".join(lines[:-n]), lines[-n:])
    return [text.strip()] * (1 if n is None else n)
