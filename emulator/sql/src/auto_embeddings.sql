-- Auto-embeddings (AlloyDB 1.5.6).
--
-- ai.initialize_embeddings fills an embedding column from a content column in batches
-- through the batched engine (google_ml._warm_embeddings). It COMMITs after each batch, so the
-- progress in ai.embedding_progress_view is visible to other sessions while it runs and finished
-- batches survive a failure. As on AlloyDB, whose procedures commit internally, a CALL inside a
-- transaction block (or a function, or a Query of several statements) therefore fails with
-- PostgreSQL's 2D000 "invalid transaction termination"; so does ai.drop_embedding_config. Only
-- vector_assist, which applies its recommendations inside its own functions, fills in its
-- caller's transaction, all or nothing.
-- 'transactional' mode adds a BEFORE INSERT OR UPDATE OF <content> trigger that embeds the
-- new content in the same transaction; ai.refresh_embeddings is refused in that mode.
-- 'manual' mode (the default; older pages call it 'none') adds a boolean tracking column, set by
-- a trigger when a row is inserted or its content changes, so ai.refresh_embeddings embeds only
-- new and changed rows. Both procedures work on a partitioned table's root; refresh also on any
-- partition (ai.embedding_prepare_partition readies a table to be attached). Every procedure
-- has a google_ml twin.

