"""SQLAlchemy 2 ORM round trip through the proxy, with the psycopg 3 driver; docs/sqlalchemy.md's
examples as printed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import ForeignKey, String, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from tests.support.databases import empty_database
from tests.support.emulators import Emulator
from tests.support.paths import REPO


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "proxy_orm_author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    books: Mapped[list[Book]] = relationship(back_populates="author",
                                             cascade="all, delete-orphan")


class Book(Base):
    __tablename__ = "proxy_orm_book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("proxy_orm_author.id"))
    author: Mapped[Author] = relationship(back_populates="books")


@pytest.fixture
def engine(emulator: Any) -> Iterator[Engine]:
    url = f"postgresql+psycopg://postgres@{emulator.host}:{emulator.port}/postgres"
    engine = create_engine(url, pool_size=2)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def test_orm_insert_query_update_delete_round_trip(engine: Engine) -> None:
    with Session(engine) as session:
        author = Author(name="Ursula", books=[Book(title="The Dispossessed"),
                                              Book(title="A Wizard of Earthsea")])
        session.add(author)
        session.commit()
        author_id = author.id

    with Session(engine) as session:
        titles = session.scalars(
            select(Book.title).join(Author).where(Author.id == author_id).order_by(Book.title)
        ).all()
        assert titles == ["A Wizard of Earthsea", "The Dispossessed"]

        book = session.scalars(select(Book).where(Book.title == "The Dispossessed")).one()
        book.title = "The Dispossessed: An Ambiguous Utopia"
        session.commit()

    with Session(engine) as session:
        loaded = session.get(Author, author_id)
        assert loaded is not None
        assert sorted(b.title for b in loaded.books) == [
            "A Wizard of Earthsea", "The Dispossessed: An Ambiguous Utopia"]
        session.delete(loaded)
        session.commit()

    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Book)) == 0
        assert session.scalar(select(func.count()).select_from(Author)) == 0


def test_orm_integrity_error_rolls_back_and_the_session_recovers(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Author(name="Dup"))
        session.commit()
        session.add(Author(name="Dup"))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Author)) == 1


def test_orm_bulk_insert_uses_insertmanyvalues(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all([Author(name=f"author {i}") for i in range(500)])
        session.commit()
        ids = session.scalars(select(Author.id)).all()
    assert len(set(ids)) == 500


def test_the_documented_examples_run_as_printed(
        emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/sqlalchemy.md's Python blocks, in order, in one namespace, in a new database: only
    the URL differs. They missed the table and the secret, so a reader's copy failed."""
    page = (REPO / "docs" / "sqlalchemy.md").read_text()
    code = "\n".join(re.findall(r"^```python\n(.*?)^```\n", page, re.MULTILINE | re.DOTALL))
    printed_url = "postgresql+psycopg://postgres@127.0.0.1:5488/postgres"
    assert printed_url in code, "the page's URL changed: update this test"
    url = empty_database(emulator, "sqlalchemy_page").replace("postgresql://",
                                                              "postgresql+psycopg://")
    namespace: dict[str, Any] = {}
    # dont_inherit: not this module's `from __future__ import annotations`, as in a reader's file
    exec(compile(code.replace(printed_url, url), "docs/sqlalchemy.md", "exec",  # noqa: S102
                 dont_inherit=True), namespace)  # our own docs
    namespace["engine"].dispose()
    assert capsys.readouterr().out == "768\nAlloyDB is a managed PostgreSQL database\n"
