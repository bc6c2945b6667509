-- google_ml_integration 1.5.4 -> 1.5.7 (emulator): the AI query engine (ai.if, ai.generate,
-- ai.rank in their scalar, array and cursor forms, reranking) and auto-embeddings
-- (ai.initialize_embeddings, ai.refresh_embeddings, ai.drop_embedding_config,
-- ai.embedding_progress_view). docs/ai-functions.md describes what is here and why.
--
-- Gemini requests. A scalar call sends one :generateContent request built by the model's
-- input transform (google_ml.gemini_llm_input_transform for Gemini models):
--   ai.if        generationConfig {"responseMimeType":"text/x.enum",
--                                  "responseSchema":{"type":"STRING","enum":["true","false"]}}
--   ai.rank      generationConfig {"responseMimeType":"application/json",
--                                  "responseSchema":{"type":"NUMBER"}}
--   ai.generate  no generationConfig: the answer is the text.
-- A batch (an array call, a cursor call, or scalar calls batched by the warm-up) of n prompts
-- is ONE request: its only user part is the JSON array of the n prompts, a system instruction
-- asks for one answer per prompt in order, and generationConfig asks for
--   {"type":"ARRAY","items":<the scalar schema>,"minItems":n,"maxItems":n}
-- (items {"type":"STRING"} for ai.generate). All batches of a call go to the engine in one
-- invoke_batch, so they are in flight together.

\echo Use "ALTER EXTENSION google_ml_integration UPDATE" to load this file. \quit

-- ===========================================================================
-- 1. Shared helpers of the AI query engine
-- ===========================================================================

