-- The warm-up: per-row model calls of one statement answered from batched requests.
--
-- The proxy splices a warm-up into statements that call a model once per row
-- (proxy/warmup.py):  ... WHERE (SELECT google_ml._warm('embedding', 'm',
-- array_agg(DISTINCT (content)::text)) FROM docs WHERE ...) AND <original condition>.
-- _warm sends the distinct items to the engine in provider-sized batches, applies
-- the output transforms here, in the caller's session, and keeps the answers in
-- google_ml._warm_cache for the rest of the statement; the per-row calls look
-- there first. _warm always returns true and swallows its own errors: a call it
-- could not answer takes the per-row path, which raises what it would have raised.
-- The warm-up is the emulator's own machinery, not AlloyDB's: every version has it.

-- @version 1.2

-- The statement cache. Unlogged (it is a cache), keyed by the backend and the
-- statement (pid:statement_timestamp) so a row never outlives its statement's
-- meaning; rows of a rolled-back statement vanish with it. Only the SECURITY
-- DEFINER functions below touch it.
CREATE UNLOGGED TABLE google_ml._warm_cache (
    statement_key  text NOT NULL,
    kind           text NOT NULL,
    model_id       text NOT NULL,
    item           text NOT NULL,
    result         text,    -- the answer of an AI function (kind 'if', 'generate', ...)
    embedding      real[]   -- kind 'embedding': the answer, its numbers parsed once, when stored
);
-- A hash index on the item alone: a lookup hashes the text once and compares it once, where a
-- b-tree over (statement_key, kind, model_id, md5(item)) compared four strings at every level
-- and an md5 was computed on every store and every lookup. Few rows share an item (one per
-- statement and backend), so the other columns are checked on the row.
CREATE INDEX ON google_ml._warm_cache USING hash (item);
-- Answers (embedding literals of a few KB) are written once and read once: neither compressed
-- (which costs more than it saves here) nor, up to a page, moved out of line (a TOAST row and
-- TOAST index entry per answer cost half of storing them, and each lookup had to fetch them
-- back). toast_tuple_target at its maximum keeps a row of up to 8160 bytes whole in the heap;
-- a longer answer still goes out of line, uncompressed.
ALTER TABLE google_ml._warm_cache ALTER COLUMN result SET STORAGE EXTERNAL;
ALTER TABLE google_ml._warm_cache ALTER COLUMN embedding SET STORAGE EXTERNAL;
ALTER TABLE google_ml._warm_cache SET (toast_tuple_target = 8160);
REVOKE ALL ON TABLE google_ml._warm_cache FROM PUBLIC;
ALTER TABLE google_ml._warm_cache ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION google_ml._statement_key()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT pg_catalog.pg_backend_pid()::text || ':' || pg_catalog.statement_timestamp()::text
$$;

-- The key of this statement's warm-up, or NULL when this statement has none (no key yet, or an
-- earlier statement's). One expression, so the planner inlines it; the statement's own key (a
-- timestamp written out) is only computed when there is a key to compare it with.
CREATE FUNCTION google_ml._warm_key()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN coalesce(pg_catalog.current_setting('google_ml_integration.emulator_warm_key', true),
                      '') OPERATOR(pg_catalog.=) '' THEN NULL
        WHEN pg_catalog.current_setting('google_ml_integration.emulator_warm_key', true)
             OPERATOR(pg_catalog.=) google_ml._statement_key()
        THEN pg_catalog.current_setting('google_ml_integration.emulator_warm_key', true)
    END
$$;

-- The warmed answer for one per-row call, or NULL. VOLATILE on purpose: it must
-- see the rows _warm inserted earlier in the same statement.
CREATE FUNCTION google_ml._warm_lookup(kind text, model_id text, item text)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key     text := google_ml._warm_key();
    answer  text;
BEGIN
    IF key IS NULL OR item IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT c.result INTO answer
      FROM google_ml._warm_cache AS c
     WHERE c.statement_key = key AND c.kind = _warm_lookup.kind
       AND c.model_id = coalesce(_warm_lookup.model_id, '')
       AND c.item = _warm_lookup.item
     LIMIT 1;
    IF NOT FOUND THEN
        PERFORM google_ml._warm_missed(kind);
    END IF;
    RETURN answer;
