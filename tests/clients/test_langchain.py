"""LangChain's AlloyDB package (langchain-google-alloydb-pg) against the emulator, unchanged.

The package's own code runs here: its model manager creates the extension in a DO block, checks
the version and the flag, registers, reads and drops a model; ``AlloyDBEmbeddings`` embeds a
query in the database; the vector store inserts and searches with in-database embeddings. The
only thing the tests write themselves is how the engine is created (docs/langchain.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest

from tests.support.emulators import Emulator
from tests.support.paths import REPO

alloydb = pytest.importorskip("langchain_google_alloydb_pg")
from langchain_google_alloydb_pg import (
    AlloyDBEmbeddings,
    AlloyDBEngine,
    AlloyDBModelManager,
    AlloyDBVectorStore,
)

T = TypeVar("T")
DB = "langchain_alloydb"


class InlineAlloyDBEmbeddings(AlloyDBEmbeddings):
    """``AlloyDBEmbeddings`` with the inline template langchain-postgres 0.0.19 asks for; the
    package's 0.15.0 only has the older ``embed_query_inline``, which the vector store now
    refuses (docs/langchain.md, "Known issue")."""

    def embed_query_inline_template(self, placeholder: str) -> str:
        return f"embedding('{self.model_id}', {placeholder})::vector"


@pytest.fixture(scope="module")
def url(emulator: Emulator) -> str:
    """A database with nothing installed: LangChain creates the extension itself."""
    with emulator.connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB}"')
    with psycopg.connect(emulator.dsn_for(dbname=DB), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    return f"postgresql+asyncpg://postgres@{emulator.host}:{emulator.port}/{DB}"


def run_with_engine(url: str, scenario: Callable[[AlloyDBEngine], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = AlloyDBEngine.from_connection_string(url)  # as docs/langchain.md shows
        try:
            return await scenario(engine)
        finally:
            await engine.close()

    return asyncio.run(main())


def test_model_manager_creates_the_extension_and_manages_a_model(url: str, emulator: Emulator) -> None:
    async def scenario(engine: AlloyDBEngine) -> tuple[Any, list[Any], Any]:
        manager = await AlloyDBModelManager.create(engine)  # DO block, version and flag checks
        await manager.acreate_model(
            model_id="lc-embedder",
            model_provider="google",
            model_type="text_embedding",
            model_qualified_name="text-embedding-005",
        )
        model = await manager.aget_model("lc-embedder")
        listed = await manager.alist_models()
        await manager.adrop_model("lc-embedder")
        return model, listed, await manager.aget_model("lc-embedder")

    model, listed, after_drop = run_with_engine(url, scenario)
    assert model is not None
    assert (model.model_id, model.model_provider, model.model_type, model.model_qualified_name) == (
        "lc-embedder", "google", "text_embedding", "text-embedding-005")
    assert "lc-embedder" in [m.model_id for m in listed]
    assert after_drop is None
    with psycopg.connect(emulator.dsn_for(dbname=DB)) as conn:
        (version,) = conn.execute(  # type: ignore[misc]
            "SELECT extversion FROM pg_extension WHERE extname = 'google_ml_integration'"
        ).fetchone()
    assert version == "1.5.3"  # what the model manager asked for


def test_embeddings_embed_a_query_in_the_database(url: str, emulator: Emulator) -> None:
    async def scenario(engine: AlloyDBEngine) -> list[float]:
        await AlloyDBModelManager.create(engine)
        embeddings = await AlloyDBEmbeddings.create(engine, model_id="text-embedding-005")
        return await embeddings.aembed_query("a quiet harbour at dawn")

    vector = run_with_engine(url, scenario)
    with psycopg.connect(emulator.dsn_for(dbname=DB)) as conn:
        (expected,) = conn.execute(  # type: ignore[misc]
            "SELECT embedding('text-embedding-005', 'a quiet harbour at dawn')::vector::text"
        ).fetchone()
    assert len(vector) == 768
    assert vector == json.loads(expected)


def test_vector_store_adds_and_searches_with_in_database_embeddings(url: str) -> None:
    texts = [
        "Fishing boats rest in the quiet harbour",
        "The compiler rejects the unfinished program",
        "Seven green apples fell in the winter market",
    ]

    async def scenario(engine: AlloyDBEngine) -> list[str]:
        await AlloyDBModelManager.create(engine)
        embeddings = await InlineAlloyDBEmbeddings.create(engine, model_id="text-embedding-005")
        await engine.ainit_vectorstore_table("lc_docs", vector_size=768, overwrite_existing=True)
        store = await AlloyDBVectorStore.create(engine, embedding_service=embeddings,
                                                table_name="lc_docs")
        await store.aadd_texts(texts, metadatas=[{"n": i} for i in range(len(texts))])
        found = await store.asimilarity_search("boats in a harbour", k=2)
        return [doc.page_content for doc in found]

    found = run_with_engine(url, scenario)
    assert found[0] == texts[0]  # shares "boat" and "harbour" with the query; the fakes see that
    assert len(found) == 2


def test_the_documented_example_runs(url: str) -> None:
    """docs/langchain.md's vector store example, as written (only the URL differs)."""
    doc = (REPO / "docs" / "langchain.md").read_text()
    example = doc.split("## Example: a vector store with in-database embeddings", 1)[1]
    code = example.split("```python", 1)[1].split("```", 1)[0]
    code = code.replace("postgresql+asyncpg://postgres:secret@127.0.0.1:5488/postgres", url)
    assert url in code, "the example's URL changed: update this test"
    code = code.replace('store.similarity_search("boats in a harbour", k=1)',
                        'found = store.similarity_search("boats in a harbour", k=1)')
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/langchain.md", "exec"), namespace)  # noqa: S102 - our own docs
    assert [d.page_content for d in namespace["found"]] == ["Fishing boats rest in the quiet harbour"]
    asyncio.run(namespace["engine"].close())


