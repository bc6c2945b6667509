-- google_ml_integration 1.5.7 -> 1.5.8 (emulator): multimodal embeddings, the preview
-- functions ai.summarize and ai.analyze_sentiment, model calls that a cancel interrupts, and
-- warm-up batches within the providers' token limits.
--
-- Multimodal embeddings:
--   ai.text_embedding(model_id, content)            -> predictions[0].textEmbedding
--   ai.image_embedding(model_id, image, mimetype)   -> predictions[0].imageEmbedding
--   ai.video_embedding(model_id, video)             -> predictions[0].videoEmbeddings[0].embedding
--
-- One Vertex AI :predict request per call, {"instances":[{"text"|"image"|"video": ...}]}, to a
-- registered multimodal_embedding model or to a Vertex AI model named directly
-- (multimodalembedding@001). An image is a Cloud Storage URI (gs://...) or base64 bytes.

\echo Use "ALTER EXTENSION google_ml_integration UPDATE" to load this file. \quit

-- The model a multimodal call names: registered, or a Vertex AI model by name or path.
CREATE FUNCTION google_ml._multimodal_model(model_id text, fn text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._model_for_call(model_id);
BEGIN
    IF m.id IS NULL THEN
        m := google_ml._vertex_model(model_id, 'multimodal_embedding');
    END IF;
    IF m.id IS NULL THEN
        m := google_ml._registered_model(model_id);  -- raises 42704 naming it
    END IF;
    IF m.model_type <> 'multimodal_embedding' THEN
        RAISE EXCEPTION 'model "%" is a % model; % needs a multimodal_embedding model',
                        model_id, m.model_type, fn
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use multimodalembedding@001, or register a model with model_type => ''multimodal_embedding''.';
    END IF;
    IF m.provider <> 'google' THEN
        RAISE EXCEPTION 'model "%": % is available for Vertex AI (google) models only', model_id, fn
            USING ERRCODE = 'feature_not_supported';
    END IF;
    RETURN m;
END;
$$;

-- One instance to the model; the embedding found at path in its first prediction.
CREATE FUNCTION google_ml._multimodal_embed(
    m google_ml.models, instance jsonb, path text[], input_text text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    body      jsonb := jsonb_build_object('instances', jsonb_build_array(instance));
    response  jsonb;
    v         jsonb;
BEGIN
    response := google_ml._invoke(m, google_ml._headers_for_call(m, input_text, NULL), body);
    v := response #> path;
    IF v IS NULL OR jsonb_typeof(v) <> 'array' THEN
        PERFORM google_ml._unexpected_response(
            m.id, pg_catalog.array_to_string(path, '.'), response::json);
    END IF;
    RETURN ARRAY(SELECT x::real FROM jsonb_array_elements_text(v) AS x);
END;
$$;

CREATE FUNCTION ai.text_embedding(model_id text, content text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
    PERFORM google_ml._require_model_support();
    IF content IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN google_ml._multimodal_embed(
        google_ml._multimodal_model(model_id, 'ai.text_embedding'),
        jsonb_build_object('text', content), '{predictions,0,textEmbedding}', content);
END;
$$;

CREATE FUNCTION ai.image_embedding(model_id text, image text, mimetype text DEFAULT NULL)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m       google_ml.models;
    source  jsonb;
BEGIN
    PERFORM google_ml._require_model_support();
    IF image IS NULL THEN
        RETURN NULL;
    END IF;
    m := google_ml._multimodal_model(model_id, 'ai.image_embedding');
    IF image LIKE 'gs://%' THEN
        source := jsonb_build_object('gcsUri', image);
    ELSE
        BEGIN
            IF pg_catalog.length(pg_catalog.decode(image, 'base64')) = 0 THEN
                RAISE invalid_parameter_value;
            END IF;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'ai.image_embedding: image must be a Cloud Storage URI (gs://bucket/object) or base64-encoded image bytes'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'It starts with: ' || pg_catalog.left(image, 40);
        END;
        source := jsonb_build_object('bytesBase64Encoded', image);
    END IF;
    IF mimetype IS NOT NULL THEN
        source := source || jsonb_build_object('mimeType', mimetype);
    END IF;
    RETURN google_ml._multimodal_embed(
        m, jsonb_build_object('image', source), '{predictions,0,imageEmbedding}', NULL);
END;
$$;

CREATE FUNCTION ai.video_embedding(model_id text, video text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    PERFORM google_ml._require_model_support();
    IF video IS NULL THEN
        RETURN NULL;
    END IF;
    m := google_ml._multimodal_model(model_id, 'ai.video_embedding');
    IF video NOT LIKE 'gs://%' THEN
        RAISE EXCEPTION 'ai.video_embedding: video must be a Cloud Storage URI (gs://bucket/object)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Vertex AI answers one embedding per video segment; this is the first segment's.
    RETURN google_ml._multimodal_embed(
        m, jsonb_build_object('video', jsonb_build_object('gcsUri', video)),
        '{predictions,0,videoEmbeddings,0,embedding}', NULL);
END;
$$;

COMMENT ON FUNCTION ai.text_embedding(text, text) IS
    'Embedding of a text by a multimodal embedding model (multimodalembedding@001).';
COMMENT ON FUNCTION ai.image_embedding(text, text, text) IS
    'Embedding of an image (gs:// URI or base64 bytes) by a multimodal embedding model.';
COMMENT ON FUNCTION ai.video_embedding(text, text) IS
    'Embedding of the first segment of a video (gs:// URI) by a multimodal embedding model.';


-- ---------------------------------------------------------------------------
-- Preview functions (flag enable_preview_ai_functions; P0001 when off, as the AI query engine):
--   ai.summarize(prompt, model_id)          -> text, a short summary of the text
--   ai.analyze_sentiment(prompt, model_id)  -> 'positive', 'negative' or 'neutral'
-- One :generateContent request per call to an llm model (default gemini-2.5-flash-lite). The task
-- is the system instruction; the user turn is the text alone. Sentiment asks for an enum answer.

-- The llm model an AI function calls (1.5.7's, with a message that names every such function).
CREATE OR REPLACE FUNCTION google_ml._llm_model(model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._registered_model(coalesce(model_id, google_ml._ai_default_model()));
BEGIN
    IF m.model_type <> 'llm' THEN
        RAISE EXCEPTION 'model "%" is a % model; the AI functions (ai.if, ai.generate, ai.rank(prompt), ai.summarize, ai.analyze_sentiment) need an llm model',
                        m.id, m.model_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Register one with model_type => ''llm'' (Gemini models get the gemini_llm transforms).';
    END IF;
    RETURN m;
END;
$$;

CREATE FUNCTION google_ml._ai_preview_call(model_id text, prompt text, instruction text,
                                           generation_config jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m     google_ml.models;
    body  jsonb;
BEGIN
    PERFORM google_ml._require_model_support();
    m := google_ml._llm_model(model_id);
    body := google_ml._ai_body(m, prompt, generation_config, instruction);
    RETURN google_ml._ai_text(m,
        google_ml._invoke(m, google_ml._headers_for_call(m, prompt, NULL), body)::json);
END;
$$;

CREATE FUNCTION google_ml.summarize(prompt text, model_id varchar DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    PERFORM google_ml._require_flag('enable_preview_ai_functions', 'ai.summarize (a preview function)');
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN google_ml._ai_preview_call(model_id, prompt,
        'Summarize the text of the user message in at most three sentences. '
        'Reply with the summary only.', NULL);
END;
$$;

CREATE FUNCTION google_ml.analyze_sentiment(prompt text, model_id varchar DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    answer text;
BEGIN
    PERFORM google_ml._require_flag('enable_preview_ai_functions', 'ai.analyze_sentiment (a preview function)');
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    answer := lower(btrim(btrim(google_ml._ai_preview_call(model_id, prompt,
        'Classify the sentiment of the text of the user message as positive, negative or neutral.',
        '{"responseMimeType": "text/x.enum",
          "responseSchema": {"type": "STRING", "enum": ["positive", "negative", "neutral"]}}'::jsonb)),
        '"'' .'));
    -- An answer outside the three labels is unclear: neutral, as ai.if answers false.
    RETURN CASE WHEN answer IN ('positive', 'negative', 'neutral') THEN answer ELSE 'neutral' END;
END;
$$;

CREATE FUNCTION ai.summarize(prompt text, model_id varchar DEFAULT NULL)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.summarize(prompt, model_id) $$;
CREATE FUNCTION ai.analyze_sentiment(prompt text, model_id varchar DEFAULT NULL)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.analyze_sentiment(prompt, model_id) $$;

-- ---------------------------------------------------------------------------
-- Interruptible model calls. dblink's synchronous call cannot be interrupted: on a cancel it
-- drains the connection, so the statement ended only when the model answered. Its asynchronous
-- pair (send, then get the result) waits interruptibly on PostgreSQL 17 and later, so a
-- pg_cancel_backend() from any session, a client's cancel and statement_timeout all end the
-- statement at once. The connection, with the call still pending on it, is then closed, and the
-- engine abandons the call when it sees it close. After any other error the connection is
-- drained (its end-of-results) so the next call finds it idle.

CREATE FUNCTION google_ml._dblink_send_query(text, text)
RETURNS int
AS '$libdir/dblink', 'dblink_send_query'
LANGUAGE C STRICT;

CREATE FUNCTION google_ml._dblink_get_result(text)
RETURNS SETOF record
AS '$libdir/dblink', 'dblink_get_result'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION google_ml._dblink_send_query(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink_get_result(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION google_ml._call_engine_text(request jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    connection_name CONSTANT text := 'alloydb_ai_engine';
    worker_connection CONSTANT text := 'alloydb_ai_engine_worker';
    open_connections text[] := coalesce(google_ml._dblink_get_connections(), '{}');
    response text;
    timeout_ms double precision;
    target text;
    retried boolean := false;
BEGIN
    request := google_ml._authorized_request(request);
    -- On PostgreSQL 16 and older the wait cannot be interrupted: the engine keeps the
    -- statement_timeout too, answering 57014 when this much time is left.
    timeout_ms := extract(epoch FROM pg_catalog.current_setting('statement_timeout')::interval) * 1000;
    IF timeout_ms > 0 THEN
        request := request || jsonb_build_object('deadline_ms', greatest(0, timeout_ms
            - extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000));
    END IF;
    target := CASE
        WHEN worker_connection = ANY (open_connections) THEN worker_connection
        WHEN connection_name = ANY (open_connections) THEN connection_name
        -- First call of this process: a new connection, named for what the process is.
        ELSE google_ml._engine_connect(connection_name)
    END;
    IF target = worker_connection THEN
        -- A parallel worker: no subtransactions allowed (so no retry, no clean-up), and it is
        -- short-lived; the synchronous call.
        SELECT t.r INTO response
          FROM google_ml._dblink(worker_connection, request::text) AS t (r text);
    ELSE
        LOOP
            BEGIN
                IF google_ml._dblink_send_query(connection_name, request::text) <> 1 THEN
                    RAISE EXCEPTION 'the connection to the emulator engine is lost'
                        USING ERRCODE = 'connection_failure';
                END IF;
                SELECT t.r INTO response
                  FROM google_ml._dblink_get_result(connection_name) AS t (r text);
                PERFORM FROM google_ml._dblink_get_result(connection_name) AS t (r text);
                EXIT;
            EXCEPTION
                WHEN query_canceled THEN
                    -- Cancelled or timed out while the engine works: close the connection
                    -- (the engine abandons the call), report the cancel.
                    PERFORM google_ml._dblink_disconnect(connection_name);
                    RAISE;
                WHEN connection_failure THEN
                    -- 08006: the connection broke (engine restarted, proxy gone). Once more.
                    IF retried THEN
                        RAISE;
                    END IF;
                    retried := true;
                    PERFORM google_ml._engine_connect(connection_name);
                WHEN OTHERS THEN
                    -- The engine's error for this call: read the end of its results.
                    PERFORM FROM google_ml._dblink_get_result(connection_name) AS t (r text);
                    RAISE;
            END;
        END LOOP;
    END IF;
    IF response IS NULL THEN
        RAISE EXCEPTION 'the emulator engine returned no response for model "%"',
                        request ->> 'model_id'
            USING ERRCODE = 'protocol_violation';
    END IF;
    RETURN response;
END;
$$;

-- ---------------------------------------------------------------------------
-- Warm-up batches that fit the providers' per-request token limits (Vertex AI text embeddings:
-- 20,000 tokens; OpenAI: 300,000), not only their text counts. A batch of 250 long documents
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

CREATE OR REPLACE FUNCTION google_ml._warm_embeddings(m google_ml.models, items text[])
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
    requests    jsonb := '[]'::jsonb;
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
BEGIN
    IF m.model_type NOT IN ('text_embedding', 'multimodal_embedding') THEN
        RETURN results;
    END IF;
    IF in_fn = 'google_ml.vertexai_text_embedding_input_transform'
       AND out_fn = 'google_ml.vertexai_text_embedding_output_transform'
       AND coalesce(m.input_batch_transform_fn, 'google_ml.vertexai_text_embedding_batch_input_transform')
           = 'google_ml.vertexai_text_embedding_batch_input_transform'
       AND coalesce(m.output_batch_transform_fn, 'google_ml.vertexai_text_embedding_batch_output_transform')
           = 'google_ml.vertexai_text_embedding_batch_output_transform' THEN
        style := 'vertex'; size := 250;
    ELSIF in_fn = 'google_ml.openai_text_embedding_input_transform'
       AND out_fn = 'google_ml.openai_text_embedding_output_transform'
       AND coalesce(m.input_batch_transform_fn, 'google_ml.openai_text_embedding_batch_input_transform')
           = 'google_ml.openai_text_embedding_batch_input_transform'
       AND coalesce(m.output_batch_transform_fn, 'google_ml.openai_text_embedding_batch_output_transform')
           = 'google_ml.openai_text_embedding_batch_output_transform' THEN
        style := 'openai'; size := 2048;
    ELSIF m.input_batch_transform_fn IS NOT NULL AND m.output_batch_transform_fn IS NOT NULL THEN
        style := 'batch';
        size := CASE m.provider WHEN 'open_ai' THEN 2048 WHEN 'google' THEN 250 ELSE 100 END;
    ELSE
        style := 'single'; size := 1;
    END IF;

    FOR first, last IN
        SELECT b.first, b.last FROM google_ml._batch_bounds(items, size,
            CASE style WHEN 'vertex' THEN 20000 WHEN 'openai' THEN 300000 END) AS b
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
        requests := requests || jsonb_build_array(google_ml._request(
            m, google_ml._headers_for_call(m, batch[1], NULL), body::jsonb));
    END LOOP;

    IF style IN ('vertex', 'openai') THEN
        -- Fast path: the engine applies what the built-in output transforms do and
        -- answers one real[] literal per text (docs/internals.md, "extract").
        RETURN ARRAY(
            SELECT nullif(line, '')
              FROM pg_catalog.unnest(pg_catalog.string_to_array(
                       google_ml._call_engine_text(jsonb_build_object(
                           'op', 'invoke_batch', 'requests', requests,
                           'extract', style || '_embeddings')), E'\n'))
                   WITH ORDINALITY AS u (line, i)
             ORDER BY i);
    END IF;

    answers := google_ml._call_engine_text(
        jsonb_build_object('op', 'invoke_batch', 'requests', requests))::json;

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
    RETURN results;
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
