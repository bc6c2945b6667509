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
-- HNSW indexes halfvec up to 4,000 (pgvector 0.7 and later; without halfvec, no fallback).
DO $halfvec$
BEGIN
    IF pg_catalog.to_regtype('halfvec') IS NULL THEN
        RETURN;
    END IF;
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
END
$halfvec$;

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

-- Vector index metrics (ai/tune-indexes, reference/vector-index-metrics). The ScaNN options of an
-- index are not in pg_class.reloptions (pgvector's handler would refuse them): the proxy records
-- them here when it creates the index, with the table's counters at that moment.
CREATE TABLE _scann_index_config (
    indexrelid oid PRIMARY KEY,
    indexname name NOT NULL,  -- guards against a reused oid
    indexconfig text[],
    rows_at_creation bigint,
    inserted_before bigint,
    updated_before bigint,
    deleted_before bigint
);
REVOKE ALL ON _scann_index_config FROM PUBLIC;

-- A boolean setting or index option as PostgreSQL reads booleans; `dflt` when unset or not a
-- boolean (the proxy has already refused a wrong value; a direct connection may set anything).
CREATE FUNCTION _scann_bool(val text, dflt boolean) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $fn$
BEGIN
    IF val IS NULL OR pg_catalog.btrim(val, ' ''') = '' THEN
        RETURN dflt;
    END IF;
    RETURN pg_catalog.btrim(val, ' ''')::boolean;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN dflt;
END
$fn$;

-- AlloyDB refuses a ScaNN index on a partitioned table's parent, on an empty table, or on one
-- with fewer rows than num_leaves (ai/create-scann-index, "Create a deferred index for empty
-- tables or tables with insufficient rows"; the messages come from the page
-- troubleshoot/troubleshoot-scann-indexes). Two ways past it, both on the first page: `scann.allow_blocked_operations` set by a
-- superuser ("forcing index creation requires SUPERUSER privileges"), or, for a table without
-- enough rows, deferred creation (`scann.enable_preview_features` on,
-- `scann.enable_index_maintenance` and the index's auto_maintenance not off), which AlloyDB
-- builds later in the background and the emulator builds at once.
CREATE FUNCTION _scann_check_rows(idx_name name, tbl oid, config text[],
                                  known_rows bigint DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $fn$
DECLARE
    leaves bigint;
    found_rows bigint;
    opt text;
    tbl_name name := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = tbl);
BEGIN
    IF _scann_bool(pg_catalog.current_setting('scann.allow_blocked_operations', true), false)
       AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        RETURN;
    END IF;
    -- The only published text of this one (the page's newer copies reword the other two with
    -- the index's and table's names; none shows this one reworded).
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) = 'p' THEN
        RAISE EXCEPTION 'Cannot create ScaNN index on parent partition table. Create ScaNN indexes on the child tables instead. See documentation to bypass this validation.'
            USING ERRCODE = 'internal_error',
                  HINT = pg_catalog.format('Create the index on each partition of %s; or, as a superuser, SET scann.allow_blocked_operations = on.', tbl_name);
    END IF;
    IF _scann_bool(pg_catalog.current_setting('scann.enable_preview_features', true), false)
       AND _scann_bool(pg_catalog.current_setting('scann.enable_index_maintenance', true), true)
       AND _scann_bool((SELECT pg_catalog.substr(o, 18) FROM pg_catalog.unnest(config) AS o
                         WHERE pg_catalog.lower(o) LIKE 'auto\_maintenance=%' LIMIT 1), true) THEN
        RETURN;  -- deferred creation
    END IF;
    FOREACH opt IN ARRAY coalesce(config, ARRAY[]::text[]) LOOP
        IF pg_catalog.lower(pg_catalog.split_part(opt, '=', 1)) = 'num_leaves'
           AND pg_catalog.split_part(opt, '=', 2) ~ '^[0-9]+$' THEN
            leaves := pg_catalog.split_part(opt, '=', 2)::bigint;
        END IF;
    END LOOP;
    IF known_rows IS NOT NULL THEN
        found_rows := known_rows;  -- a TRUNCATE: the table will be empty
    ELSE
        EXECUTE pg_catalog.format('SELECT count(*) FROM (SELECT FROM %s LIMIT %s) AS s',
                                  tbl::regclass, greatest(coalesce(leaves, 1), 1))
           INTO found_rows;
    END IF;
    IF found_rows = 0 THEN
        RAISE EXCEPTION 'Cannot create ScaNN index "%" for table "%", error: FAILED_PRECONDITION: Cannot create ScaNN index "%" with empty table "%". Once the table is populated with data, create the index. See documentation to bypass this validation.',
            idx_name, tbl_name, idx_name, tbl_name
            USING ERRCODE = 'internal_error',
                  HINT = 'Insert the rows first, then create the index; or, as a superuser, SET scann.allow_blocked_operations = on (ai/create-scann-index).';
    ELSIF leaves IS NOT NULL AND found_rows < leaves THEN
        RAISE EXCEPTION 'Cannot create ScaNN index "%" for table "%", error: INVALID_ARGUMENT: Number of rows (%) must be larger than (%).',
            idx_name, tbl_name, found_rows, leaves
            USING ERRCODE = 'internal_error',
                  HINT = 'Insert more rows first, or use a num_leaves no larger than the number of rows; or, as a superuser, SET scann.allow_blocked_operations = on.';
    END IF;
END
$fn$;

-- A four-level index (max_num_levels = 3) is in Preview: ai/tune-indexes and
-- ai/best-practices-tuning-scann ask for the flag scann.enable_preview_features or the session's
-- `SET scann.max_allowed_num_levels = 3` first, and the scann-index reference says "If you set
-- max_num_levels to 3, you must also set scann.max_allowed_num_levels to 3". No page prints the
-- refusal; its text and SQLSTATE here are the emulator's.
CREATE FUNCTION _scann_check_levels(config text[]) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $fn$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.unnest(config) AS o
                    WHERE pg_catalog.lower(pg_catalog.split_part(o, '=', 1)) = 'max_num_levels'
                      AND pg_catalog.btrim(pg_catalog.split_part(o, '=', 2), ' ''') = '3') THEN
        RETURN;
    END IF;
    IF _scann_bool(pg_catalog.current_setting('scann.enable_preview_features', true), false)
       OR pg_catalog.btrim(coalesce(
              pg_catalog.current_setting('scann.max_allowed_num_levels', true), '')) = '3' THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'a four-level ScaNN index (max_num_levels = 3) is a Preview feature'
        USING ERRCODE = 'feature_not_supported',
              HINT = 'SET scann.max_allowed_num_levels = 3; first, or turn on the flag scann.enable_preview_features (ai/tune-indexes).';