def test_scann_index_and_query_options(url: str, emulator: Emulator) -> None:
    """LangChain's ``ScaNNIndex`` (which creates alloydb_scann itself) and its query options."""
    from langchain_google_alloydb_pg.indexes import ScaNNIndex, ScaNNQueryOptions
    from langchain_postgres.v2.indexes import DistanceStrategy

    texts = [f"note {i}: " + word for i, word in enumerate(
        ["harbour boats", "compiler errors", "green apples", "winter market", "quiet dawn"] * 4)]

    async def scenario(engine: AlloyDBEngine) -> tuple[bool, list[str], list[str]]:
        await AlloyDBModelManager.create(engine)
        embeddings = await InlineAlloyDBEmbeddings.create(engine, model_id="text-embedding-005")
        await engine.ainit_vectorstore_table("lc_scann", vector_size=768, overwrite_existing=True)
        store = await AlloyDBVectorStore.create(
            engine, embedding_service=embeddings, table_name="lc_scann",
            index_query_options=ScaNNQueryOptions(num_leaves_to_search=2))
        await store.aadd_texts(texts)
        await store.aapply_vector_index(ScaNNIndex(name="lc_scann_idx"))
        await store.aapply_vector_index(
            ScaNNIndex(name="lc_scann_ip", distance_strategy=DistanceStrategy.INNER_PRODUCT))
        valid = await store.ais_valid_index("lc_scann_idx")
        found = await store.asimilarity_search("boats in a harbour", k=3)
        await store.aapply_vector_index(ScaNNIndex(name="lc_scann_cc"), concurrently=True)
        await store.areindex("lc_scann_idx")
        await store.adrop_vector_index("lc_scann_ip")
        with psycopg.connect(emulator.dsn_for(dbname=DB)) as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                "WHERE a.amname = 'scann' ORDER BY 1").fetchall()
        return valid, [doc.page_content for doc in found], [str(r[0]) for r in rows]

    valid, found, indexes = run_with_engine(url, scenario)
    assert valid
    assert found[0].endswith("harbour boats") and len(found) == 3
    assert indexes == ["lc_scann_cc", "lc_scann_idx"]


