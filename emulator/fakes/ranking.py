"""The fake ranker: records scored by word overlap with the query.

Operation: `rank(query, records, top_n)` with records as the Vertex AI ranking API sends them
(`{"id", "title"?, "content"}`); returns `(record, score)` pairs sorted by score, highest first,
ties in input order, at most `top_n`. A record's score is the share of the query's content stems
found in its title and content, nudged by a tiny deterministic amount per record so scores are
rarely equal, and kept within 0..1.
"""

from __future__ import annotations

import hashlib
from typing import Any

from emulator.words import overlap


def _nudge(text: str) -> float:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") / 2**32 * 0.001


def score(query: str, text: str) -> float:
    return round(min(1.0, overlap(query, text) * 0.998 + _nudge(text)), 6)


def rank(
    query: str, records: list[dict[str, Any]], top_n: int | None
) -> list[tuple[dict[str, Any], float]]:
    scored = [
        (record, score(query, f"{record.get('title') or ''} {record.get('content') or ''}"))
        for record in records
    ]
    scored.sort(key=lambda pair: -pair[1])
    return scored if top_n is None or top_n <= 0 else scored[:top_n]
