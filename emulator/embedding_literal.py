"""`LiteralVector`: an embedding that writes its own PostgreSQL ``real[]`` literal.

The engine's warm-up path (engine/extract.py) turns each answered embedding into a literal. The
fakes' vectors (fakes/embeddings.py's `FakeVector`) subclass this class: they know their few
non-zero values, so they write the literal without formatting every zero. It lives outside both
packages so that neither imports the other for it.

A `FrozenVector` is such a vector without its list: what the engine's response cache keeps
(engine/cache.py) and what the in-process fakes answer the warm-up with, which only needs the
literal. It is an object the garbage collector does not walk number by number (a list of 768
floats is visited item by item by every collection that sees it; a cache of 10,000 of them made
the collector a large share of a fake-mode backfill), and building no list saves time too.
`LiteralVector.frozen()` and `FrozenVector.thaw()` go from one to the other: same class, same
values, same literal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class LiteralVector(list[float]):
    """A list of floats whose ``literal()`` is its ``real[]`` literal (``repr`` of each)."""

    __slots__ = ()

    def literal(self) -> str:
        return "{" + ",".join(map(repr, self)) + "}"

    def frozen(self) -> FrozenVector:
        """This vector in a form the collector does not walk (see the module's docstring)."""
        return _FrozenValues(tuple(self))


class FrozenVector:
    """A `LiteralVector` without its list (see the module's docstring); `thaw()` makes one."""

    __slots__ = ()

    def thaw(self) -> LiteralVector:
        raise NotImplementedError

    def literal(self) -> str:
        """The literal of the vector `thaw()` makes."""
        return self.thaw().literal()

    def nonzero(self) -> tuple[Sequence[int], Sequence[float]]:
        """The positions and values of the non-zero numbers of the vector `thaw()` makes (the
        warm-up's binary store puts them in a vector of zeros: engine/binary.py)."""
        values = self.thaw()
        positions = [i for i, x in enumerate(values) if x != 0.0 or math.copysign(1.0, x) < 0]
        return positions, [values[i] for i in positions]

    def __len__(self) -> int:
        raise NotImplementedError


class _FrozenValues(FrozenVector):
    # A tuple of floats: the collector untracks it the first time it sees it.
    __slots__ = ("_values",)

    def __init__(self, values: tuple[float, ...]) -> None:
        self._values = values

    def thaw(self) -> LiteralVector:
        return LiteralVector(self._values)

    def __len__(self) -> int:
        return len(self._values)