def test_ivf_index_and_query_options(url: str, emulator: Emulator) -> None:
    """LangChain's ``IVFIndex`` (``USING ivf ... WITH (lists = 100, quantizer = sq8)``) and
    ``IVFQueryOptions`` (``SET LOCAL ivf.probes``), plain and CONCURRENTLY (ai/create-ivf-index)."""
    from langchain_google_alloydb_pg.indexes import IVFIndex, IVFQueryOptions
    from langchain_postgres.v2.indexes import DistanceStrategy

    texts = [f"note {i}: " + word for i, word in enumerate(
        ["harbour boats", "compiler errors", "green apples", "winter market", "quiet dawn"] * 4)]

    async def scenario(engine: AlloyDBEngine) -> tuple[bool, list[str], list[tuple[str, str]]]:
        await AlloyDBModelManager.create(engine)
        embeddings = await InlineAlloyDBEmbeddings.create(engine, model_id="text-embedding-005")
        await engine.ainit_vectorstore_table("lc_ivf", vector_size=768, overwrite_existing=True)
        store = await AlloyDBVectorStore.create(
            engine, embedding_service=embeddings, table_name="lc_ivf",
            index_query_options=IVFQueryOptions(probes=4))
        await store.aadd_texts(texts)
        await store.aapply_vector_index(IVFIndex(name="lc_ivf_idx", lists=4))
        await store.aapply_vector_index(
            IVFIndex(name="lc_ivf_ip", distance_strategy=DistanceStrategy.INNER_PRODUCT, lists=2),
            concurrently=True)
        valid = await store.ais_valid_index("lc_ivf_idx")
        found = await store.asimilarity_search("boats in a harbour", k=3)
        with psycopg.connect(emulator.dsn_for(dbname=DB)) as conn:
            rows = conn.execute(
                "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_class c "
                "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'ivf' ORDER BY 1").fetchall()
        await store.adrop_vector_index("lc_ivf_ip")
        return valid, [doc.page_content for doc in found], [(str(a), str(b)) for a, b in rows]

    valid, found, indexes = run_with_engine(url, scenario)
    assert valid
    assert found[0].endswith("harbour boats") and len(found) == 3
    assert [name for name, _ in indexes] == ["lc_ivf_idx", "lc_ivf_ip"]
    assert indexes[0][1].endswith("USING ivf (embedding vector_cosine_ops) WITH (lists='4')")


def test_hybrid_search_config_with_a_scann_index(url: str) -> None:
    """ai/run-hybrid-vector-similarity-search, "Perform a hybrid search using LangChain":
    AlloyDBVectorStore with a HybridSearchConfig (dense search on a ScaNN index, keyword search
    on the tsvector column, reciprocal rank fusion)."""
    from langchain_google_alloydb_pg import HybridSearchConfig, reciprocal_rank_fusion
    from langchain_google_alloydb_pg.indexes import ScaNNIndex

    texts = ["Fishing boats rest in the quiet harbour", "The compiler rejects the program",
             "Seven green apples fell in the winter market", "A harbour crane lifts containers"]

    async def scenario(engine: AlloyDBEngine) -> list[str]:
        await AlloyDBModelManager.create(engine)
        embeddings = await InlineAlloyDBEmbeddings.create(engine, model_id="text-embedding-005")
        config = HybridSearchConfig(tsv_column="content_tsv",
                                    fusion_function=reciprocal_rank_fusion)
        await engine.ainit_vectorstore_table("lc_hybrid", vector_size=768,
                                             hybrid_search_config=config,
                                             overwrite_existing=True)
        store = await AlloyDBVectorStore.create(engine, embedding_service=embeddings,
                                                table_name="lc_hybrid",
                                                hybrid_search_config=config)
        await store.aadd_texts(texts)
        await store.aapply_vector_index(ScaNNIndex(name="lc_hybrid_scann", num_leaves=2))
        await store.aapply_hybrid_search_index()
        found = await store.asimilarity_search("boats in a harbour", k=2,
                                               fts_query="harbour")
        return [doc.page_content for doc in found]

    found = run_with_engine(url, scenario)
    assert found[0] == texts[0]  # first in both the dense and the keyword results
    assert set(found) <= set(texts) and len(found) == 2


