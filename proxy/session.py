"""Sans-io parts of a relayed session: what the asyncio shell in proxy/relay.py delegates.

Plan
----
A session sometimes must do work of its own between two client messages: open its upstream
connection after the StartupMessage, or register the engine endpoint in its database before a
statement that may call a model runs (docs/internals.md). Meanwhile what the client sends is
*held*: ``HoldQueue`` keeps it, in arrival order, until every piece of work is done. It holds two
kinds of bytes: *raw* bytes not yet framed (they are scanned, and possibly rewritten, only once
released, so they see the state the work left) and *framed* bytes, already scanned and rewritten,
that go upstream as they are (the rest of a chunk whose first statement started the work).

Known gaps (issue 14): statement accounting (tag renames, error hints, the ReadyForQuery at which
to register) still lives in ``relay.ClientSide``.
"""

from __future__ import annotations

from typing import NamedTuple


class Held(NamedTuple):
    data: bytes
    framed: bool  # True: scanned and rewritten, send as is; False: raw, scan when released


class HoldQueue:
    """Client bytes kept while the session waits; released when the last hold ends."""

    __slots__ = ("_holds", "_items", "holding")

    def __init__(self) -> None:
        self._holds = 0
        self._items: list[Held] = []
        self.holding = False  # an attribute, not a property: the relay reads it per chunk

    def hold(self) -> None:
        """One more piece of work to wait for."""
        self._holds += 1
        self.holding = True

    def keep(self, data: bytes, *, framed: bool) -> None:
        """Keep client bytes until the hold ends (the shell stops reading meanwhile)."""
        if not self._holds:
            raise RuntimeError("keep() without hold(): send the bytes on")
        self._items.append(Held(data, framed))

    def release(self) -> list[Held]:
        """One piece of work is done: when it was the last, everything kept, in order."""
        if self._holds == 0:
            raise RuntimeError("release() without hold()")
        self._holds -= 1
        if self._holds:
            return []
        self.holding = False
        items, self._items = self._items, []
        return items

    def requeue(self, items: list[Held]) -> None:
        """Put back, after what was kept meanwhile, released items that met a new hold."""
        self._items.extend(items)
