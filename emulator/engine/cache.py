"""A bounded LRU cache of model responses, keyed by model, URL and request body.

`cache_key(model_id, url, body)` hashes the body's canonical JSON (sorted keys, no spaces) with
SHA-256, so equal requests meet whatever their key order and big batch bodies cost 32 bytes of
key. `ResponseCache(max_entries)` keeps the most recently used answers; `get` returns
`(found, value)`. Values are shared between callers: treat them as read-only. Only successful
answers are stored. Headers are not part of the key: the model (its id) fixes the credentials.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any


def cache_key(model_id: str, url: str, body: Any) -> tuple[str, str, bytes]:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return model_id, url, hashlib.sha256(canonical.encode("utf-8")).digest()


class ResponseCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, bytes], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str, bytes]) -> tuple[bool, Any]:
        if key not in self._entries:
            return False, None
        self._entries.move_to_end(key)
        return True, self._entries[key]

    def put(self, key: tuple[str, str, bytes], value: Any) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
