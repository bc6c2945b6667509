"""A bounded LRU cache of model responses, keyed by model, URL and request body.

`cache_key(model_id, url, body)` hashes the body's canonical JSON (sorted keys, no spaces) with
SHA-256, so equal requests meet whatever their key order and big batch bodies cost 32 bytes of
key. `ResponseCache(max_entries, max_numbers)` keeps the most recently used answers; `get`
returns `(found, value)`. Values are shared between callers: treat them as read-only. Only
successful answers are stored. Headers are not part of the key: the model (its id) fixes the
credentials.

Embeddings that know their own literal (`LiteralVector`: the fakes' vectors) are kept frozen
(`stored(value)`, `LiteralVector.frozen()`, emulator/embedding_literal.py): a fake-mode backfill
caches 10,000 vectors of 768 floats, which as lists every collection of the garbage collector
that saw them walked item by item. So `get` answers the value as stored, vectors frozen: the
warm-up reads their literals as they are, and `thawed(value)` gives the answer as the provider
(the fake) made it, with the same values in lists of the same class.

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
from operator import is_
from typing import Any

from emulator.embedding_literal import FrozenVector, LiteralVector


def cache_key(model_id: str, url: str, body: Any) -> tuple[str, str, bytes]:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return model_id, url, hashlib.sha256(canonical.encode("utf-8")).digest()


DEFAULT_MAX_NUMBERS = 20_000_000


def weight(value: Any) -> int:
    """About how much memory an answer takes, in numbers: the length of each list of numbers
    (an embedding, frozen or not) in it, plus one per other container. Cheap: it never walks a
    vector."""
    return stored(value)[1]


def _numbers(value: list[Any]) -> bool:
    """A list of numbers (an embedding): nothing in it to freeze, not worth walking."""
    return bool(value) and isinstance(value[0], (int, float)) and not isinstance(value[0], bool)


def stored(value: Any) -> tuple[Any, int]:
    """`value` as the cache keeps it, each `LiteralVector` in it frozen, in new dicts and lists
    around them (the same object when it holds none), and its `weight`."""
    if isinstance(value, dict):
        items = {}
        size = 1
        for key, item in value.items():
            items[key], item_size = stored(item)
            size += item_size
        return (value if all(map(is_, items.values(), value.values())) else items), size
    if isinstance(value, list):
        if isinstance(value, LiteralVector):
            return value.frozen(), len(value)
        if _numbers(value):
            return value, len(value)
        pairs = [stored(item) for item in value]
        elements = [element for element, _ in pairs]
        size = 1 + sum(item_size for _, item_size in pairs)
        return (value if all(map(is_, elements, value)) else elements), size
    if isinstance(value, FrozenVector):
        return value, len(value)
    return value, 1


def thawed(value: Any) -> Any:
    """`value` with each `FrozenVector` in it thawed, in new dicts and lists around them (the
    same object when it holds none)."""
    if isinstance(value, FrozenVector):
        return value.thaw()
    if isinstance(value, dict):
        items = {key: thawed(item) for key, item in value.items()}
        return value if all(map(is_, items.values(), value.values())) else items
    if isinstance(value, list) and not _numbers(value):
        elements = [thawed(item) for item in value]
        return value if all(map(is_, elements, value)) else elements
    return value


class ResponseCache:
    def __init__(self, max_entries: int, max_numbers: int = DEFAULT_MAX_NUMBERS) -> None:
        self.max_entries = max_entries
        self.max_numbers = max_numbers
        self.numbers = 0  # the total weight of the entries
        # key -> (the answer as stored, its weight)
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
        value, size = stored(value)
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