END;
$$;

-- A per-row call of a warmed statement that finds no warmed answer makes its own provider
-- request, which is otherwise silent: the engine counts it by kind (metrics:
-- warmup_row_misses_total). Only ever on that slow path; a failure to count is ignored.
CREATE FUNCTION google_ml._warm_missed(kind text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM google_ml._call_engine_text(jsonb_build_object('op', 'warmup_row_missed',
                                                           'kind', kind));
EXCEPTION WHEN OTHERS THEN
    NULL;
END;
$$;

-- The warmed embedding for one per-row embedding() call, or NULL. The numbers were parsed when
-- the warm-up stored them, while the provider was still answering other batches; the per-row
-- call hands the stored real[] on as it is, never through a plpgsql variable (which would
-- expand the array and flatten it again). A text whose batch the engine is still storing
-- (a pipelined warm-up, _warm_stream) is waited for: _warm_wait.
CREATE FUNCTION google_ml._warm_embedding(model_id text, item text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key  text := google_ml._warm_key();
BEGIN
    IF key IS NULL OR item IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN coalesce((SELECT c.embedding
                       FROM google_ml._warm_cache AS c
                      WHERE c.statement_key = key AND c.kind = 'embedding'
                        AND c.model_id = coalesce(_warm_embedding.model_id, '')
                        AND c.item = _warm_embedding.item
                      LIMIT 1),
                    google_ml._warm_wait(key, coalesce(model_id, ''), item),
                    google_ml._warm_missed_embedding());
END;
$$;

-- _warm_missed for an embedding, as the NULL real[] that the per-row call then replaces.
CREATE FUNCTION google_ml._warm_missed_embedding()
RETURNS real[]
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NULL::real[] FROM google_ml._warm_missed('embedding')
$$;

-- A text not in the cache (yet), while this statement's pipelined warm-ups run: the engine
-- answers once the text's batch has ended (emulator/engine/streams.py, "Pipelined streams"):
-- 's', stored by the engine (read it); 'b', its batch's texts (a JSON array) and a literal a
-- line, which this session stores as a warm-up without the engine's store does (a literal
-- PostgreSQL refuses leaves the whole batch to the per-row calls, which report it; a parallel
-- worker, which cannot store, does not take it); 'n', no answer (the per-row call); 'x', none of
-- the streams is open any more: no need to ask again (the cache is read once more).
-- google_ml_integration.emulator_warm_streams holds `<statement key> <stream id>...`.
CREATE FUNCTION google_ml._warm_wait(key text, model_id text, item text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    streams  text := pg_catalog.current_setting('google_ml_integration.emulator_warm_streams', true);
    answer   text;
    worker   boolean;
BEGIN
    IF streams IS NULL OR NOT pg_catalog.starts_with(streams, key || ' ') THEN
        RETURN NULL;
    END IF;
    -- A parallel worker can neither store a batch nor set a setting: it only reads.
    worker := EXISTS (SELECT FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) AS a
                       WHERE a.leader_pid IS NOT NULL
                         AND a.leader_pid OPERATOR(pg_catalog.<>) a.pid);
    answer := google_ml._call_engine_text(jsonb_build_object(
        'op', 'stream_wait', 'model_id', model_id, 'item', item, 'take', NOT worker,
        'streams', to_jsonb(pg_catalog.string_to_array(
            pg_catalog.substr(streams, pg_catalog.length(key) + 2), ' '))));
    IF answer = 'x' THEN
        IF NOT worker THEN
            PERFORM pg_catalog.set_config('google_ml_integration.emulator_warm_streams', '', true);
        END IF;
        -- Every stream has ended, and one goes once its batches are all stored: this text's may
        -- have been stored after this row looked, so it looks once more.
    ELSIF pg_catalog.starts_with(answer, 'b') AND NOT worker THEN
        BEGIN
            -- The batch as it came; the NULL item skips its first line (the texts).
            PERFORM google_ml._warm_add_embeddings(model_id, pg_catalog.array_prepend(NULL::text,
                ARRAY(SELECT pg_catalog.jsonb_array_elements_text(pg_catalog.substr(
                    pg_catalog.split_part(answer, E'\n', 1), 2)::jsonb))), answer);
        EXCEPTION WHEN OTHERS THEN
            RETURN NULL;
        END;
    ELSIF answer <> 's' THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT c.embedding
              FROM google_ml._warm_cache AS c
             WHERE c.statement_key = key AND c.kind = 'embedding'
               AND c.model_id = _warm_wait.model_id AND c.item = _warm_wait.item
             LIMIT 1);