-- @version 1.5.6
CREATE TABLE google_ml._embedding_configs (
    relation           oid NOT NULL,
    table_name         text NOT NULL,     -- as the caller named it
    content_column     text NOT NULL,
    embedding_column   text NOT NULL,
    model_id           text NOT NULL,
    batch_size         int NOT NULL,
    refresh_mode       text NOT NULL CHECK (refresh_mode IN ('manual', 'transactional')),
    status             text NOT NULL,     -- running, success, failed (as AlloyDB's view shows)
    rows_total         bigint NOT NULL DEFAULT 0,
    rows_processed     bigint NOT NULL DEFAULT 0,
    partition_root     text,
    -- manual mode: the boolean column that marks new and changed rows for ai.refresh_embeddings
    tracking_column    text,
    started_at         timestamptz,
    finished_at        timestamptz,
    error              text,
    created_by         name NOT NULL DEFAULT current_user,
    PRIMARY KEY (relation, embedding_column)
);
REVOKE ALL ON TABLE google_ml._embedding_configs FROM PUBLIC;

CREATE VIEW ai.embedding_progress_view AS
SELECT c.table_name,
       c.content_column,
       c.embedding_column,
       c.model_id,
       CASE WHEN c.status = 'success' THEN 100::numeric
            WHEN c.rows_total > 0 THEN round(100.0 * c.rows_processed / c.rows_total, 2)
            ELSE 0::numeric END AS percent_progress,
       c.status,
       coalesce(c.finished_at, pg_catalog.clock_timestamp()) - c.started_at AS elapsed_time,
       c.rows_processed,
       c.partition_root
  FROM google_ml._embedding_configs AS c
  JOIN pg_catalog.pg_class AS r ON r.oid = c.relation;
GRANT SELECT ON ai.embedding_progress_view TO PUBLIC;

-- The table a caller names: a (possibly qualified, possibly quoted) name, or the exact name
-- of a table on the search_path ('Order Items'). 42P01 otherwise; nothing is interpolated.
CREATE FUNCTION google_ml._embedding_table(table_name text)
RETURNS regclass
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    rel regclass;
BEGIN
    IF table_name IS NULL OR btrim(table_name) = '' THEN
        RAISE EXCEPTION 'table_name must name a table' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.oid INTO rel
      FROM pg_catalog.pg_class AS c
      JOIN unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS s (nspname, i)
        ON s.nspname = (SELECT n.nspname FROM pg_catalog.pg_namespace AS n WHERE n.oid = c.relnamespace)
     WHERE c.relname = table_name AND c.relkind IN ('r', 'p')
     ORDER BY s.i
     LIMIT 1;
    IF rel IS NULL THEN
        BEGIN
            rel := pg_catalog.to_regclass(table_name);
        EXCEPTION WHEN others THEN
            rel := NULL;
        END;
    END IF;
    IF rel IS NULL OR (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = rel) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'table "%" does not exist', table_name
            USING ERRCODE = 'undefined_table',
                  HINT = 'Give the table''s name as it is spelled (Order Items), or a qualified, '
                         'quoted SQL name (public."Order Items").';
    END IF;
    RETURN rel;
END;
$$;

-- The page: auto vector embeddings "are supported only for regular and partitioned PostgreSQL
-- tables. They don't support temporary tables or unlogged tables."
CREATE FUNCTION google_ml._embedding_table_supported(rel regclass)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    kind text := (SELECT CASE c.relpersistence WHEN 't' THEN 'temporary' WHEN 'u' THEN 'unlogged' END
                    FROM pg_catalog.pg_class AS c WHERE c.oid = rel);
BEGIN
    IF kind IS NOT NULL THEN
        RAISE EXCEPTION 'auto-embeddings do not support % tables: % is %', kind, rel, kind
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Auto vector embeddings work on regular and partitioned tables. Use a '
                         'regular table, or embed the rows yourself: UPDATE ... SET col = '
                         'embedding(model_id, content)::vector.';
    END IF;
END;
$$;

-- A column of rel by its exact name (then its lower-case form); 42703 otherwise.
CREATE FUNCTION google_ml._embedding_column(rel regclass, column_name text, argument text)
RETURNS pg_catalog.pg_attribute
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    a pg_catalog.pg_attribute;
BEGIN
    SELECT * INTO a FROM pg_catalog.pg_attribute AS x
     WHERE x.attrelid = rel AND x.attnum > 0 AND NOT x.attisdropped
       AND x.attname IN (column_name, lower(column_name))
     ORDER BY x.attname = column_name DESC
     LIMIT 1;
    IF a.attname IS NULL THEN
        RAISE EXCEPTION '%: column "%" of table % does not exist', argument, column_name, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN a;
END;
$$;

-- The text-embedding model of a configuration: registered, or a Vertex AI model by name.
CREATE FUNCTION google_ml._embedding_model(model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._text_embedding_model(model_id);  -- or 42704
BEGIN
    IF m.model_type NOT IN ('text_embedding', 'multimodal_embedding') THEN
        RAISE EXCEPTION 'model "%" is a % model; auto-embeddings need a text_embedding model', m.id, m.model_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN m;
END;
$$;

-- Configuration rows are written only through these (SECURITY DEFINER: callers need no
-- grant on the table; they must be able to UPDATE the table the row is about).
CREATE FUNCTION google_ml._embedding_config_write(c google_ml._embedding_configs, is_new boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege(session_user, c.relation, 'UPDATE')
       AND NOT has_table_privilege(current_user, c.relation, 'UPDATE') THEN
        RAISE EXCEPTION 'permission denied for table %', c.relation::regclass
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF is_new THEN
        INSERT INTO google_ml._embedding_configs SELECT c.*;
    ELSE
        UPDATE google_ml._embedding_configs AS x
           SET status = c.status, rows_total = c.rows_total, rows_processed = c.rows_processed,
               started_at = c.started_at, finished_at = c.finished_at, error = c.error,
               batch_size = c.batch_size
         WHERE x.relation = c.relation AND x.embedding_column = c.embedding_column;
    END IF;
END;
$$;

CREATE FUNCTION google_ml._embedding_config_delete(relation oid, embedding_column text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege(current_user, relation, 'UPDATE') THEN
        RAISE EXCEPTION 'permission denied for table %', relation::regclass
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM google_ml._embedding_configs AS x
     WHERE x.relation = _embedding_config_delete.relation
       AND x.embedding_column = _embedding_config_delete.embedding_column;
END;
$$;

CREATE FUNCTION google_ml._embedding_config_of(relation oid, embedding_column text)
RETURNS google_ml._embedding_configs
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x FROM google_ml._embedding_configs AS x
     WHERE x.relation = _embedding_config_of.relation
       AND x.embedding_column = _embedding_config_of.embedding_column
$$;

-- Whether the running fill commits: always, as AlloyDB's procedures do (inside a transaction
-- block, PostgreSQL then refuses the CALL with 2D000), but under vector_assist's functions, where
-- nothing can commit (vector_assist.apply_spec is a SELECT): there it is all or nothing.
CREATE FUNCTION google_ml._may_commit(stack text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT stack !~ '\mfunction vector_assist\.' $$;

-- The trigger of 'transactional' mode: TG_ARGV = model_id, content column, embedding column.
CREATE FUNCTION google_ml._embedding_trigger()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    content  text := to_jsonb(NEW) ->> TG_ARGV[1];
    vec      real[];
BEGIN
    IF TG_OP = 'UPDATE' AND content IS NOT DISTINCT FROM (to_jsonb(OLD) ->> TG_ARGV[1]) THEN
        RETURN NEW;
    END IF;
    IF content IS NOT NULL THEN
        PERFORM google_ml._require_model_support();
        vec := google_ml._embed(google_ml._embedding_model(TG_ARGV[0]), content);
    END IF;
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[2], to_jsonb(vec)));
    RETURN NEW;
END;
$$;

CREATE FUNCTION google_ml._embedding_trigger_name(embedding_column text)
RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('google_ml_embedding_' || left(md5(embedding_column), 12))::name $$;

-- manual mode: the tracking column and the trigger that sets it. AlloyDB names the column
-- google_ml_track_stale_embedding_<n> (clients filter it out by that prefix: LangChain's
-- AlloyDBEngine, whose live test finds exactly one such column after initialize_embeddings);
-- which number it takes is not published: here, the embedding column's attnum.
CREATE FUNCTION google_ml._embedding_tracking_column(embedding pg_catalog.pg_attribute)
RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('google_ml_track_stale_embedding_' || embedding.attnum)::name $$;

CREATE FUNCTION google_ml._embedding_stale_trigger_name(embedding_column text)
RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('google_ml_stale_' || left(md5(embedding_column), 12))::name $$;

-- TG_ARGV = content column, tracking column: a new row, or a row whose content changed, is stale.
CREATE FUNCTION google_ml._embedding_stale_trigger()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' OR (to_jsonb(NEW) ->> TG_ARGV[0]) IS DISTINCT FROM (to_jsonb(OLD) ->> TG_ARGV[0]) THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[1], true));
    END IF;
    RETURN NEW;
END;
$$;

-- The configuration of rel's embedding column: rel's own, or (for a partition) its root's.
CREATE FUNCTION google_ml._embedding_config_for(rel regclass, embedding_column text)
RETURNS google_ml._embedding_configs
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        google_ml._embedding_config_of(rel, embedding_column),
        google_ml._embedding_config_of(pg_catalog.pg_partition_root(rel), embedding_column))
$$;

-- AlloyDB refuses a batch whose request is over 4 MB, with the text that
-- troubleshoot/troubleshoot-auto-embedding-generation prints: "Error: 'AutoEmbeddingGeneration:
-- Request size is greater than 4MB'" ("The request size for a batch exceeds the maximum supported
-- size of 4MB. Reduce the batch_size value in your function call and retry."). The request
-- carries the batch's texts and more, so texts over 4 MiB (the larger reading of "4MB") are over
-- on AlloyDB too; a batch just under may still be refused there. Its SQLSTATE is not published:
-- XX000, as AlloyDB's other internal "Component: message" errors (ScaNN's) come.
CREATE FUNCTION google_ml._embedding_request_size_check(texts text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    bytes bigint := (SELECT sum(pg_catalog.octet_length(t)) FROM unnest(texts) AS t);
BEGIN
    IF bytes > 4194304 THEN
        RAISE EXCEPTION 'AutoEmbeddingGeneration: Request size is greater than 4MB'
            USING ERRCODE = 'internal_error',
                  DETAIL = format('A batch of %s rows holds %s bytes of text; a request may carry '
                                  'at most 4 MB. Call it again with a smaller batch_size.',
                                  cardinality(texts), bytes);
    END IF;
END;
$$;

-- Embeds the rows of `scope` (c's table, or one of its partitions) with content, batch by batch
-- (see the file's plan): all of them, or only the new and changed ones (only_stale, manual mode).
CREATE PROCEDURE google_ml._embedding_fill(INOUT c google_ml._embedding_configs, scope regclass,
                                           only_stale boolean)
LANGUAGE plpgsql
AS $$
DECLARE
    may_commit  boolean;
    stack       text;
    m           google_ml.models := google_ml._embedding_model(c.model_id);
    content_col text := c.content_column;
    emb_col     text := c.embedding_column;
    track_col   text := c.tracking_column;
    emb_type    text;
    todo        text;
    set_track   text := '';
    leaf        regclass;
    ids         tid[];
    chunk       tid[];
    texts       text[];
    vectors     text[];
    failed      text;
    failed_state text;
    failed_detail text;
BEGIN
    GET DIAGNOSTICS stack = PG_CONTEXT;
    may_commit := google_ml._may_commit(stack);
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO emb_type
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = c.relation AND a.attname = emb_col;
    todo := format('%I IS NOT NULL', content_col);
    IF track_col IS NOT NULL THEN
        set_track := format(', %I = false', track_col);
        IF only_stale THEN
            todo := todo || format(' AND %I', track_col);
        END IF;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s WHERE %s', scope, todo) INTO c.rows_total;
    c.rows_processed := 0;
    c.started_at := pg_catalog.clock_timestamp();
    c.finished_at := NULL;
    c.error := NULL;
    c.status := 'running';
    PERFORM google_ml._embedding_config_write(c, false);
    IF may_commit THEN
        COMMIT;
    END IF;

    -- A partitioned table is filled partition by partition (a ctid is unique within one).
    FOR leaf IN SELECT t.relid FROM pg_catalog.pg_partition_tree(scope) AS t WHERE t.isleaf
                UNION ALL  -- a plain table has no partition tree
                SELECT scope WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_partition_tree(scope)) LOOP
        EXECUTE format('SELECT array_agg(ctid ORDER BY ctid) FROM %s WHERE %s', leaf, todo)
           INTO ids;
        FOR start IN 1 .. coalesce(cardinality(ids), 0) BY c.batch_size LOOP
            chunk := ids[start : start + c.batch_size - 1];
            BEGIN
                EXECUTE format('SELECT array_agg(ctid ORDER BY ctid), array_agg(%I::text ORDER BY ctid) '
                               'FROM %s WHERE ctid = ANY ($1) AND %s',
                               content_col, leaf, todo)
                   INTO chunk, texts USING chunk;
                IF chunk IS NOT NULL THEN
                    PERFORM google_ml._embedding_request_size_check(texts);
                    vectors := google_ml._warm_embeddings(m, texts);
                    IF vectors IS NULL OR cardinality(vectors) <> cardinality(texts)
                       OR array_position(vectors, NULL) IS NOT NULL THEN
                        RAISE EXCEPTION 'model "%" returned no embedding for some rows of this batch', m.id
                            USING ERRCODE = 'external_routine_exception';
                    END IF;
                    EXECUTE format('UPDATE %s AS t SET %I = u.e::real[]::%s%s '
                                   'FROM unnest($1::tid[], $2::text[]) AS u (id, e) WHERE t.ctid = u.id',
                                   leaf, emb_col, emb_type, set_track)
                       USING chunk, vectors;
                    c.rows_processed := c.rows_processed + cardinality(chunk);
                END IF;
                PERFORM google_ml._embedding_config_write(c, false);
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS failed = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE,
                                        failed_detail = PG_EXCEPTION_DETAIL;
            END;
            EXIT WHEN failed IS NOT NULL;
            IF may_commit THEN
                COMMIT;
            END IF;
        END LOOP;
        EXIT WHEN failed IS NOT NULL;
        IF track_col IS NOT NULL THEN
            -- Rows whose content was cleared: no embedding, nothing left to do.
            EXECUTE format('UPDATE %s SET %I = NULL, %I = false WHERE %I IS NULL AND %I',
                           leaf, emb_col, track_col, content_col, track_col);
        END IF;
    END LOOP;

    c.finished_at := pg_catalog.clock_timestamp();
    IF failed IS NOT NULL THEN
        c.status := 'failed';
        c.error := failed;
        IF may_commit THEN
            PERFORM google_ml._embedding_config_write(c, false);
            COMMIT;
            RAISE EXCEPTION 'embedding % of % failed after % of % rows: %',
                            scope, emb_col, c.rows_processed, c.rows_total, failed
                USING ERRCODE = failed_state, DETAIL = coalesce(failed_detail, ''),
                      HINT = format('The %s rows done keep their embeddings (committed batch by batch); '
                                    'the others are unchanged. Fix the cause, then %s',
                                    c.rows_processed,
                                    CASE WHEN c.refresh_mode = 'transactional' THEN format(
                                        'CALL ai.drop_embedding_config(%L, %L) and '
                                        'ai.initialize_embeddings(...) again.', c.table_name, emb_col)
                                    ELSE format(
                                        'CALL ai.refresh_embeddings(%L, %L) to embed the rest, or '
                                        'CALL ai.drop_embedding_config(%L, %L) to remove the configuration.',
                                        c.table_name, emb_col, c.table_name, emb_col) END);
        END IF;
        RAISE EXCEPTION 'embedding % of % failed after % of % rows: %',
                        scope, emb_col, c.rows_processed, c.rows_total, failed
            USING ERRCODE = failed_state, DETAIL = coalesce(failed_detail, ''),
                  HINT = 'Nothing was changed: the call ran inside a transaction and is rolled back '
                         'with it. Fix the cause and CALL it again (on its own, outside a '
                         'transaction block, it commits batch by batch and shows its progress).';
    END IF;
    c.status := 'success';
    PERFORM google_ml._embedding_config_write(c, false);
END;
$$;

CREATE PROCEDURE ai.initialize_embeddings(
    model_id                  text,
    table_name                text,
    content_column            text,
    embedding_column          text,
    batch_size                int DEFAULT NULL,
    incremental_refresh_mode  text DEFAULT 'manual')
LANGUAGE plpgsql
AS $$
DECLARE
    rel      regclass;
    content  pg_catalog.pg_attribute;
    emb      pg_catalog.pg_attribute;
    mode     text := lower(btrim(coalesce(incremental_refresh_mode, 'manual')));
    c        google_ml._embedding_configs;
BEGIN
    PERFORM google_ml._require_flag('enable_faster_embedding_generation',
                                    'auto-embeddings (ai.initialize_embeddings)');
    PERFORM google_ml._require_model_support();
    IF mode = 'none' THEN
        mode := 'manual';  -- what older pages call it
    END IF;
    IF mode NOT IN ('manual', 'transactional') THEN
        RAISE EXCEPTION 'incremental_refresh_mode must be ''manual'' or ''transactional'' (got %)',
                        incremental_refresh_mode
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1 (got %)', batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    rel := google_ml._embedding_table(table_name);
    PERFORM google_ml._embedding_table_supported(rel);
    IF pg_catalog.pg_partition_root(rel) <> rel THEN
        RAISE EXCEPTION 'table % is a partition; initialize embeddings on the root partitioned table %',
                        rel, pg_catalog.pg_partition_root(rel)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The page: "To use the transactional mode, you must have the owner role on the table"
    -- (PostgreSQL alone would let a holder of the TRIGGER privilege add the trigger).
    IF mode = 'transactional' AND NOT pg_catalog.pg_has_role(
           (SELECT k.relowner FROM pg_catalog.pg_class AS k WHERE k.oid = rel), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to use transactional mode', rel
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Call ai.initialize_embeddings(..., incremental_refresh_mode => ''transactional'') '
                         'as the table''s owner (or a member of its owning role).';
    END IF;
    content := google_ml._embedding_column(rel, content_column, 'content_column');
    emb := google_ml._embedding_column(rel, embedding_column, 'embedding_column');
    IF NOT (emb.atttypid = 'real[]'::regtype OR emb.atttypid = 'double precision[]'::regtype
            OR pg_catalog.format_type(emb.atttypid, NULL) IN ('vector', 'halfvec')) THEN
        RAISE EXCEPTION 'embedding_column "%" is of type %; it must be vector, halfvec or real[]',
                        emb.attname, pg_catalog.format_type(emb.atttypid, emb.atttypmod)
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'ALTER TABLE ... ADD COLUMN embedding vector(768)  (the model''s dimension)';
    END IF;
    PERFORM google_ml._embedding_model(model_id);
    IF (google_ml._embedding_config_of(rel, emb.attname)).relation IS NOT NULL THEN
        RAISE EXCEPTION 'embeddings of % column "%" are already configured', rel, emb.attname
            USING ERRCODE = 'duplicate_object',
                  HINT = 'CALL ai.refresh_embeddings(...) to embed new and changed rows, or '
                         'ai.drop_embedding_config(...) first.';
    END IF;

    c.relation := rel;
    c.table_name := table_name;
    c.content_column := content.attname;
    c.embedding_column := emb.attname;
    c.model_id := model_id;
    c.batch_size := coalesce(batch_size, 100);
    c.refresh_mode := mode;
    c.status := 'running';
    c.rows_total := 0;
    c.rows_processed := 0;
    c.partition_root := CASE WHEN (SELECT x.relkind FROM pg_catalog.pg_class AS x WHERE x.oid = rel) = 'p'
                             THEN rel::text END;
    c.created_by := current_user;
    IF mode = 'manual' THEN
        c.tracking_column := google_ml._embedding_tracking_column(emb);
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = rel
                     AND a.attname = c.tracking_column AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'table % already has a column "%"', rel, c.tracking_column
                USING ERRCODE = 'duplicate_column';
        END IF;
    END IF;
    PERFORM google_ml._embedding_config_write(c, true);
    IF mode = 'transactional' THEN
        -- Before the backfill, so rows written meanwhile are embedded by the trigger.
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION google_ml._embedding_trigger(%L, %L, %L)',
                       google_ml._embedding_trigger_name(emb.attname), content.attname, rel,
                       model_id, content.attname, emb.attname);
    ELSE
        -- Every existing row starts stale; the trigger marks rows written from now on.
        EXECUTE format('ALTER TABLE %s ADD COLUMN %I boolean NOT NULL DEFAULT true',
                       rel, c.tracking_column);
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION google_ml._embedding_stale_trigger(%L, %L)',
                       google_ml._embedding_stale_trigger_name(emb.attname), content.attname, rel,
                       content.attname, c.tracking_column);
    END IF;
    CALL google_ml._embedding_fill(c, rel, false);
END;
$$;

CREATE PROCEDURE ai.refresh_embeddings(
    table_name        text,
    embedding_column  text,
    batch_size        int DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    rel  regclass;
    emb  pg_catalog.pg_attribute;
    c    google_ml._embedding_configs;
BEGIN
    PERFORM google_ml._require_flag('enable_faster_embedding_generation',
                                    'auto-embeddings (ai.refresh_embeddings)');
    PERFORM google_ml._require_model_support();
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1 (got %)', batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    rel := google_ml._embedding_table(table_name);
    PERFORM google_ml._embedding_table_supported(rel);  -- it may have been SET UNLOGGED since
    emb := google_ml._embedding_column(rel, embedding_column, 'embedding_column');
    c := google_ml._embedding_config_for(rel, emb.attname);
    IF c.relation IS NULL THEN
        RAISE EXCEPTION 'no embedding configuration for % column "%"', rel, emb.attname
            USING ERRCODE = 'undefined_object',
                  HINT = 'CALL ai.initialize_embeddings(...) first.';
    END IF;
    IF c.refresh_mode = 'transactional' THEN
        RAISE EXCEPTION 'ai.refresh_embeddings is disabled for % column "%": its embeddings are kept in sync in transactional mode',
                        c.relation::regclass, emb.attname
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'To embed the whole table again, CALL ai.drop_embedding_config(...) and then '
                         'ai.initialize_embeddings(...).';
    END IF;
    c.batch_size := coalesce(batch_size, c.batch_size);
    CALL google_ml._embedding_fill(c, rel, c.tracking_column IS NOT NULL);
END;
$$;

-- Drops the configuration of one embedding column, or (embedding_column NULL) of every
-- embedding column of the table, with its trigger and tracking column.
CREATE PROCEDURE ai.drop_embedding_config(table_name text, embedding_column text DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    rel      regclass;
    c        google_ml._embedding_configs;
    columns  text[];
    col      text;
    trigger_name name;
BEGIN
    rel := google_ml._embedding_table(table_name);
    IF embedding_column IS NULL THEN
        columns := ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
                          WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
                            AND (google_ml._embedding_config_of(rel, a.attname)).relation IS NOT NULL
                          ORDER BY a.attnum);
        IF cardinality(columns) = 0 THEN
            RAISE EXCEPTION 'no embedding configuration for %', rel
                USING ERRCODE = 'undefined_object';
        END IF;
    ELSE
        columns := ARRAY[(google_ml._embedding_column(rel, embedding_column, 'embedding_column')).attname::text];
    END IF;
    FOREACH col IN ARRAY columns LOOP
        c := google_ml._embedding_config_of(rel, col);
        IF c.relation IS NULL THEN
            RAISE EXCEPTION 'no embedding configuration for % column "%"', rel, col
                USING ERRCODE = 'undefined_object';
        END IF;
        -- Only the triggers the mode made (manual mode has none): a DROP TRIGGER IF EXISTS of a
        -- missing one would print a NOTICE naming the emulator's trigger, which AlloyDB does not.
        FOR trigger_name IN
            SELECT t.tgname FROM pg_catalog.pg_trigger AS t
             WHERE t.tgrelid = rel AND t.tgname IN (google_ml._embedding_trigger_name(col),
                                                    google_ml._embedding_stale_trigger_name(col))
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, rel);
        END LOOP;
        IF c.tracking_column IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', rel, c.tracking_column);
        END IF;
        PERFORM google_ml._embedding_config_delete(rel, col);
    END LOOP;
    -- AlloyDB's commits too: it "must run outside a transaction" (LangChain's test helper)
    COMMIT;
