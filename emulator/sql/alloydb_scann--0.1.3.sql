-- alloydb_scann 0.1.3, emulated: AlloyDB's ScaNN index on stock PostgreSQL with pgvector.
--
-- `CREATE INDEX ... USING scann (col cosine | l2 | dot_product)` builds a real pgvector index:
-- the access method `scann` is pgvector's HNSW handler under another name, and the operator
-- classes carry AlloyDB's names. The planner uses it for `ORDER BY col <=> q LIMIT k` exactly
-- as it uses an HNSW index. ScaNN's own index options (num_leaves, quantizer, mode, ...) are
-- validated and taken out of the statement by the emulator's proxy (proxy/scann.py), because
-- pgvector's handler accepts only its own option names.

\echo Use "CREATE EXTENSION alloydb_scann" to load this file. \quit

-- pgvector's objects are named without a schema: CREATE EXTENSION puts the schemas of required
-- extensions on the search_path while it runs this script. (The check says the same as
-- PostgreSQL's `requires` when the proxy runs this script itself, on a server without our files.)
DO $check$
BEGIN
    IF pg_catalog.to_regproc('hnswhandler') IS NULL THEN
        RAISE EXCEPTION 'required extension "vector" is not installed'
            USING ERRCODE = 'undefined_object',
                  HINT = 'Run CREATE EXTENSION vector first (pgvector must be available on the server).';
    END IF;
END
$check$;

CREATE ACCESS METHOD scann TYPE INDEX HANDLER hnswhandler;

CREATE OPERATOR CLASS l2 FOR TYPE vector USING scann AS
    OPERATOR 1 <-> (vector, vector) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS dot_product FOR TYPE vector USING scann AS
    OPERATOR 1 <#> (vector, vector) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS cosine FOR TYPE vector USING scann AS
    OPERATOR 1 <=> (vector, vector) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector),
    FUNCTION 2 vector_norm(vector);

-- LangChain's ScaNNIndex names the dot product `dot_prod`.
CREATE OPERATOR CLASS dot_prod FOR TYPE vector USING scann AS
    OPERATOR 1 <#> (vector, vector) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 vector_negative_inner_product(vector, vector);

-- For columns above pgvector's 2,000 dimensions (the proxy's fallback, see proxy/scann.py):
-- HNSW indexes halfvec up to 4,000.
CREATE OPERATOR CLASS halfvec_l2 FOR TYPE halfvec USING scann AS
    OPERATOR 1 <-> (halfvec, halfvec) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 halfvec_l2_squared_distance(halfvec, halfvec),
    FUNCTION 3 hnsw_halfvec_support(internal);

CREATE OPERATOR CLASS halfvec_dot_product FOR TYPE halfvec USING scann AS
    OPERATOR 1 <#> (halfvec, halfvec) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 halfvec_negative_inner_product(halfvec, halfvec),
    FUNCTION 3 hnsw_halfvec_support(internal);

CREATE OPERATOR CLASS halfvec_cosine FOR TYPE halfvec USING scann AS
    OPERATOR 1 <=> (halfvec, halfvec) FOR ORDER BY pg_catalog.float_ops,
    FUNCTION 1 halfvec_negative_inner_product(halfvec, halfvec),
    FUNCTION 2 l2_norm(halfvec),
    FUNCTION 3 hnsw_halfvec_support(internal);

-- On-demand index maintenance (alloydb_scann 0.1.2 and later), a preview feature. The emulated
-- index is an HNSW graph that stays balanced as rows arrive, so there is nothing to rebalance:
-- the call checks what AlloyDB checks and returns.
CREATE FUNCTION scann_index_maintenance(index_name text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT

AS $fn$
DECLARE
    idx regclass;
BEGIN
    IF NOT coalesce(
            current_setting('scann.enable_preview_features', true), 'off')::text
            IN ('on', 'true', 'yes', '1', 't', 'y') THEN
        RAISE EXCEPTION 'scann_index_maintenance is a preview feature'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Enable the scann.enable_preview_features flag (SET scann.enable_preview_features = on).';
    END IF;
    idx := pg_catalog.to_regclass(index_name);
    IF idx IS NULL THEN
        RAISE EXCEPTION 'index "%" does not exist', index_name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am a ON a.oid = c.relam
            WHERE c.oid = idx AND c.relkind = 'i' AND a.amname = 'scann') THEN
        RAISE EXCEPTION '"%" is not a ScaNN index', index_name
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Create it with CREATE INDEX ... USING scann (column cosine | l2 | dot_product).';
    END IF;
END
$fn$;
