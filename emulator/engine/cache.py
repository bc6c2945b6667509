"""A bounded LRU cache of model responses, keyed by model, URL and request body.

`cache_key(model_id, url, body)` hashes the body's canonical JSON (sorted keys, no spaces) with
SHA-256, so equal requests meet whatever their key order and big batch bodies cost 32 bytes of
key. `ResponseCache(max_entries, max_numbers)` keeps the most recently used answers; `get`
returns `(found, value)`. Values are shared between callers: treat them as read-only. Only
successful answers are stored. Headers are not part of the key: the model (its id) fixes the
credentials.

Memory: one entry can be a batch of 250 embeddings of 3,072 numbers, so a count of entries alone
does not bound it. Each entry is also weighed by the numbers it holds (`weight`: the lengths of
its lists of numbers, found without walking into them), and the least recently used entries go
once the total passes `max_numbers` (default 20 million, about 250 MB with the warm-up's
literals).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any


def cache_key(model_id: str, url: str, body: Any) -> tuple[str, str, bytes]:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return model_id, url, hashlib.sha256(canonical.encode("utf-8")).digest()


DEFAULT_MAX_NUMBERS = 20_000_000


def weight(value: Any) -> int:
    """About how much memory an answer takes, in numbers: the length of each list of numbers
    (an embedding) in it, plus one per other container. Cheap: it never walks a vector."""
    if isinstance(value, dict):
        return 1 + sum(weight(v) for v in value.values())
    if isinstance(value, list):
        if value and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
            return len(value)
        return 1 + sum(weight(v) for v in value)
    return 1


class ResponseCache:
    def __init__(self, max_entries: int, max_numbers: int = DEFAULT_MAX_NUMBERS) -> None:
        self.max_entries = max_entries
        self.max_numbers = max_numbers
        self.numbers = 0  # the total weight of the entries
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str, bytes]) -> tuple[bool, Any]:
        if key not in self._entries:
            return False, None
        self._entries.move_to_end(key)
        return True, self._entries[key][0]

    def put(self, key: tuple[str, str, bytes], value: Any) -> None:
        if self.max_entries <= 0:
            return
        size = weight(value)
        if size > self.max_numbers:
            return  # bigger than the whole cache: not worth evicting everything for
        old = self._entries.pop(key, None)
        if old is not None:
            self.numbers -= old[1]
        self._entries[key] = (value, size)
        self.numbers += size
        while len(self._entries) > self.max_entries or self.numbers > self.max_numbers:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.numbers -= evicted

    def clear(self) -> None:
        self._entries.clear()
        self.numbers = 0