END;
$$;

-- Readies child_table to be attached as a partition of parent_table (the root, or a partition
-- at any level of it): it gets the columns auto-embeddings added to the hierarchy (the tracking
-- column of manual mode) and any embedding column it lacks, with the same types, so that
-- ALTER TABLE parent ATTACH PARTITION child accepts it.
CREATE PROCEDURE ai.embedding_prepare_partition(parent_table text, child_table text)
LANGUAGE plpgsql
AS $$
DECLARE
    parent  regclass := google_ml._embedding_table(parent_table);
    child   regclass := google_ml._embedding_table(child_table);
    root    regclass := pg_catalog.pg_partition_root(parent);
    c       google_ml._embedding_configs;
    found   boolean := false;
BEGIN
    FOR c IN SELECT (x).* FROM (
                 SELECT google_ml._embedding_config_of(root, a.attname) AS x
                   FROM pg_catalog.pg_attribute AS a
                  WHERE a.attrelid = root AND a.attnum > 0 AND NOT a.attisdropped) AS s
              WHERE (x).relation IS NOT NULL LOOP
        found := true;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = child
                         AND a.attname = c.embedding_column AND NOT a.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', child, c.embedding_column,
                           (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
                              FROM pg_catalog.pg_attribute AS a
                             WHERE a.attrelid = root AND a.attname = c.embedding_column));
        END IF;
        IF c.tracking_column IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = child
                             AND a.attname = c.tracking_column AND NOT a.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I boolean NOT NULL DEFAULT true',
                           child, c.tracking_column);
        END IF;
    END LOOP;
    IF NOT found THEN
        RAISE EXCEPTION 'no embedding configuration for the partitioned table %', root
            USING ERRCODE = 'undefined_object',
                  HINT = 'CALL ai.initialize_embeddings(...) on the root partitioned table first.';
    END IF;