-- P0001 unless google_ml_integration.<flag> is on (AlloyDB raises P0001 here).
CREATE FUNCTION google_ml._require_flag(flag text, what text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    IF NOT google_ml._flag(flag) THEN
        RAISE EXCEPTION '% is disabled: google_ml_integration.% is off', what, flag
            USING ERRCODE = 'raise_exception',
                  HINT = format('SET google_ml_integration.%s = on; (or ALTER DATABASE/ROLE ... SET, '
                                'or ALTER SYSTEM SET ... and SELECT pg_reload_conf();)', flag);
    END IF;
END;
$$;

CREATE FUNCTION google_ml._require_ai_query_engine()
RETURNS void
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT google_ml._require_flag('enable_ai_query_engine', 'the AI query engine (ai.if, ai.rank, ai.generate)')
$$;

-- The default model of ai.if / ai.generate / ai.rank.
CREATE FUNCTION google_ml._ai_default_model()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'gemini-2.5-flash-lite'::text $$;

-- The llm model an AI function calls: registered, of type llm; 42704 / 22023 otherwise.
CREATE FUNCTION google_ml._llm_model(model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._registered_model(coalesce(model_id, google_ml._ai_default_model()));
BEGIN
    IF m.model_type <> 'llm' THEN
        RAISE EXCEPTION 'model "%" is a % model; ai.if, ai.generate and ai.rank(prompt) need an llm model',
                        m.id, m.model_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Register one with model_type => ''llm'' (Gemini models get the gemini_llm transforms).';
    END IF;
    RETURN m;
END;
$$;

-- The response schema of one answer: if -> enum, rank -> NUMBER, generate -> STRING.
CREATE FUNCTION google_ml._ai_item_schema(kind text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE kind
        WHEN 'if' THEN '{"type": "STRING", "enum": ["true", "false"]}'::jsonb
        WHEN 'rank' THEN '{"type": "NUMBER"}'::jsonb
        ELSE '{"type": "STRING"}'::jsonb
    END
$$;

-- generationConfig of a scalar call (n NULL) or of a batch of n prompts.
CREATE FUNCTION google_ml._ai_generation_config(kind text, n int)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN n IS NOT NULL THEN jsonb_build_object(
            'responseMimeType', 'application/json',
            'responseSchema', jsonb_build_object(
                'type', 'ARRAY', 'items', google_ml._ai_item_schema(kind),
                'minItems', n, 'maxItems', n))
        WHEN kind = 'if' THEN jsonb_build_object(
            'responseMimeType', 'text/x.enum', 'responseSchema', google_ml._ai_item_schema(kind))
        WHEN kind = 'rank' THEN jsonb_build_object(
            'responseMimeType', 'application/json', 'responseSchema', google_ml._ai_item_schema(kind))
    END
$$;

-- The system instruction of a batch of n prompts.
CREATE FUNCTION google_ml._ai_batch_instruction(kind text, n int)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT format('The user message is a JSON array of %s prompts. Answer each prompt on its own, '
                  'as if it were the only one, and reply with a JSON array of exactly %s answers '
                  'in the same order (answer i answers prompt i). %s', n, n,
                  CASE kind
                      WHEN 'if' THEN 'Each answer is "true" or "false".'
                      WHEN 'rank' THEN 'Each answer is a number: the score the prompt asks for.'
                      ELSE 'Each answer is the text the prompt asks for.'
                  END)
$$;

-- The request body for a prompt text, through the model's input transform (Gemini's when the
-- model has none). A user transform is called with as many of (model_id, input_text,
-- generation_config, system_instruction) as it declares.
CREATE FUNCTION google_ml._ai_body(m google_ml.models, input_text text, generation_config jsonb,
                                   system_instruction text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    fn    regprocedure;
    n     int;
    body  json;
BEGIN
    IF coalesce(m.input_transform_fn, 'google_ml.gemini_llm_input_transform')
       = 'google_ml.gemini_llm_input_transform' THEN
        RETURN google_ml.gemini_llm_input_transform(m.id, input_text, generation_config::json,
                                                    system_instruction)::jsonb;
    END IF;
    fn := google_ml._resolve_function(m.input_transform_fn, 'in', m.model_type, 'model_in_transform_fn');
    SELECT p.pronargs INTO n FROM pg_catalog.pg_proc AS p WHERE p.oid = fn;
    EXECUTE 'SELECT ' || google_ml._call_expression(fn, ('{text,text,json,text}'::regtype[])[1:n])
            || '::json'
       INTO body USING m.id::text, input_text, generation_config::json, system_instruction;
    RETURN body::jsonb;
END;
$$;

-- The answer text of a response, through the model's output transform.
CREATE FUNCTION google_ml._ai_text(m google_ml.models, response json)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    fn      regprocedure;
    result  text;
BEGIN
    IF coalesce(m.output_transform_fn, 'google_ml.gemini_llm_output_transform')
       = 'google_ml.gemini_llm_output_transform' THEN
        RETURN google_ml.gemini_llm_output_transform(m.id, response);
    END IF;
    fn := google_ml._resolve_function(m.output_transform_fn, 'out', m.model_type, 'model_out_transform_fn');
    EXECUTE 'SELECT (' || google_ml._call_expression(fn, '{text,json}') || ')::text'
       INTO result USING m.id::text, response;
    RETURN result;
END;
$$;

-- One answer, normalised to the text form of its SQL value: 'true'/'false' for if, a real for
-- rank, the text for generate; NULL when the answer is unclear. Accepts a bare word, a JSON
-- string, a JSON boolean or number.
CREATE FUNCTION google_ml._ai_normalize(kind text, answer text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    word text;
BEGIN
    IF answer IS NULL OR kind = 'generate' THEN
        RETURN answer;
    END IF;
    word := lower(btrim(btrim(answer), '"'' .'));
    IF kind = 'if' THEN
        RETURN CASE WHEN word IN ('true', 'yes') THEN 'true'
                    WHEN word IN ('false', 'no') THEN 'false' END;
    END IF;
    IF word ~ '^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?$' THEN
        RETURN word::real::text;
    END IF;
    RETURN NULL;
END;
$$;

-- The answers of a JSON array answer (a batch), each normalised; NULL if the text is not a
-- JSON array of n elements (a ```json fence around it is tolerated).
CREATE FUNCTION google_ml._ai_parse_batch(kind text, answer text, n int)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    doc     jsonb;
    result  text[];
BEGIN
    answer := regexp_replace(btrim(answer), '^```[a-z]*\s*|\s*```$', '', 'g');
    BEGIN
        doc := answer::jsonb;
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END;
    IF jsonb_typeof(doc) <> 'array' OR jsonb_array_length(doc) <> n THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(google_ml._ai_normalize(kind,
               CASE jsonb_typeof(e) WHEN 'string' THEN e #>> '{}'
                                    WHEN 'null' THEN NULL ELSE e::text END) ORDER BY i)
      INTO result
      FROM jsonb_array_elements(doc) WITH ORDINALITY AS x (e, i);
    RETURN result;
END;
$$;

-- Re-raises an engine error item ({"sqlstate", "message", "detail"}) of an invoke_batch.
CREATE FUNCTION google_ml._raise_engine_error(model_id text, error jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION '%', coalesce(error ->> 'message', format('model "%s" failed', model_id))
        USING ERRCODE = coalesce(error ->> 'sqlstate', '38000'),
              DETAIL = coalesce(error ->> 'detail', '');
END;
$$;

-- One scalar call: the normalised answer text (NULL when unclear).
CREATE FUNCTION google_ml._ai_scalar(kind text, model_id text, prompt text)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m     google_ml.models;
    body  jsonb;
BEGIN
    PERFORM google_ml._require_model_support();
    m := google_ml._llm_model(model_id);
    body := google_ml._ai_body(m, prompt, google_ml._ai_generation_config(kind, NULL), NULL);
    RETURN google_ml._ai_normalize(kind, google_ml._ai_text(m,
        google_ml._invoke(m, google_ml._headers_for_call(m, prompt, NULL), body)::json));
END;
$$;

-- Batched answers for items (no NULLs), `size` prompts per :generateContent request, all
-- requests in one invoke_batch. Results in order; NULL where the model's answer for a batch
-- was not a JSON array of the right length. A failed request raises its error when
-- `strict`, else leaves its items NULL (the warm-up: the per-row calls will report it).
CREATE FUNCTION google_ml._ai_batch(kind text, m google_ml.models, items text[], size int,
                                    strict boolean)
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    n         int := coalesce(cardinality(items), 0);
    requests  jsonb := '[]';
    batch     text[];
    answers   json;
    answer    json;
    b         int;
    base      int;
    parsed    text[];
    results   text[] := array_fill(NULL::text, ARRAY[n]);
BEGIN
    IF n = 0 THEN
        RETURN '{}'::text[];
    END IF;
    FOR start IN 1 .. n BY size LOOP
        batch := items[start : least(start + size - 1, n)];
        requests := requests || jsonb_build_array(google_ml._request(
            m, google_ml._headers_for_call(m, batch[1], NULL),
            google_ml._ai_body(m, to_jsonb(batch)::text,
                               google_ml._ai_generation_config(kind, cardinality(batch)),
                               google_ml._ai_batch_instruction(kind, cardinality(batch)))));
    END LOOP;
    answers := google_ml._call_engine_text(
        jsonb_build_object('op', 'invoke_batch', 'requests', requests))::json;
    FOR answer, b IN SELECT e.a, e.i - 1 FROM json_array_elements(answers) WITH ORDINALITY AS e (a, i) LOOP
        base := b * size;
        IF answer -> 'ok' IS NULL THEN
            IF strict THEN
                PERFORM google_ml._raise_engine_error(m.id, (answer -> 'error')::jsonb);
            END IF;
            CONTINUE;
        END IF;
        parsed := google_ml._ai_parse_batch(kind, google_ml._ai_text(m, answer -> 'ok'),
                                            least(size, n - base));
        IF parsed IS NULL AND strict THEN
            RAISE EXCEPTION 'model "%" did not answer a batch of % prompts with a JSON array of % answers',
                            m.id, least(size, n - base), least(size, n - base)
                USING ERRCODE = 'data_exception',
                      DETAIL = left(google_ml._ai_text(m, answer -> 'ok'), 500),
                      HINT = 'Try a smaller batch_size, or the scalar form.';
        END IF;
        FOR i IN 1 .. coalesce(cardinality(parsed), 0) LOOP
            results[base + i] := parsed[i];
        END LOOP;
    END LOOP;
    RETURN results;
END;
$$;

-- An array call: answers for prompts (NULL prompts answer NULL), in batches of batch_size.
CREATE FUNCTION google_ml._ai_array(kind text, prompts text[], batch_size int, model_id text)
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m        google_ml.models;
    present  text[];
    answers  text[];
    results  text[];
    j        int := 0;
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    IF prompts IS NULL THEN
        RETURN NULL;
    END IF;
    IF batch_size IS NOT NULL AND batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1 (got %)', batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM google_ml._require_model_support();
    m := google_ml._llm_model(model_id);
    present := ARRAY(SELECT p FROM unnest(prompts) AS u (p) WHERE p IS NOT NULL);
    answers := google_ml._ai_batch(kind, m, present, coalesce(batch_size, 10), true);
    results := '{}';
    FOR i IN 1 .. coalesce(cardinality(prompts), 0) LOOP
        IF prompts[i] IS NULL THEN
            results := results || NULL::text;
        ELSE
            j := j + 1;
            results := results || answers[j];
        END IF;
    END LOOP;
    RETURN results;
END;
$$;

-- A cursor call: reads input_cursor to the end (the first column of each row is the item),
-- answers prompt || item for each row in batches, and returns a new cursor over
-- (input text, result <type>) in the input's order.
CREATE FUNCTION google_ml._ai_cursor_answers(kind text, prompt text, input_cursor refcursor,
                                             batch_size int, model_id text,
                                             OUT inputs text[], OUT answers text[])
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    r        record;
    item     text;
    prompts  text[] := '{}';
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    IF input_cursor IS NULL THEN
        RAISE EXCEPTION 'input_cursor must name an open cursor'
            USING ERRCODE = 'invalid_cursor_name';
    END IF;
    inputs := '{}';
    LOOP
        FETCH input_cursor INTO r;
        EXIT WHEN NOT FOUND;
        SELECT j.value INTO item FROM json_each_text(row_to_json(r)) AS j LIMIT 1;
        inputs := inputs || item;
        prompts := prompts || (coalesce(prompt, '') || item);
    END LOOP;
    answers := google_ml._ai_array(kind, prompts, batch_size, model_id);
END;
$$;


-- ===========================================================================
-- 2. ai.if, ai.generate, ai.rank and their google_ml twins
-- ===========================================================================
-- Scalar forms look in the warm-up cache first (the proxy batches per-row calls, see
-- google_ml._warm and _warm_llm below), after the flag check so a cached answer never
-- bypasses it.

CREATE FUNCTION google_ml."if"(prompt text, model_id varchar DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    warmed text;
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    warmed := google_ml._warm_lookup('if', model_id, prompt);
    IF warmed IS NOT NULL THEN
        RETURN warmed::boolean;
    END IF;
    RETURN coalesce(google_ml._ai_scalar('if', model_id, prompt)::boolean, false);
END;
$$;

CREATE FUNCTION google_ml.generate(prompt text, model_id varchar DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    warmed text;
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    warmed := google_ml._warm_lookup('generate', model_id, prompt);
    IF warmed IS NOT NULL THEN
        RETURN warmed;
    END IF;
    RETURN google_ml._ai_scalar('generate', model_id, prompt);
END;
$$;

CREATE FUNCTION google_ml.rank(prompt text, model_id varchar DEFAULT NULL)
RETURNS real
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    warmed text;
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    warmed := google_ml._warm_lookup('rank', model_id, prompt);
    IF warmed IS NOT NULL THEN
        RETURN warmed::real;
    END IF;
    RETURN google_ml._ai_scalar('rank', model_id, prompt)::real;
END;
$$;

-- Array forms: one answer per prompt, in order; unclear ai.if answers are false.
CREATE FUNCTION google_ml."if"(prompts text[], batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS boolean[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ARRAY(SELECT CASE WHEN p IS NULL THEN NULL ELSE coalesce(a::boolean, false) END
                   FROM unnest(prompts, google_ml._ai_array('if', prompts, batch_size, model_id))
                        WITH ORDINALITY AS u (p, a, i)
                  ORDER BY i)
$$;

CREATE FUNCTION google_ml.generate(prompts text[], batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT google_ml._ai_array('generate', prompts, batch_size, model_id)
$$;

CREATE FUNCTION google_ml.rank(prompts text[], batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS real[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT google_ml._ai_array('rank', prompts, batch_size, model_id)::real[]
$$;

-- Cursor forms: a new cursor over (input text, result) for each row of input_cursor.
CREATE FUNCTION google_ml."if"(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                               model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    a       record;
    result  refcursor;
BEGIN
    a := google_ml._ai_cursor_answers('if', prompt, input_cursor, batch_size, model_id);
    OPEN result FOR
        SELECT u.input, coalesce(u.answer::boolean, false) AS result
          FROM unnest(a.inputs, a.answers) WITH ORDINALITY AS u (input, answer, i)
         ORDER BY u.i;
    RETURN result;
END;
$$;

CREATE FUNCTION google_ml.generate(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                                   model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    a       record;
    result  refcursor;
BEGIN
    a := google_ml._ai_cursor_answers('generate', prompt, input_cursor, batch_size, model_id);
    OPEN result FOR
        SELECT u.input, u.answer AS result
          FROM unnest(a.inputs, a.answers) WITH ORDINALITY AS u (input, answer, i)
         ORDER BY u.i;
    RETURN result;
END;
$$;

CREATE FUNCTION google_ml.rank(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                               model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    a       record;
    result  refcursor;
BEGIN
    a := google_ml._ai_cursor_answers('rank', prompt, input_cursor, batch_size, model_id);
    OPEN result FOR
        SELECT u.input, u.answer::real AS result
          FROM unnest(a.inputs, a.answers) WITH ORDINALITY AS u (input, answer, i)
         ORDER BY u.i;
    RETURN result;
END;
$$;

-- Reranking: documents scored against search_string by a reranking model through the Vertex
-- AI ranking API (Discovery Engine :rank), at most 200 records per request; the requests of
-- a call go in one invoke_batch and their records are merged by score. index is the 1-based
-- position of the document in `documents`.
CREATE FUNCTION google_ml.rank(model_id varchar, search_string text, documents text[],
                               top_n int DEFAULT NULL)
RETURNS TABLE (index int, score real)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    per_request  CONSTANT int := 200;
    m            google_ml.models;
    n            int := coalesce(cardinality(documents), 0);
    requests     jsonb := '[]';
    answers      json;
    answer       json;
    body         jsonb;
    records      jsonb;
    scored       jsonb := '[]';
    fn           regprocedure;
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    PERFORM google_ml._require_model_support();
    m := google_ml._registered_model(model_id);
    IF m.model_type <> 'reranking' THEN
        RAISE EXCEPTION 'model "%" is a % model; ai.rank(model_id, search_string, documents) needs a reranking model',
                        m.id, m.model_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'semantic-ranker-default-003 is pre-registered.';
    END IF;
    IF top_n IS NOT NULL AND top_n < 1 THEN
        RAISE EXCEPTION 'top_n must be at least 1 (got %)', top_n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n = 0 OR search_string IS NULL THEN
        RETURN;
    END IF;
    FOR start IN 1 .. n BY per_request LOOP
        SELECT coalesce(jsonb_agg(jsonb_build_object('id', (start + i - 1)::text,
                                                     'content', coalesce(d, '')) ORDER BY i), '[]')
          INTO records
          FROM unnest(documents[start : least(start + per_request - 1, n)]) WITH ORDINALITY AS u (d, i);
        body := jsonb_build_object(
            'model', coalesce(m.qualified_name, m.id),
            'query', search_string,
            'records', records,
            'ignoreRecordDetailsInResponse', true);
        IF top_n IS NOT NULL AND n <= per_request THEN
            body := body || jsonb_build_object('topN', top_n);
        END IF;
        requests := requests || jsonb_build_array(google_ml._request(
            m, google_ml._headers_for_call(m, search_string, body::json), body));
    END LOOP;
    answers := google_ml._call_engine_text(
        jsonb_build_object('op', 'invoke_batch', 'requests', requests))::json;
    FOR answer IN SELECT e FROM json_array_elements(answers) AS e LOOP
        IF answer -> 'ok' IS NULL THEN
            PERFORM google_ml._raise_engine_error(m.id, (answer -> 'error')::jsonb);
        END IF;
        IF coalesce(m.output_transform_fn, 'google_ml.vertexai_reranking_output_transform')
           = 'google_ml.vertexai_reranking_output_transform' THEN
            scored := scored || coalesce((
                SELECT jsonb_agg(jsonb_build_array(t.index, t.score))
                  FROM google_ml.vertexai_reranking_output_transform(m.id, answer -> 'ok') AS t), '[]');
        ELSE
            fn := google_ml._resolve_function(m.output_transform_fn, 'out', m.model_type,
                                              'model_out_transform_fn');
            EXECUTE 'SELECT coalesce(jsonb_agg(jsonb_build_array(t.index, t.score)), ''[]'') FROM '
                    || google_ml._call_expression(fn, '{text,json}') || ' AS t (index int, score real)'
               INTO records USING m.id::text, answer -> 'ok';
            scored := scored || records;
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT (s ->> 0)::int, (s ->> 1)::real
          FROM jsonb_array_elements(scored) AS s
         ORDER BY (s ->> 1)::real DESC, (s ->> 0)::int
         LIMIT top_n;
END;
$$;

-- The ai schema mirrors google_ml (thin SQL wrappers, inlined by the planner).
CREATE FUNCTION ai."if"(prompt text, model_id varchar DEFAULT NULL)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml."if"(prompt, model_id) $$;
CREATE FUNCTION ai.generate(prompt text, model_id varchar DEFAULT NULL)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.generate(prompt, model_id) $$;
CREATE FUNCTION ai.rank(prompt text, model_id varchar DEFAULT NULL)
RETURNS real LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.rank(prompt, model_id) $$;

CREATE FUNCTION ai."if"(prompts text[], batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS boolean[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml."if"(prompts, batch_size, model_id) $$;
CREATE FUNCTION ai.generate(prompts text[], batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.generate(prompts, batch_size, model_id) $$;
CREATE FUNCTION ai.rank(prompts text[], batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS real[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.rank(prompts, batch_size, model_id) $$;

CREATE FUNCTION ai."if"(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                        model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml."if"(prompt, input_cursor, batch_size, model_id) $$;
CREATE FUNCTION ai.generate(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                            model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.generate(prompt, input_cursor, batch_size, model_id) $$;
CREATE FUNCTION ai.rank(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                        model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.rank(prompt, input_cursor, batch_size, model_id) $$;

CREATE FUNCTION ai.rank(model_id varchar, search_string text, documents text[], top_n int DEFAULT NULL)
RETURNS TABLE (index int, score real) LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT * FROM google_ml.rank(model_id, search_string, documents, top_n) $$;


-- ===========================================================================
-- 3. Warm-up of per-row ai.if / ai.generate / ai.rank(prompt) calls
-- ===========================================================================

-- 1.5.4's resolver, plus the default model for the AI functions (the proxy passes NULL when
-- the call names none).
CREATE OR REPLACE FUNCTION google_ml._model_for_warm(kind text, model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    IF kind IN ('if', 'generate', 'rank') THEN
        RETURN google_ml._model_for_call(coalesce(model_id, google_ml._ai_default_model()));
    END IF;
    m := google_ml._model_for_call(model_id);
    IF m.id IS NULL AND kind = 'embedding' THEN
        m := google_ml._vertex_model(model_id, 'text_embedding');
    END IF;
    RETURN m;
END;
$$;

-- Called by google_ml._warm for kinds if / generate / rank: the answers to the distinct
-- prompts of a statement, 10 per :generateContent request, all requests in one
-- invoke_batch; NULL where unknown (a failed request, an unclear answer), so that the per-row
-- call asks on its own and reports what it meets.
CREATE FUNCTION google_ml._warm_llm(kind text, m google_ml.models, items text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF kind NOT IN ('if', 'generate', 'rank') OR m.model_type <> 'llm'
       OR NOT google_ml._flag('enable_ai_query_engine') THEN
        RETURN NULL;
    END IF;
    RETURN google_ml._ai_batch(kind, m, items, 10, false);
END;
$$;


-- ===========================================================================
-- 4. Auto-embeddings
-- ===========================================================================
-- ai.initialize_embeddings fills an embedding column from a content column in batches
-- through the batched engine (google_ml._warm_embeddings). When it is CALLed on its own (not
-- inside a transaction block or a function), it COMMITs after each batch, so the progress in
-- ai.embedding_progress_view is visible to other sessions while it runs and finished batches
-- survive a failure; otherwise it runs in the caller's transaction, all or nothing.
-- 'transactional' mode adds a BEFORE INSERT OR UPDATE OF <content> trigger that embeds the
-- new content in the same transaction.

CREATE TABLE google_ml._embedding_configs (
    relation           oid NOT NULL,
    table_name         text NOT NULL,     -- as the caller named it
    content_column     text NOT NULL,
    embedding_column   text NOT NULL,
    model_id           text NOT NULL,
    batch_size         int NOT NULL,
    refresh_mode       text NOT NULL CHECK (refresh_mode IN ('manual', 'transactional')),
    status             text NOT NULL,     -- initializing, refreshing, completed, failed
    rows_total         bigint NOT NULL DEFAULT 0,
    rows_processed     bigint NOT NULL DEFAULT 0,
    partition_root     text,
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
       CASE WHEN c.status = 'completed' THEN 100::numeric
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

-- Whether the running CALL may COMMIT: a CALL (or DO) sent on its own, outside a transaction
-- block. SQL cannot ask PostgreSQL whether the procedure runs in a non-atomic context, so this
-- reads the signs of one: the transaction started with this statement, and the statement the
-- client sent is a single CALL or DO.
CREATE FUNCTION google_ml._may_commit()
RETURNS boolean
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
    SELECT pg_catalog.now() = pg_catalog.statement_timestamp()
       AND coalesce(pg_catalog.current_query() ~* '^\s*(call\s[^;]*;?\s*$|do\s)', false)
$$;

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

-- Embeds every row of c's table with content, batch by batch (see the section's plan).
CREATE PROCEDURE google_ml._embedding_fill(INOUT c google_ml._embedding_configs)
LANGUAGE plpgsql
AS $$
DECLARE
    may_commit  boolean := google_ml._may_commit();
    m           google_ml.models := google_ml._embedding_model(c.model_id);
    content_col text := c.content_column;
    emb_col     text := c.embedding_column;
    emb_type    text;
    leaf        regclass;
    ids         tid[];
    chunk       tid[];
    texts       text[];
    vectors     text[];
    failed      text;
    failed_state text;
    failed_detail text;
BEGIN
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO emb_type
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = c.relation AND a.attname = emb_col;
    EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NOT NULL', c.relation::regclass, content_col)
       INTO c.rows_total;
    c.rows_processed := 0;
    c.started_at := pg_catalog.clock_timestamp();
    c.finished_at := NULL;
    c.error := NULL;
    PERFORM google_ml._embedding_config_write(c, false);
    IF may_commit THEN
        COMMIT;
    END IF;

    -- A partitioned table is filled partition by partition (a ctid is unique within one).
    FOR leaf IN SELECT t.relid FROM pg_catalog.pg_partition_tree(c.relation) AS t
                 WHERE t.isleaf AND c.partition_root IS NOT NULL
                UNION ALL
                SELECT c.relation::regclass WHERE c.partition_root IS NULL LOOP
        EXECUTE format('SELECT array_agg(ctid ORDER BY ctid) FROM %s WHERE %I IS NOT NULL',
                       leaf, content_col) INTO ids;
        FOR start IN 1 .. coalesce(cardinality(ids), 0) BY c.batch_size LOOP
            chunk := ids[start : start + c.batch_size - 1];
            BEGIN
                EXECUTE format('SELECT array_agg(ctid ORDER BY ctid), array_agg(%I::text ORDER BY ctid) '
                               'FROM %s WHERE ctid = ANY ($1) AND %I IS NOT NULL',
                               content_col, leaf, content_col)
                   INTO chunk, texts USING chunk;
                IF chunk IS NOT NULL THEN
                    vectors := google_ml._warm_embeddings(m, texts);
                    IF vectors IS NULL OR cardinality(vectors) <> cardinality(texts)
                       OR array_position(vectors, NULL) IS NOT NULL THEN
                        RAISE EXCEPTION 'model "%" returned no embedding for some rows of this batch', m.id
                            USING ERRCODE = 'external_routine_exception';
                    END IF;
                    EXECUTE format('UPDATE %s AS t SET %I = u.e::real[]::%s '
                                   'FROM unnest($1::tid[], $2::text[]) AS u (id, e) WHERE t.ctid = u.id',
                                   leaf, emb_col, emb_type)
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
    END LOOP;

    c.finished_at := pg_catalog.clock_timestamp();
    IF failed IS NOT NULL THEN
        c.status := 'failed';
        c.error := failed;
        IF may_commit THEN
            PERFORM google_ml._embedding_config_write(c, false);
            COMMIT;
            RAISE EXCEPTION 'embedding % of % failed after % of % rows: %',
                            c.table_name, emb_col, c.rows_processed, c.rows_total, failed
                USING ERRCODE = failed_state, DETAIL = coalesce(failed_detail, ''),
                      HINT = format('The %s rows done keep their embeddings (committed batch by batch); '
                                    'the others are unchanged. Fix the cause, then CALL '
                                    'ai.refresh_embeddings(%L, %L) to embed the table again, or '
                                    'CALL ai.drop_embedding_config(%L, %L) to remove the configuration.',
                                    c.rows_processed, c.table_name, emb_col, c.table_name, emb_col);
        END IF;
        RAISE EXCEPTION 'embedding % of % failed after % of % rows: %',
                        c.table_name, emb_col, c.rows_processed, c.rows_total, failed
            USING ERRCODE = failed_state, DETAIL = coalesce(failed_detail, ''),
                  HINT = 'Nothing was changed: the call ran inside a transaction and is rolled back '
                         'with it. Fix the cause and CALL it again (on its own, outside a '
                         'transaction block, it commits batch by batch and shows its progress).';
    END IF;
    c.status := 'completed';
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
                  HINT = 'CALL ai.refresh_embeddings(...) to embed again, or '
                         'ai.drop_embedding_config(...) first.';
    END IF;

    c.relation := rel;
    c.table_name := table_name;
    c.content_column := content.attname;
    c.embedding_column := emb.attname;
    c.model_id := model_id;
    c.batch_size := coalesce(batch_size, 100);
    c.refresh_mode := mode;
    c.status := 'initializing';
    c.rows_total := 0;
    c.rows_processed := 0;
    c.partition_root := CASE WHEN (SELECT x.relkind FROM pg_catalog.pg_class AS x WHERE x.oid = rel) = 'p'
                             THEN rel::text END;
    c.created_by := current_user;
    PERFORM google_ml._embedding_config_write(c, true);
    IF mode = 'transactional' THEN
        -- Before the backfill, so rows written meanwhile are embedded by the trigger.
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION google_ml._embedding_trigger(%L, %L, %L)',
                       google_ml._embedding_trigger_name(emb.attname), content.attname, rel,
                       model_id, content.attname, emb.attname);
    END IF;
    CALL google_ml._embedding_fill(c);
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
    emb := google_ml._embedding_column(rel, embedding_column, 'embedding_column');
    c := google_ml._embedding_config_of(rel, emb.attname);
    IF c.relation IS NULL THEN
        RAISE EXCEPTION 'no embedding configuration for % column "%"', rel, emb.attname
            USING ERRCODE = 'undefined_object',
                  HINT = 'CALL ai.initialize_embeddings(...) first.';
    END IF;
    c.batch_size := coalesce(batch_size, c.batch_size);
    c.status := 'refreshing';
    CALL google_ml._embedding_fill(c);
END;
$$;

CREATE PROCEDURE ai.drop_embedding_config(table_name text, embedding_column text)
LANGUAGE plpgsql
AS $$
DECLARE
    rel  regclass;
    emb  pg_catalog.pg_attribute;
    c    google_ml._embedding_configs;
BEGIN
    rel := google_ml._embedding_table(table_name);
    emb := google_ml._embedding_column(rel, embedding_column, 'embedding_column');
    c := google_ml._embedding_config_of(rel, emb.attname);
    IF c.relation IS NULL THEN
        RAISE EXCEPTION 'no embedding configuration for % column "%"', rel, emb.attname
            USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s',
                   google_ml._embedding_trigger_name(emb.attname), rel);
    PERFORM google_ml._embedding_config_delete(rel, emb.attname);
END;
$$;