END;
$$;

-- pgvector's `vector` type, if the extension is in this database: its input reads a literal of
-- 768 numbers in half the time array_in takes (no per-character copy, no call per element).
-- Found by the extension that owns it, not by name: another type may be called vector.
CREATE FUNCTION google_ml._pgvector_type()
RETURNS regtype
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.oid::regtype
      FROM pg_catalog.pg_extension AS e
      JOIN pg_catalog.pg_depend AS d
        ON d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = e.oid
       AND d.classid = 'pg_catalog.pg_type'::regclass AND d.deptype = 'e'
      JOIN pg_catalog.pg_type AS t ON t.oid = d.objid AND t.typname = 'vector'
      JOIN pg_catalog.pg_cast AS c
        ON c.castsource = t.oid AND c.casttarget = 'real[]'::regtype
     WHERE e.extname = 'vector'
$$;

-- Embeddings of this statement, their literals parsed here, once: a literal PostgreSQL refuses
-- makes the warm-up fail as a whole, and its rows take the per-row path, which reports it.
-- `lines` holds one literal a line, the n-th line for the n-th item, an empty line for none; a
-- NULL item skips its line (the warm-up's items are never NULL: _warm drops them). The lines
-- are the engine's streamed batch as it came (its first line, the batch's position, skipped by
-- a NULL first item), read with string_to_table: a 1 MB batch is copied once (EXECUTE's
-- parameter), where a text[] of its lines was built, sliced, expanded into a plpgsql argument
-- and flattened again (0.69 -> 0.56 s of the backend's time for 40 batches of 250).
-- With pgvector in the database, '[...]' literals (the engine's streamed batches, asked for
-- pgvector's brackets) are read with its input, then vector -> real[] (a copy of the floats);
-- '{...}' (any other path's real[] literals) with real[]'s. Both inputs are strtof: the same
-- floats, except that vector reads a number too small for real as 0 where real refuses it; the
-- engine never hands such a literal to the warm-up (emulator/engine/extract.py,
-- could_underflow_real). '[]' is not a vector: a vector has at least one number.
-- Dynamic SQL, the vector type being unknown when the extension is created. The type is looked
-- up here, never taken from the caller: a cast to a type of the caller's choosing (a domain
-- with a CHECK) would run the caller's code as this function's owner. Like _warm_add, it only
-- writes entries keyed by the caller's own backend and statement.
CREATE FUNCTION google_ml._warm_add_embeddings(model_id text, items text[], lines text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    vector  regtype := google_ml._pgvector_type();
    parse   text := 'u.r::real[]';
BEGIN
    IF vector IS NOT NULL THEN
        parse := pg_catalog.format($sql$
            CASE WHEN u.r = '[]' THEN '{}'::real[]
                 WHEN pg_catalog.starts_with(u.r, '[') THEN u.r::%s::real[]
                 ELSE u.r::real[] END$sql$, vector);
    END IF;
    -- ROWS FROM zips the two lists by position (the shorter padded with NULLs).
    EXECUTE pg_catalog.format($sql$
        INSERT INTO google_ml._warm_cache (statement_key, kind, model_id, item, embedding)
        SELECT $1, 'embedding', $2, u.i, %s
          FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.string_to_table($4, E'\n', ''))
               AS u (i, r)
         WHERE u.i IS NOT NULL AND u.r IS NOT NULL$sql$, parse)
    USING google_ml._statement_key(), coalesce(model_id, ''), items, lines;
END;
$$;

-- SQL, not plpgsql: the answers reach the INSERT as they are. A plpgsql function copies an array
-- argument into its expanded form on entry, and its INSERT would get a custom plan with both
-- arrays folded in as constants, copied again by the planner; a generic plan reads them from the
-- parameters. (The streamed embeddings skip it: _warm_stream calls _warm_add_embeddings.)
-- _warm_add stores answers of this statement; _warm_store first clears what earlier statements
-- left (once per warm-up: its second DELETE reads the whole cache), then adds.
CREATE FUNCTION google_ml._warm_add(kind text, model_id text, items text[], results text[])
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
    INSERT INTO google_ml._warm_cache (statement_key, kind, model_id, item, result)
    SELECT k.key, _warm_add.kind, coalesce(_warm_add.model_id, ''), u.i, u.r
      FROM (SELECT google_ml._statement_key() AS key) AS k,
           unnest(items, results) AS u (i, r)  -- the multi-argument form is unqualified syntax
     WHERE u.r IS NOT NULL AND _warm_add.kind <> 'embedding';
    SELECT google_ml._warm_add_embeddings(model_id, items,
                                          pg_catalog.array_to_string(results, E'\n', ''))
     WHERE _warm_add.kind = 'embedding';
    SELECT pg_catalog.set_config('google_ml_integration.emulator_warm_key',
                                 google_ml._statement_key(), true);
$$;

CREATE FUNCTION google_ml._warm_store(kind text, model_id text, items text[], results text[])
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
    -- Earlier statements of this backend, and backends that are gone.
    DELETE FROM google_ml._warm_cache AS c
     WHERE c.statement_key LIKE pg_catalog.pg_backend_pid()::text || ':%'
       AND c.statement_key <> google_ml._statement_key();
    DELETE FROM google_ml._warm_cache AS c
     WHERE pg_catalog.split_part(c.statement_key, ':', 1)::int NOT IN
           (SELECT a.pid FROM pg_catalog.pg_stat_activity AS a);
    SELECT google_ml._warm_add(kind, model_id, items, results);
$$;


-- The model a call names: registered, or (for embeddings) a Vertex AI model by name; for
-- the AI functions the default model when the call names none (the proxy passes NULL).
CREATE FUNCTION google_ml._model_for_warm(kind text, model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    IF kind IN ('if', 'generate', 'rank', 'summarize', 'sentiment') THEN
        RETURN google_ml._model_for_call(coalesce(model_id, google_ml._ai_default_model()));
    END IF;
    m := google_ml._model_for_call(model_id);
    IF m.id IS NULL AND kind = 'embedding' THEN
        m := google_ml._vertex_model(model_id, 'text_embedding');
    END IF;
    RETURN m;
END;
$$;


-- ---------------------------------------------------------------------------
-- Warm-up batches that fit the providers' per-request token limits (Vertex AI text embeddings:
-- 20,000 tokens; OpenAI: 300,000; the limits below come from emulator/providers.py), not
-- only their text counts. A batch of 250 long documents
-- would be refused by Vertex AI, and the warm-up would fall back to one request per row.

-- Consecutive batches of at most `size` texts whose estimated tokens stay within `token_budget`
-- (NULL: count only), as [first, last] positions. The estimate, 2 bytes of UTF-8 a token, is
-- high for every language; a text over the budget on its own makes a batch of one.
CREATE FUNCTION google_ml._batch_bounds(items text[], size int, token_budget int)
RETURNS TABLE (first int, last int)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    n       int := coalesce(pg_catalog.cardinality(items), 0);
    i       int := 0;
    start   int := 1;
    tokens  bigint := 0;
    cost    int;
    item    text;
BEGIN
    IF token_budget IS NULL THEN
        RETURN QUERY SELECT s, least(s + size - 1, n) FROM pg_catalog.generate_series(1, n, size) AS s;
        RETURN;
    END IF;
    FOREACH item IN ARRAY coalesce(items, '{}') LOOP  -- not items[i]: O(n) each on a text[]
        i := i + 1;
        cost := (coalesce(pg_catalog.octet_length(item), 0) + 1) / 2;
        IF i > start AND (i - start >= size OR tokens + cost > token_budget) THEN
            first := start;
            last := i - 1;
            RETURN NEXT;
            start := i;
            tokens := 0;
        END IF;
        tokens := tokens + cost;
    END LOOP;
    IF n >= start THEN
        first := start;
        last := n;
        RETURN NEXT;
    END IF;
END;
$$;

-- What _warm_embeddings answers: `results`, or, given store_kind, NULL once they are stored.
CREATE FUNCTION google_ml._warm_result(store_kind text, store_model_id text, items text[],
                                       results text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF store_kind IS NULL THEN
        RETURN results;
    END IF;
    PERFORM google_ml._warm_store(store_kind, store_model_id, items, results);
    RETURN NULL;
END;
$$;

-- The warm-up's built-in embedding batches, streamed (emulator/engine/streams.py): the engine
-- starts them all (at most twice the model concurrency ahead of this session) and answers each
-- as it finishes, `<position from 0>\n<one real[] literal a line>`; each is stored at once, so
-- storing overlaps the requests still in flight and the engine never holds all the answers.
-- A batch that failed answers empty lines: its texts take the per-row path. If anything fails
-- or is cancelled here, the engine is told to drop the stream (its batches still running are
-- abandoned); a stream_next cancelled while it waits drops it on the engine's side.
-- In READ COMMITTED the engine is asked to store the batches itself ("store"), and the warm-up
-- is pipelined: the engine answers `p:<stream id>`, and this returns at once, the stream's id
-- added to google_ml_integration.emulator_warm_streams, so the statement's rows go on while the
-- provider answers. The engine COPYs each batch in binary over its own connection and commits;
-- the per-row lookups, VOLATILE, see the committed rows (emulator/engine/warm_copy.py), and a
-- row whose batch is not stored yet waits for that batch (_warm_wait); the batches come in the
-- order the rows need them (_warm keeps the order of the statement's scan). A batch the engine
-- could not store (its numbers, the connection) is handed to the first row that waits for it,
-- and this session stores it as below. _authorized_request adds this statement's key, the
-- only one the engine accepts from here. Without the store (REPEATABLE READ, SERIALIZABLE, or
-- the engine's connection failed lately) the batches come as text, one stream_next each.
CREATE FUNCTION google_ml._warm_stream(kind text, model_id text, items text[], requests jsonb[],
                                       extractor text, firsts int[], lasts int[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    stream   text;
    chunk    text;
    b        int;
    key      text;
    streams  text;
BEGIN
    -- With pgvector in the database, the literals come in its brackets, for its input.
    stream := google_ml._call_engine_text(jsonb_build_object(
        'op', 'invoke_batch', 'requests', pg_catalog.to_jsonb(requests), 'extract', extractor,
        'stream', true, 'literals',
        CASE WHEN kind = 'embedding' AND google_ml._pgvector_type() IS NOT NULL
             THEN 'vector' ELSE 'real[]' END,
        'store', CASE WHEN kind = 'embedding' AND pg_catalog.current_setting(
                               'transaction_isolation') = 'read committed'
                      THEN jsonb_build_object('model_id', coalesce(model_id, '')) END,
        'pipeline', true));
    BEGIN
        key := google_ml._statement_key();
        streams := pg_catalog.current_setting('google_ml_integration.emulator_warm_streams',
                                              true);
        -- Clears what earlier statements left in the cache while the first batch is on its way
        -- (once: a later stream of this statement finds its key in the setting).
        IF NOT coalesce(pg_catalog.starts_with(streams, key || ' '), false) THEN
            PERFORM google_ml._warm_store(kind, model_id, '{}', '{}');
        END IF;
        IF pg_catalog.starts_with(stream, 'p:') THEN
            -- Pipelined: the engine stores the batches; the rows wait for theirs (_warm_wait).
            PERFORM pg_catalog.set_config('google_ml_integration.emulator_warm_streams',
                CASE WHEN pg_catalog.starts_with(streams, key || ' ') THEN streams
                     ELSE key END || ' ' || pg_catalog.substr(stream, 3), true);
            RETURN;
        END IF;
        FOR k IN 1 .. coalesce(pg_catalog.cardinality(firsts), 0) LOOP
            chunk := google_ml._call_engine_text(
                jsonb_build_object('op', 'stream_next', 'stream', stream));
            -- Not substr() for the lines: it counts characters, a walk of the whole answer.
            b := pg_catalog.split_part(chunk, E'\n', 1)::int + 1;
            -- The chunk as it came; the NULL item skips its first line (the position).
            PERFORM google_ml._warm_add_embeddings(model_id,
                pg_catalog.array_prepend(NULL::text, items[firsts[b] : lasts[b]]), chunk);
        END LOOP;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        BEGIN
            PERFORM google_ml._call_engine_text(
                jsonb_build_object('op', 'stream_drop', 'stream', stream));
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- the engine forgets an idle stream by itself
        END;
        RAISE;
    END;
END;
$$;

-- The embeddings of `items` (a NULL where a text got none), or, given store_kind (the warm-up's
-- kind and model id), NULL after storing them into the warm-up's cache itself.
CREATE FUNCTION google_ml._warm_embeddings(m google_ml.models, items text[],
                                           store_kind text DEFAULT NULL,
                                           store_model_id text DEFAULT NULL)
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    in_fn       text := coalesce(m.input_transform_fn, CASE m.provider
                    WHEN 'google' THEN 'google_ml.vertexai_text_embedding_input_transform'
                    WHEN 'open_ai' THEN 'google_ml.openai_text_embedding_input_transform' END);
    out_fn      text := coalesce(m.output_transform_fn, CASE m.provider
                    WHEN 'google' THEN 'google_ml.vertexai_text_embedding_output_transform'
                    WHEN 'open_ai' THEN 'google_ml.openai_text_embedding_output_transform' END);
    style       text;
    size        int;
    n           int := pg_catalog.cardinality(items);
    requests    jsonb[] := '{}';  -- appended in place; one jsonb array at the end, not n copies
    one         text;
    answer      json;
    b           int;
    answers     json;
    results     text[] := pg_catalog.array_fill(NULL::text, ARRAY[n]);
    body        json;
    batch       text[];
    fn          regprocedure;
    response    json;
    matrix      real[];
    base        int;
    first       int;
    last        int;
    firsts      int[] := '{}';
    lasts       int[] := '{}';
    chunk       bigint := 0;  -- bytes of the request bodies not sent yet
BEGIN
    IF m.model_type NOT IN ('text_embedding', 'multimodal_embedding') THEN
        RETURN google_ml._warm_result(store_kind, store_model_id, items, results);
    END IF;
    IF in_fn = 'google_ml.vertexai_text_embedding_input_transform'
       AND out_fn = 'google_ml.vertexai_text_embedding_output_transform'
       AND coalesce(m.input_batch_transform_fn, 'google_ml.vertexai_text_embedding_batch_input_transform')
           = 'google_ml.vertexai_text_embedding_batch_input_transform'
       AND coalesce(m.output_batch_transform_fn, 'google_ml.vertexai_text_embedding_batch_output_transform')
           = 'google_ml.vertexai_text_embedding_batch_output_transform' THEN
        style := 'vertex'; size := {{VERTEX_MAX_TEXTS}};
    ELSIF in_fn = 'google_ml.openai_text_embedding_input_transform'
       AND out_fn = 'google_ml.openai_text_embedding_output_transform'
       AND coalesce(m.input_batch_transform_fn, 'google_ml.openai_text_embedding_batch_input_transform')
           = 'google_ml.openai_text_embedding_batch_input_transform'
       AND coalesce(m.output_batch_transform_fn, 'google_ml.openai_text_embedding_batch_output_transform')
           = 'google_ml.openai_text_embedding_batch_output_transform' THEN
        style := 'openai'; size := {{OPENAI_MAX_TEXTS}};
    ELSIF m.input_batch_transform_fn IS NOT NULL AND m.output_batch_transform_fn IS NOT NULL THEN
        style := 'batch';
        size := CASE m.provider WHEN 'open_ai' THEN {{OPENAI_MAX_TEXTS}}
                     WHEN 'google' THEN {{VERTEX_MAX_TEXTS}} ELSE {{OTHER_MAX_TEXTS}} END;
    ELSE
        style := 'single'; size := 1;
    END IF;

    FOR first, last IN
        SELECT b.first, b.last FROM google_ml._batch_bounds(items, size,
            CASE style WHEN 'vertex' THEN {{VERTEX_MAX_TOKENS}} WHEN 'openai' THEN {{OPENAI_MAX_TOKENS}} END) AS b
    LOOP
        batch := items[first : last];
        IF style = 'vertex' THEN
            body := google_ml.vertexai_text_embedding_batch_input_transform(m.id, batch);
        ELSIF style = 'openai' THEN
            body := google_ml.openai_text_embedding_batch_input_transform(m.id, batch);
        ELSIF style = 'batch' THEN
            fn := google_ml._resolve_function(m.input_batch_transform_fn, 'batch_in', m.model_type,
                                              'model_batch_in_transform_fn');
            EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,text[]}') || '::json'
               INTO body USING m.id::text, batch;
        ELSE
            fn := google_ml._resolve_function(in_fn, 'in', m.model_type, 'model_in_transform_fn');
            EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,text}') || '::json'
               INTO body USING m.id::text, batch[1];
        END IF;
        requests := requests || google_ml._request(
            m, google_ml._headers_for_call(m, batch[1], NULL), body::jsonb);
        firsts := firsts || first;
        lasts := lasts || last;
        IF style IN ('vertex', 'openai') AND store_kind IS NOT NULL THEN
            -- A stream per chunk of requests: one invoke_batch is one message to the engine,
            -- which its callback endpoint bounds at 64 MB (proxy/callback.py; about 25,000
            -- texts of 2 KB, with the JSON around them), and one jsonb, bounded at 256 MB.
            -- Past either the warm-up would fail and every row make its own call. The rows
            -- wait on any of the streams.
            chunk := chunk + pg_catalog.octet_length(body::text);
            IF chunk >= coalesce(pg_catalog.current_setting(
                   'google_ml_integration.emulator_warmup_chunk_bytes', true)::bigint,
                   16777216) THEN  -- 16 MB
                PERFORM google_ml._warm_stream(store_kind, store_model_id, items, requests,
                                               style || '_embeddings', firsts, lasts);
                requests := '{}';
                firsts := '{}';
                lasts := '{}';
                chunk := 0;
            END IF;
        END IF;
    END LOOP;

    IF style IN ('vertex', 'openai') AND store_kind IS NOT NULL THEN
        -- The warm-up: each batch stored as soon as it is answered, while the others are in
        -- flight (_warm_stream).
        IF pg_catalog.cardinality(requests) > 0 THEN
            PERFORM google_ml._warm_stream(store_kind, store_model_id, items, requests,
                                           style || '_embeddings', firsts, lasts);
        END IF;
        RETURN NULL;
    ELSIF style IN ('vertex', 'openai') THEN
        -- Fast path: the engine applies what the built-in output transforms do and
        -- answers one real[] literal per text (docs/internals.md, "extract").
        -- The lines in order, an empty one (a text not answered) as NULL: string_to_array's
        -- null_string, without unnesting and sorting 10,000 literals to rebuild the array.
        RETURN pg_catalog.string_to_array(
            google_ml._call_engine_text(jsonb_build_object(
                'op', 'invoke_batch', 'requests', pg_catalog.to_jsonb(requests),
                'extract', style || '_embeddings')),
            E'\n', '');
    END IF;

    answers := google_ml._call_engine_text(
        jsonb_build_object('op', 'invoke_batch', 'requests', pg_catalog.to_jsonb(requests)))::json;

    FOR answer, b IN SELECT e.a, e.i - 1 FROM pg_catalog.json_array_elements(answers)
                                          WITH ORDINALITY AS e (a, i) LOOP
        response := answer -> 'ok';
        CONTINUE WHEN response IS NULL;
        base := b * size;
        IF style = 'batch' THEN
            fn := google_ml._resolve_function(m.output_batch_transform_fn, 'batch_out',
                                              m.model_type, 'model_batch_out_transform_fn');
            EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,json}')
               INTO matrix USING m.id::text, response;
            FOR i IN 1 .. least(size, n - base, coalesce(array_length(matrix, 1), 0)) LOOP
                results[base + i] := ARRAY(SELECT unnest(matrix[i:i]))::text;
            END LOOP;
        ELSE
            fn := google_ml._resolve_function(out_fn, 'out', m.model_type, 'model_out_transform_fn');
            EXECUTE 'SELECT (' || google_ml._call_expression(fn, '{text,json}') || ')::text'
               INTO one USING m.id::text, response;
            results[base + 1] := one;
        END IF;
    END LOOP;
    RETURN google_ml._warm_result(store_kind, store_model_id, items, results);
END;
$$;


CREATE FUNCTION google_ml._warm(kind text, model_id text, items text[])
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    m        google_ml.models;
    results  text[];
BEGIN
    IF items IS NULL OR pg_catalog.cardinality(items) = 0
       OR NOT coalesce(google_ml._parse_bool(
              pg_catalog.current_setting('google_ml_integration.emulator_warmup', true)), true)
       OR NOT google_ml._flag('enable_model_support') THEN
        RETURN true;
    END IF;
    -- Each distinct item once, in the order the rows bring them (the statement's scan reads
    -- them in that order too: a pipelined warm-up's batches come as its rows need them).
    items := ARRAY(SELECT u.i FROM pg_catalog.unnest(items) WITH ORDINALITY AS u (i, n)
                    WHERE u.i IS NOT NULL GROUP BY u.i ORDER BY pg_catalog.min(u.n));
    BEGIN
        m := google_ml._model_for_warm(kind, model_id);
        IF m.id IS NULL THEN
            RETURN true;
        END IF;
        IF kind = 'embedding' THEN
            -- It stores the answers itself: they are never a plpgsql variable here (whose
            -- assignment would copy them), and built-in batches are stored as they arrive.
            PERFORM google_ml._warm_embeddings(m, items, kind, model_id);
        ELSE
            results := google_ml._warm_llm(kind, m, items);
            IF results IS NOT NULL THEN
                PERFORM google_ml._warm_store(kind, model_id, items, results);
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- The per-row calls will meet the same problem and report it themselves. The emulator
        -- counts it, by SQLSTATE alone (metrics: warmup_fallbacks_total; its log says so): a
        -- warm-up that fails on its own bounds shows otherwise only as slowness.
        BEGIN
            PERFORM google_ml._call_engine_text(jsonb_build_object(
                'op', 'warmup_fell_back', 'sqlstate', SQLSTATE));
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END;
    RETURN true;
END;
$$;


-- _warm_store stays executable by PUBLIC: _warm runs as the caller (the transforms and header
-- functions are the caller's), so revoking it would silently turn the warm-up off for every
-- non-superuser. A caller can only write entries keyed by its own backend and its own current
-- statement, which only that statement's calls read.
GRANT EXECUTE ON FUNCTION google_ml._warm_store(text, text, text[], text[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION google_ml._warm_add(text, text, text[], text[]) TO PUBLIC;
-- _warm_stream (the caller's) stores streamed embedding batches with it.
GRANT EXECUTE ON FUNCTION google_ml._warm_add_embeddings(text, text[], text) TO PUBLIC;
-- Only _warm_embedding (as the extension's owner) waits on the engine's streams.
REVOKE ALL ON FUNCTION google_ml._warm_wait(text, text, text) FROM PUBLIC;