END;
$$;

-- The google_ml twins.
CREATE PROCEDURE google_ml.initialize_embeddings(
    model_id text, table_name text, content_column text, embedding_column text,
    batch_size int DEFAULT NULL, incremental_refresh_mode text DEFAULT 'manual')
LANGUAGE plpgsql
AS $$
BEGIN
    CALL ai.initialize_embeddings(model_id, table_name, content_column, embedding_column,
                                  batch_size, incremental_refresh_mode);
END;
$$;

CREATE PROCEDURE google_ml.refresh_embeddings(
    table_name text, embedding_column text, batch_size int DEFAULT NULL)
LANGUAGE plpgsql
AS $$
BEGIN
    CALL ai.refresh_embeddings(table_name, embedding_column, batch_size);
END;
$$;

CREATE PROCEDURE google_ml.drop_embedding_config(table_name text, embedding_column text DEFAULT NULL)
LANGUAGE plpgsql
AS $$
BEGIN
    CALL ai.drop_embedding_config(table_name, embedding_column);
END;
$$;

CREATE PROCEDURE google_ml.embedding_prepare_partition(parent_table text, child_table text)
LANGUAGE plpgsql
AS $$
BEGIN
    CALL ai.embedding_prepare_partition(parent_table, child_table);
END;
$$;