END
$fn$;

-- num_leaves' upper bound depends on the server: ai/best-practices-tuning-scann (AlloyDB's and
-- AlloyDB Omni's current copies, "Limitations") allows "100 million for PostgreSQL 17 and higher,
-- 30 million for PostgreSQL 16 and lower". The proxy lets through what PostgreSQL 17 takes
-- (proxy/scann.py, INDEX_OPTIONS); an older server refuses more than 30 million here, with
-- PostgreSQL's words for an integer reloption out of range, as the proxy's own check has them.
-- (`server_version` is the server's own unless a test names another.)
CREATE FUNCTION _scann_check_num_leaves(
    config text[],
    server_version int DEFAULT pg_catalog.current_setting('server_version_num')::int)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $fn$
DECLARE
    given text;
BEGIN
    IF server_version >= 170000 THEN
        RETURN;
    END IF;
    -- as the proxy read it (Python's int: spaces around, a sign)
    SELECT v INTO given
      FROM pg_catalog.unnest(config) AS o,
           pg_catalog.btrim(pg_catalog.split_part(o, '=', 2), E' \t\n\r\f\v') AS v
     WHERE pg_catalog.lower(pg_catalog.split_part(o, '=', 1)) = 'num_leaves'
       AND v ~ '^[+]?[0-9]+$' AND v::numeric > 30000000
     LIMIT 1;
    IF given IS NOT NULL THEN
        RAISE EXCEPTION 'value % out of bounds for option "num_leaves"', given
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Valid values are between "1" and "30000000".',
                  HINT = 'PostgreSQL 16 and lower allow at most 30 million partitions, 17 and higher 100 million (ai/best-practices-tuning-scann).';
    END IF;
END
$fn$;

-- TRUNCATE rebuilds every index of the emptied tables, and AlloyDB's ScaNN build refuses an empty
-- table: troubleshoot/troubleshoot-scann-indexes gives `truncate t1;` (query example B) as a
-- statement that raises the empty-table error, bypassed as the CREATE INDEX check is. The proxy
-- calls this before a TRUNCATE (proxy/scann.py) with the tables it names (NULL: no such table,
-- PostgreSQL will say so) and whether each one's descendants go too (not ONLY); CASCADE adds the
-- tables whose foreign keys reference them. SECURITY DEFINER: it reads _scann_index_config (for
-- auto_maintenance); it only raises.
CREATE FUNCTION _scann_check_truncate(tables oid[], descendants boolean[], with_cascade boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    truncated oid[];
    added oid[];
    idx record;
BEGIN
    WITH RECURSIVE tree(relid, deep) AS (
        SELECT t.relid, coalesce(descendants[t.n], true)
          FROM pg_catalog.unnest(tables) WITH ORDINALITY AS t(relid, n) WHERE t.relid IS NOT NULL
        UNION
        SELECT i.inhrelid, true FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.relid
         WHERE tree.deep
    )
    SELECT pg_catalog.array_agg(DISTINCT relid) INTO truncated FROM tree;
    LOOP
        EXIT WHEN NOT with_cascade OR truncated IS NULL;
        WITH RECURSIVE tree(relid) AS (
            SELECT c.conrelid FROM pg_catalog.pg_constraint c
             WHERE c.contype = 'f' AND c.confrelid = ANY (truncated)
            UNION
            SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.relid
        )
        SELECT pg_catalog.array_agg(DISTINCT relid) INTO added FROM tree
         WHERE relid <> ALL (truncated);
        EXIT WHEN added IS NULL;
        truncated := truncated || added;
    END LOOP;
    FOR idx IN
        SELECT c.relname, i.indrelid, cfg.indexconfig
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid AND c.relkind = 'i'
          JOIN pg_catalog.pg_am a ON a.oid = c.relam AND a.amname = 'scann'
          LEFT JOIN _scann_index_config cfg ON cfg.indexrelid = i.indexrelid AND cfg.indexname = c.relname
         WHERE i.indrelid = ANY (coalesce(truncated, ARRAY[]::oid[]))
         ORDER BY c.relname
    LOOP
        PERFORM _scann_check_rows(idx.relname, idx.indrelid, idx.indexconfig, 0);
    END LOOP;
END
$fn$;

-- The name PostgreSQL gives an index created without one (ChooseIndexName, ChooseRelationName,
-- makeObjectName): <table>_<columns>_idx, the longer part cut to fit 63 bytes at a character
-- boundary, then idx1, idx2, ... while the name is taken in the table's schema. `addition` is
-- ChooseIndexNameAddition's result, worked out by the proxy from the statement's columns.
CREATE FUNCTION _scann_index_name(tbl oid, addition text) RETURNS name
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $fn$
DECLARE
    tbl_name text;
    ns oid;
    label text := 'idx';
    pass int := 0;
    bytes1 int;
    bytes2 int;
    part1 text;
    part2 text;
    candidate text;
BEGIN
    SELECT c.relname, c.relnamespace INTO tbl_name, ns FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    LOOP
        -- NAMEDATALEN - 1 bytes, less two underscores and the label: the longer part gives way
        -- byte by byte, then each is cut at a character boundary (pg_mbcliplen)
        bytes1 := pg_catalog.octet_length(tbl_name);
        bytes2 := pg_catalog.octet_length(addition);
        WHILE bytes1 + bytes2 > 61 - pg_catalog.octet_length(label) LOOP
            IF bytes1 > bytes2 THEN
                bytes1 := bytes1 - 1;
            ELSE
                bytes2 := bytes2 - 1;
            END IF;
        END LOOP;
        part1 := tbl_name;
        part2 := addition;
        WHILE pg_catalog.octet_length(part1) > bytes1 LOOP
            part1 := pg_catalog.left(part1, -1);
        END LOOP;
        WHILE pg_catalog.octet_length(part2) > bytes2 LOOP
            part2 := pg_catalog.left(part2, -1);
        END LOOP;
        candidate := part1 || '_' || part2 || '_' || label;
        EXIT WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                               WHERE c.relname = candidate AND c.relnamespace = ns);
        pass := pass + 1;
        label := 'idx' || pass;
    END LOOP;
    RETURN candidate;
END
$fn$;

-- CREATE INDEX CONCURRENTLY ... USING scann cannot run inside the DO block that calls
-- _scann_record_index, so the proxy runs this first, as a statement of its own on the client's
-- session (the relay's prelude, proxy/session.py): the same row checks, for the index about to
-- be built (`idx_name` NULL: the name PostgreSQL will choose). Where PostgreSQL refuses the
-- statement before building anything (the caller does not own the table; a partitioned or foreign
-- table; the name is taken; a column or operator class that does not exist) it checks nothing,
-- so that PostgreSQL's own error comes first, as on AlloyDB, whose check runs in the build.
-- SECURITY DEFINER, as _scann_record_index: it counts the rows as that does; `caller` is the
-- role that sent the statement (the session user must be a member of it).
CREATE FUNCTION _scann_check_new_index(idx_name name, tbl oid, config text[], addition text,
                                       columns text[], opclasses text[], caller name)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    kind "char";
    owner oid;
    ns oid;
BEGIN
    SELECT c.relkind, c.relowner, c.relnamespace INTO kind, owner, ns
      FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF NOT FOUND OR kind NOT IN ('r', 'm')
       OR NOT pg_catalog.pg_has_role(session_user, caller, 'MEMBER')
       OR NOT pg_catalog.pg_has_role(caller, owner, 'USAGE') THEN
        RETURN;
    END IF;
    IF idx_name IS NOT NULL AND EXISTS (SELECT FROM pg_catalog.pg_class c
                                         WHERE c.relname = idx_name AND c.relnamespace = ns) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.unnest(columns) AS col(n)
                WHERE col.n IS NOT NULL AND NOT EXISTS (
                      SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = tbl AND a.attname = col.n AND a.attnum > 0
                         AND NOT a.attisdropped))
       OR EXISTS (SELECT FROM pg_catalog.unnest(opclasses) AS o(n)
                   WHERE o.n IS NULL OR NOT EXISTS (
                         SELECT FROM pg_catalog.pg_opclass oc
                           JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod
                          WHERE am.amname = 'scann' AND oc.opcname = o.n)) THEN
        RETURN;
    END IF;
    PERFORM _scann_check_levels(config);
    PERFORM _scann_check_num_leaves(config);
    PERFORM _scann_check_rows(coalesce(idx_name, _scann_index_name(tbl, addition)), tbl, config);
END
$fn$;

-- Records a ScaNN index just created by its owner (SECURITY DEFINER: only this function writes
-- the table; anyone may call it, and it records only a ScaNN index that the caller owns).
CREATE FUNCTION _scann_record_index(idx regclass, config text[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    tbl oid;
BEGIN
    SELECT i.indrelid INTO tbl FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_am a ON a.oid = c.relam
     WHERE i.indexrelid = idx AND a.amname = 'scann'
       AND pg_catalog.pg_has_role(session_user, c.relowner, 'USAGE');
    IF tbl IS NULL THEN
        RETURN;
    END IF;
    PERFORM _scann_check_levels(config);  -- its error undoes the CREATE INDEX, as the next's
    PERFORM _scann_check_num_leaves(config);
    PERFORM _scann_check_rows((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = idx),
                              tbl, config);
    INSERT INTO _scann_index_config AS cfg
    SELECT idx, c.relname, config, greatest(c.reltuples, 0)::bigint,
           coalesce(pg_catalog.pg_stat_get_tuples_inserted(tbl), 0),
           coalesce(pg_catalog.pg_stat_get_tuples_updated(tbl), 0),
           coalesce(pg_catalog.pg_stat_get_tuples_deleted(tbl), 0)
      FROM pg_catalog.pg_class c WHERE c.oid = idx
    ON CONFLICT (indexrelid) DO UPDATE SET
        indexname = excluded.indexname, indexconfig = excluded.indexconfig,
        rows_at_creation = excluded.rows_at_creation, inserted_before = excluded.inserted_before,
        updated_before = excluded.updated_before, deleted_before = excluded.deleted_before;
END
$fn$;

-- ALTER INDEX ... SET / RESET (...) of a ScaNN index (proxy/scann.py): the options go into the
-- configuration pg_stat_ann_indexes shows, those reset taken out, as reloptions would be
-- (ai/create-scann-index converts a manually tuned index to an automatically tuned one with
-- `ALTER INDEX ... RESET (num_leaves, quantization)` and a REINDEX). The proxy runs no ALTER
-- INDEX on a ScaNN index, so PostgreSQL's ownership check is made here, with its words.
CREATE FUNCTION _scann_alter_options(idx regclass, given text[], reset text[], caller name)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path FROM CURRENT
AS $fn$
DECLARE
    idx_name name;
    row_oid oid;
    config text[];
    names text[];
BEGIN
    SELECT c.relname INTO idx_name FROM pg_catalog.pg_class c WHERE c.oid = idx;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- `caller` is the role that sent the statement (current_user there; the session user must
    -- be a member of it), which must own the index, as PostgreSQL asks of ALTER INDEX
    IF NOT pg_catalog.pg_has_role(session_user, caller, 'MEMBER')
       OR NOT pg_catalog.pg_has_role(caller, (SELECT c.relowner FROM pg_catalog.pg_class c
                                               WHERE c.oid = idx), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of index %', idx_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM _scann_check_num_leaves(given);
    SELECT r.indexrelid, r.indexconfig INTO row_oid, config
      FROM _scann_index_config r
     WHERE r.indexrelid = idx
        OR (r.indexname = idx_name
            AND NOT EXISTS (SELECT FROM pg_catalog.pg_class o WHERE o.oid = r.indexrelid))
     ORDER BY r.indexrelid = idx DESC
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    names := ARRAY(SELECT pg_catalog.lower(x) FROM pg_catalog.unnest(reset) AS x
                   UNION ALL
                   SELECT pg_catalog.lower(pg_catalog.split_part(g, '=', 1))
                     FROM pg_catalog.unnest(given) AS g);
    config := ARRAY(SELECT u.o FROM pg_catalog.unnest(coalesce(config, '{}')) WITH ORDINALITY AS u(o, n)
                     WHERE pg_catalog.lower(pg_catalog.split_part(u.o, '=', 1)) <> ALL (names)
                     ORDER BY u.n) || coalesce(given, '{}');
    UPDATE _scann_index_config SET indexconfig = config WHERE indexrelid = row_oid;
END
$fn$;

-- Each ScaNN index's recorded configuration. The row is the index's own (its oid); an index
-- whose oid has no row takes the row of a dropped index of the same name: REINDEX INDEX
-- CONCURRENTLY, which ai/maintain-vector-indexes prescribes to rebuild an index "using its
-- original configurations", builds a new index (a new oid) under the old name. A renamed index
-- keeps its oid, and so its row (an upgrade guide run on AlloyDB builds a second index, drops
-- the first and renames the second to the first's name).
CREATE VIEW _scann_current_config AS
SELECT c.oid AS indexrelid, k.indexconfig, k.rows_at_creation, k.inserted_before,
       k.updated_before, k.deleted_before
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_am a ON a.oid = c.relam AND a.amname = 'scann'
  CROSS JOIN LATERAL (
      SELECT r.* FROM _scann_index_config r
       WHERE r.indexrelid = c.oid
          OR (r.indexname = c.relname
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_class o WHERE o.oid = r.indexrelid))
       ORDER BY r.indexrelid = c.oid DESC
       LIMIT 1) k;
REVOKE ALL ON _scann_current_config FROM PUBLIC;

-- One row per ScaNN index. An HNSW graph has no partitions: partitioncount is the num_leaves
-- asked for, the distributions are NULL.
CREATE VIEW pg_stat_ann_indexes AS
SELECT s.relid, s.indexrelid, s.schemaname, s.relname, s.indexrelname,
       a.amname::text AS indextype,
       cfg.indexconfig,
       pg_catalog.pg_size_pretty(pg_catalog.pg_relation_size(s.indexrelid)) AS indexsize,
       s.idx_scan AS indexscan,
       greatest(coalesce(pg_catalog.pg_stat_get_tuples_inserted(s.relid), 0) - coalesce(cfg.inserted_before, 0), 0) AS insertcount,
       greatest(coalesce(pg_catalog.pg_stat_get_tuples_deleted(s.relid), 0) - coalesce(cfg.deleted_before, 0), 0) AS deletecount,
       greatest(coalesce(pg_catalog.pg_stat_get_tuples_updated(s.relid), 0) - coalesce(cfg.updated_before, 0), 0) AS updatecount,
       (SELECT pg_catalog.split_part(o, '=', 2)::bigint FROM pg_catalog.unnest(cfg.indexconfig) AS o
         WHERE pg_catalog.split_part(o, '=', 1) = 'num_leaves' AND pg_catalog.split_part(o, '=', 2) ~ '^[0-9]+$') AS partitioncount,
       NULL::jsonb AS distribution,
       NULL::jsonb AS distributionpercentile
  FROM pg_catalog.pg_stat_all_indexes s
  JOIN pg_catalog.pg_class c ON c.oid = s.indexrelid
  JOIN pg_catalog.pg_am a ON a.oid = c.relam AND a.amname = 'scann'
  LEFT JOIN _scann_current_config cfg ON cfg.indexrelid = s.indexrelid;

CREATE VIEW pg_stat_ann_index_creation AS
SELECT s.relid, s.indexrelid, s.schemaname, s.relname, s.indexrelname,
       cfg.rows_at_creation AS index_rows_at_creation_time
  FROM pg_catalog.pg_stat_all_indexes s
  JOIN pg_catalog.pg_class c ON c.oid = s.indexrelid
  JOIN pg_catalog.pg_am a ON a.oid = c.relam AND a.amname = 'scann'
  LEFT JOIN _scann_current_config cfg ON cfg.indexrelid = s.indexrelid;

GRANT SELECT ON pg_stat_ann_indexes, pg_stat_ann_index_creation TO PUBLIC;

-- evaluate_query_recall(query, configurations, index methods): AlloyDB's recall evaluator (page
-- ai/measure-vector-query-recall; on AlloyDB it comes with its `vector` 0.8.0.google-3). For each
-- index method it runs the query with the configurations set for the call only (set_config,
-- restored before returning) and compares its rows with the ground truth: the same query with
-- index scans off. A method whose index the plan does not use gets recall 1 and AlloyDB's NOTICE.
-- Here `scann` is pgvector's HNSW under another name, so its recall is HNSW's.
CREATE FUNCTION evaluate_query_recall(
    query_text text,
    query_time_configurations json DEFAULT NULL,
    index_methods text[] DEFAULT ARRAY['scann'])
RETURNS TABLE (id integer, query text, configurations json, recall real,
               ann_execution_time double precision, ground_truth_execution_time double precision,
               index_type text)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    q          text;
    setting    record;
    saved      jsonb := '{}'::jsonb;
    scans      text[] := ARRAY['enable_indexscan', 'enable_bitmapscan', 'enable_indexonlyscan'];
    scan_saved text[];
    truth      text[];
    answer     text[];
    plan       jsonb;
    used       text[];
    started    timestamptz;
    truth_ms   double precision;
    method     text;
    n          integer := 0;
BEGIN
    IF query_text IS NULL THEN
        RAISE EXCEPTION 'query_text must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF query_time_configurations IS NOT NULL
       AND pg_catalog.json_typeof(query_time_configurations) <> 'object' THEN
        RAISE EXCEPTION 'query_time_configurations must be a JSON object of settings'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"scann.num_leaves_to_search": 1, "hnsw.ef_search": 10}.';
    END IF;
    FOREACH method IN ARRAY coalesce(index_methods, ARRAY['scann']) LOOP
        IF method IS NULL OR method NOT IN ('scann', 'hnsw', 'ivf', 'ivfflat') THEN
            RAISE EXCEPTION 'invalid index method: %', coalesce(pg_catalog.quote_literal(method), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'index_methods is a subset of {scann, hnsw, ivf, ivfflat}.';
        END IF;
    END LOOP;
    q := pg_catalog.rtrim(query_text, E' \t\r\n;');
    -- The configurations hold for this call only.
    FOR setting IN SELECT key, value FROM pg_catalog.json_each_text(query_time_configurations) LOOP
        saved := saved || jsonb_build_object(setting.key, pg_catalog.current_setting(setting.key, true));
        PERFORM pg_catalog.set_config(setting.key, setting.value, true);
        -- the emulated ivf index is pgvector's ivfflat, whose scan reads ivfflat.probes
        -- (proxy/ivf.py mirrors SET ivf.probes the same way)
        IF setting.key = 'ivf.probes' THEN
            saved := saved || jsonb_build_object('ivfflat.probes', pg_catalog.current_setting('ivfflat.probes', true));
            PERFORM pg_catalog.set_config('ivfflat.probes', setting.value, true);
        END IF;
    END LOOP;
    -- Ground truth: the same query without index scans.
    scan_saved := ARRAY(SELECT pg_catalog.current_setting(s) FROM pg_catalog.unnest(scans) AS s);
    PERFORM pg_catalog.set_config(s, 'off', true) FROM pg_catalog.unnest(scans) AS s;
    started := pg_catalog.clock_timestamp();
    EXECUTE format('SELECT pg_catalog.array_agg(pg_catalog.row_to_json(r)::text) FROM (%s) AS r', q)
        INTO truth;
    truth_ms := extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000;
    PERFORM pg_catalog.set_config(scans[i], scan_saved[i], true)
       FROM pg_catalog.generate_subscripts(scans, 1) AS i;
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
    used := ARRAY(SELECT DISTINCT a.amname::text
                    FROM jsonb_path_query(plan, 'strict $.**."Index Name"') AS i(name)
                    JOIN pg_catalog.pg_class c ON c.relname = i.name #>> '{}' AND c.relkind = 'i'
                    JOIN pg_catalog.pg_am a ON a.oid = c.relam);
    FOREACH method IN ARRAY coalesce(index_methods, ARRAY['scann']) LOOP
        n := n + 1;
        started := pg_catalog.clock_timestamp();
        EXECUTE format('SELECT pg_catalog.array_agg(pg_catalog.row_to_json(r)::text) FROM (%s) AS r', q)
            INTO answer;
        id := n;
        query := query_text;
        configurations := query_time_configurations;
        ann_execution_time := round((extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000)::numeric, 3);
        ground_truth_execution_time := round(truth_ms::numeric, 3);
        index_type := method;
        IF NOT method = ANY(used) THEN
            RAISE NOTICE 'Recall is 1. This might mean that the vector index is not present on the table or index scan not chosen during query execution.';
            recall := 1;
        ELSIF coalesce(pg_catalog.cardinality(truth), 0) = 0 THEN
            recall := 1;
        ELSE
            recall := least(1, (SELECT count(*) FROM pg_catalog.unnest(answer) AS a WHERE a = ANY(truth))::real
                               / pg_catalog.cardinality(truth));
        END IF;
        RETURN NEXT;
    END LOOP;
    FOR setting IN SELECT key, value FROM jsonb_each_text(saved) LOOP
        PERFORM pg_catalog.set_config(setting.key, coalesce(setting.value, ''), true);
    END LOOP;
END
$fn$;

GRANT EXECUTE ON FUNCTION evaluate_query_recall(text, json, text[]) TO PUBLIC;
