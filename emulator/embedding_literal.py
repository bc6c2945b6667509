"""`LiteralVector`: an embedding that writes its own PostgreSQL ``real[]`` literal.

The engine's warm-up path (engine/extract.py) turns each answered embedding into a literal. The
fakes' vectors (fakes/embeddings.py's `FakeVector`) subclass this class: they know their few
non-zero values, so they write the literal without formatting every zero. It lives outside both
packages so that neither imports the other for it.
"""

from __future__ import annotations


class LiteralVector(list[float]):
    """A list of floats whose ``literal()`` is its ``real[]`` literal (``repr`` of each)."""

    __slots__ = ()

    def literal(self) -> str:
        return "{" + ",".join(map(repr, self)) + "}"