-- ---------------------------------------------------------------------------
-- AlloyDB keeps auto-embedding state in google_ml.embed_gen_settings and
-- google_ml.embed_gen_progress: readable by everyone, and its documentation has users who manage
-- auto-embeddings run GRANT INSERT, UPDATE, DELETE on them. Here they are read-only views of the
-- emulator's own configuration table (a join keeps them from being updatable, so a grant cannot
-- let anyone forge a configuration): the documented GRANT runs, SELECT shows the state, and the
-- procedures themselves need no such grant.
CREATE VIEW google_ml.embed_gen_settings AS
SELECT c.table_name,
       c.content_column,
       c.embedding_column,
       c.model_id,
       c.batch_size,
       c.refresh_mode AS incremental_refresh_mode,
       c.created_by
  FROM google_ml._embedding_configs AS c
  JOIN pg_catalog.pg_class AS r ON r.oid = c.relation;

CREATE VIEW google_ml.embed_gen_progress AS
SELECT c.table_name,
       c.embedding_column,
       c.status,
       c.rows_total,
       c.rows_processed,
       c.started_at,
       c.finished_at,
       c.error
  FROM google_ml._embedding_configs AS c
  JOIN pg_catalog.pg_class AS r ON r.oid = c.relation;

GRANT SELECT ON google_ml.embed_gen_settings, google_ml.embed_gen_progress TO PUBLIC;