def test_scann_index_on_a_table_without_rows_is_refused_as_on_alloydb(url: str) -> None:
    """ai/create-scann-index: "By default, you can't create a ScaNN index on a table that is
    empty" (troubleshoot/troubleshoot-scann-indexes has the message). LangChain applies the
    index after ``aadd_texts`` (as test_scann_index_and_query_options does); before it, the
    error reaches the caller, and the table is usable afterwards."""
    from langchain_google_alloydb_pg.indexes import ScaNNIndex
    from sqlalchemy.exc import DBAPIError

    async def scenario(engine: AlloyDBEngine) -> tuple[str, bool]:
        await AlloyDBModelManager.create(engine)
        embeddings = await InlineAlloyDBEmbeddings.create(engine, model_id="text-embedding-005")
        await engine.ainit_vectorstore_table("lc_empty", vector_size=768, overwrite_existing=True)
        store = await AlloyDBVectorStore.create(engine, embedding_service=embeddings,
                                                table_name="lc_empty")
        try:
            await store.aapply_vector_index(ScaNNIndex(name="lc_empty_idx"))
            message = ""
        except DBAPIError as error:
            message = str(error.orig)
        await store.aadd_texts([f"row {i}" for i in range(5)])
        await store.aapply_vector_index(ScaNNIndex(name="lc_empty_idx"))  # num_leaves = 5 rows
        return message, await store.ais_valid_index("lc_empty_idx")

    message, valid = run_with_engine(url, scenario)
    assert ('Cannot create ScaNN index "lc_empty_idx" for table "lc_empty", error: '
            'FAILED_PRECONDITION') in message
    assert valid


# The package's own code calls pydantic's deprecated .dict(): its warning, not ours.
@pytest.mark.filterwarnings("ignore:The `dict` method is deprecated")
def test_chat_history_loader_saver_and_checkpointer_run_unchanged(url: str) -> None:
    """The package's other stores, as its README shows them: chat message history, document
    saver and loader (table and query), and the LangGraph checkpointer."""
    from langchain_core.documents import Document
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_google_alloydb_pg import (
        AlloyDBChatMessageHistory,
        AlloyDBDocumentSaver,
        AlloyDBLoader,
        AlloyDBSaver,
    )
    from langgraph.checkpoint.base import empty_checkpoint

    async def scenario(engine: AlloyDBEngine) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        await engine.ainit_chat_history_table("lc_chat")
        history = await AlloyDBChatMessageHistory.create(engine, session_id="s1",
                                                         table_name="lc_chat")
        await history.aadd_messages([HumanMessage(content="hi"), AIMessage(content="hello")])
        seen["history"] = [m.content for m in history.messages]
        await history.aclear()
        seen["cleared"] = len(history.messages)

        await engine.ainit_document_table("lc_saved")
        saver = await AlloyDBDocumentSaver.create(engine, table_name="lc_saved")
        doc = Document(page_content="a saved page", metadata={"source": "test"})
        await saver.aadd_documents([doc])
        loaded = await (await AlloyDBLoader.create(engine, table_name="lc_saved")).aload()
        seen["loaded"] = [(d.page_content, d.metadata) for d in loaded]
        by_query = await (await AlloyDBLoader.create(
            engine, query="SELECT * FROM lc_saved")).aload()
        seen["by_query"] = len(by_query)
        await saver.adelete([doc])

        await engine.ainit_checkpoint_table()
        checkpointer = await AlloyDBSaver.create(engine)
        config: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        checkpoint = empty_checkpoint()
        stored = await checkpointer.aput(config, checkpoint, {"source": "input", "step": 1}, {})
        fetched = await checkpointer.aget_tuple(stored)
        seen["checkpoint"] = fetched is not None and fetched.checkpoint["id"] == checkpoint["id"]
        seen["listed"] = len([c async for c in checkpointer.alist(config)])
        return seen

    seen = run_with_engine(url, scenario)
    assert seen == {"history": ["hi", "hello"], "cleared": 0,
                    "loaded": [("a saved page", {"source": "test"})], "by_query": 1,
                    "checkpoint": True, "listed": 1}
