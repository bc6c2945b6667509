-- The AI query engine: ai.if, ai.generate, ai.rank (scalar 1.5.2; array and cursor forms
-- 1.5.4), reranking, ai.summarize and ai.analyze_sentiment (preview in 1.5.7, gated by the AI
-- query engine's flag from 1.6.1).
-- docs/ai-functions.md describes what is here and why.
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

-- @version 1.5.2
-- AlloyDB's AI functions first call google_ml.inc_call_count_impl(<function number>), a usage
-- counter; scripts that replace ai.* with copies of AlloyDB's bodies (a public mock set-up that
-- runs on AlloyDB Omni) call it too. The emulator counts nothing: a no-op.
CREATE FUNCTION google_ml.inc_call_count_impl(function_id integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
END;
$$;

CREATE FUNCTION google_ml._require_ai_query_engine()
RETURNS void
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT google_ml._require_flag('enable_ai_query_engine', 'the AI query engine (ai.if, ai.rank, ai.generate)')
$$;

-- The flag an AI function of this kind needs: in 1.5.x the preview functions (summarize,
-- sentiment) enable_preview_ai_functions, the others the AI query engine; from 1.6.1 on, all
-- of them the AI query engine (the 1.6.1 block below replaces this function).
CREATE FUNCTION google_ml._ai_function_flag(kind text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN kind IN ('summarize', 'sentiment') THEN 'enable_preview_ai_functions'
                ELSE 'enable_ai_query_engine' END
$$;

CREATE FUNCTION google_ml._require_ai_function(kind text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    flag text := google_ml._ai_function_flag(kind);
BEGIN
    PERFORM google_ml._require_flag(flag,
        CASE kind WHEN 'summarize' THEN 'ai.summarize'
                  WHEN 'sentiment' THEN 'ai.analyze_sentiment'
                  ELSE 'the AI query engine (ai.if, ai.rank, ai.generate)' END
        || CASE WHEN flag = 'enable_preview_ai_functions' THEN ' (a preview function)'
                WHEN kind IN ('summarize', 'sentiment')
                THEN ' (since version 1.6.1 gated by the AI query engine, no longer by '
                     'enable_preview_ai_functions)'
                ELSE '' END);
END;
$$;

-- The model the AI functions call when model_id is NULL: the flag
-- google_ml_integration.default_llm_model (gemini-2.5-flash-lite by default).
CREATE FUNCTION google_ml._ai_default_model()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT google_ml._setting('default_llm_model') $$;

-- The llm model an AI function calls: registered, of type llm; 42704 / 22023 otherwise.
CREATE FUNCTION google_ml._llm_model(model_id text)
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

-- The response schema of one answer: if -> enum, rank -> NUMBER, generate -> STRING.
CREATE FUNCTION google_ml._ai_item_schema(kind text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE kind
        WHEN 'if' THEN '{"type": "STRING", "enum": ["true", "false"]}'::jsonb
        WHEN 'rank' THEN '{"type": "NUMBER"}'::jsonb
        WHEN 'sentiment' THEN '{"type": "STRING", "enum": ["positive", "negative", "neutral"]}'::jsonb
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
        WHEN kind IN ('if', 'sentiment') THEN jsonb_build_object(
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
                      WHEN 'summarize' THEN 'Each answer is a summary of its prompt''s text, in at '
                                            'most three sentences (or as the prompt asks).'
                      WHEN 'sentiment' THEN 'Each answer is the sentiment of its prompt''s text: '
                                            'positive, negative or neutral.'
                      ELSE 'Each answer is the text the prompt asks for.'
                  END)
$$;

-- The request body a user's input transform (scalar or batch) builds, called with as many of
-- (model_id, input, generation_config, system_instruction) as it declares, `types` naming them.
CREATE FUNCTION google_ml._ai_transform_body(fn regprocedure, types regtype[], model_id text,
                                             input anyelement, generation_config jsonb,
                                             system_instruction text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    n     int;
    body  json;
BEGIN
    SELECT p.pronargs INTO n FROM pg_catalog.pg_proc AS p WHERE p.oid = fn;
    EXECUTE 'SELECT ' || google_ml._call_expression(fn, types[1:n]) || '::json'
       INTO body USING model_id, input, generation_config::json, system_instruction;
    RETURN body::jsonb;
END;
$$;

-- The request body for a prompt text, through the model's input transform (Gemini's when the
-- model has none).
CREATE FUNCTION google_ml._ai_body(m google_ml.models, input_text text, generation_config jsonb,
                                   system_instruction text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
    IF coalesce(m.input_transform_fn, 'google_ml.gemini_llm_input_transform')
       = 'google_ml.gemini_llm_input_transform' THEN
        RETURN google_ml.gemini_llm_input_transform(m.id, input_text, generation_config::json,
                                                    system_instruction)::jsonb;
    END IF;
    RETURN google_ml._ai_transform_body(
        google_ml._resolve_function(m.input_transform_fn, 'in', m.model_type, 'model_in_transform_fn'),
        '{text,text,json,text}', m.id::text, input_text, generation_config, system_instruction);
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
    IF answer IS NULL OR kind IN ('generate', 'summarize') THEN
        RETURN answer;
    END IF;
    word := lower(btrim(btrim(answer), '"'' .'));
    IF kind = 'if' THEN
        RETURN CASE WHEN word IN ('true', 'yes') THEN 'true'
                    WHEN word IN ('false', 'no') THEN 'false' END;
    ELSIF kind = 'sentiment' THEN
        RETURN CASE WHEN word IN ('positive', 'negative', 'neutral') THEN word END;
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
    RETURN google_ml._ai_normalize(kind, google_ml._ai_text(m, google_ml._invoke(
        m, google_ml._headers_for_call(m, prompt, NULL, google_ml._ai_generation_config(kind, NULL)),
        body)::json));
END;
$$;

-- A model registered with its own batch transforms (model_batch_in_transform_fn and
-- model_batch_out_transform_fn, as Google's Jev codelab registers an llm model) gets a batch of
-- prompts through them, as on AlloyDB: the input transform receives the prompts as an array
-- (with as many of generation_config and system_instructions as it declares) and builds one
-- request; the output transform answers an array, one answer per prompt. Gemini's built-in
-- batch transforms are not such a pair here (they build one body per prompt), so models that
-- name them, and models without batch transforms, get the batch as one JSON-array prompt.
CREATE FUNCTION google_ml._ai_user_batch_transforms(m google_ml.models)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT m.input_batch_transform_fn IS NOT NULL AND m.output_batch_transform_fn IS NOT NULL
       AND m.input_batch_transform_fn <> 'google_ml.gemini_llm_batch_input_transform'
$$;

CREATE FUNCTION google_ml._ai_user_batch_body(m google_ml.models, batch text[], generation_config jsonb,
                                              system_instruction text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
    RETURN google_ml._ai_transform_body(
        google_ml._resolve_function(m.input_batch_transform_fn, 'batch_in', m.model_type,
                                    'model_batch_in_transform_fn'),
        '{text,text[],json,text}', m.id::text, batch, generation_config, system_instruction);
END;
$$;

-- The n answers of a batch response through the model's batch output transform, each
-- normalised; NULL when it does not answer an array of n.
CREATE FUNCTION google_ml._ai_user_batch_answers(kind text, m google_ml.models, response json, n int)
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    fn       regprocedure := google_ml._resolve_function(m.output_batch_transform_fn, 'batch_out',
                                                         m.model_type, 'model_batch_out_transform_fn');
    answers  text[];
BEGIN
    EXECUTE 'SELECT (' || google_ml._call_expression(fn, '{text,json}') || ')::text[]'
       INTO answers USING m.id::text, response;
    IF coalesce(cardinality(answers), 0) <> n THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(SELECT google_ml._ai_normalize(kind, a)
                   FROM pg_catalog.unnest(answers) WITH ORDINALITY AS x (a, i) ORDER BY i);
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
    requests  jsonb[] := '{}';  -- appended in place; one jsonb array at the end, not n copies
    batch     text[];
    prompt    text;
    config    jsonb;
    instruction text;
    answers   json;
    answer    json;
    b         int;
    base      int;
    parsed    text[];
    results   text[] := array_fill(NULL::text, ARRAY[n]);
    user_batch boolean := google_ml._ai_user_batch_transforms(m);
BEGIN
    IF n = 0 THEN
        RETURN '{}'::text[];
    END IF;
    FOR start IN 1 .. n BY size LOOP
        batch := items[start : least(start + size - 1, n)];
        prompt := to_jsonb(batch)::text;
        config := google_ml._ai_generation_config(kind, cardinality(batch));
        instruction := google_ml._ai_batch_instruction(kind, cardinality(batch));
        requests := requests || google_ml._request(
            m, google_ml._headers_for_call(m, prompt, NULL, config, instruction),
            CASE WHEN user_batch THEN google_ml._ai_user_batch_body(m, batch, config, instruction)
                 ELSE google_ml._ai_body(m, prompt, config, instruction) END);
    END LOOP;
    answers := google_ml._call_engine_text(
        jsonb_build_object('op', 'invoke_batch', 'requests', to_jsonb(requests)))::json;
    FOR answer, b IN SELECT e.a, e.i - 1 FROM json_array_elements(answers) WITH ORDINALITY AS e (a, i) LOOP
        base := b * size;
        IF answer -> 'ok' IS NULL THEN
            IF strict THEN
                PERFORM google_ml._raise_engine_error(m.id, (answer -> 'error')::jsonb);
            END IF;
            CONTINUE;
        END IF;
        IF user_batch THEN
            parsed := google_ml._ai_user_batch_answers(kind, m, answer -> 'ok', least(size, n - base));
        ELSE
            parsed := google_ml._ai_parse_batch(kind, google_ml._ai_text(m, answer -> 'ok'),
                                                least(size, n - base));
        END IF;
        IF parsed IS NULL AND strict THEN
            RAISE EXCEPTION 'model "%" did not answer a batch of % prompts with a JSON array of % answers',
                            m.id, least(size, n - base), least(size, n - base)
                USING ERRCODE = 'data_exception',
                      DETAIL = left(CASE WHEN user_batch THEN (answer -> 'ok')::text
                                         ELSE google_ml._ai_text(m, answer -> 'ok') END, 500),
                      HINT = 'Try a smaller batch_size, or the scalar form.';
        END IF;
        FOR i IN 1 .. coalesce(cardinality(parsed), 0) LOOP
            results[base + i] := parsed[i];
        END LOOP;
    END LOOP;
    RETURN results;
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

-- Reranking: documents scored against search_string by a reranking model through the Vertex
-- AI ranking API (Discovery Engine :rank), at most {{RANKING_MAX_RECORDS}} records per request; the requests of
-- a call go in one invoke_batch and their records are merged by score. index is the 1-based
-- position of the document in `documents`.
CREATE FUNCTION google_ml.rank(model_id varchar, search_string text, documents text[],
                               top_n int DEFAULT NULL)
RETURNS TABLE (index int, score real)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    per_request  CONSTANT int := {{RANKING_MAX_RECORDS}};
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
    m := google_ml._model_for_call(model_id);
    IF m.id IS NULL AND model_id LIKE 'semantic-ranker-%' THEN
        -- ai/rank-rerank-search-results-rag: "Model registration for ranking isn't required for
        -- Vertex AI models. You can use the Vertex AI model name as the model_id".
        -- (no output transform: the loop below reads a NULL one as Vertex AI's)
        m := google_ml._vertex_model(model_id, 'reranking');
    END IF;
    IF m.id IS NULL THEN
        m := google_ml._registered_model(model_id);
    END IF;
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
    IF m.input_transform_fn IS NOT NULL THEN
        -- The model's own input transform (model_id, search_string, documents [, top_n]) makes
        -- the one request of the call, as the register page's third-party ranking model does.
        fn := google_ml._resolve_function(m.input_transform_fn, 'in', m.model_type,
                                          'model_in_transform_fn');
        EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,text,text[],int}')
           INTO body USING m.id::text, search_string, documents, top_n;
        requests := jsonb_build_array(google_ml._request(
            m, google_ml._headers_for_call(m, search_string, body::json), body));
    END IF;
    FOR start IN 1 .. n BY per_request LOOP
        EXIT WHEN m.input_transform_fn IS NOT NULL;
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
            -- its rows by position (a TABLE function takes no column definition list)
            EXECUTE 'SELECT coalesce(jsonb_agg(jsonb_build_array(t.index::int, t.score::real)), ''[]'') FROM '
                    || google_ml._call_expression(fn, '{text,json}') || ' AS t (index, score)'
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

-- Called by google_ml._warm for kinds if / generate / rank / summarize / sentiment: the answers
-- to the distinct prompts of a statement, {{LLM_BATCH_PROMPTS}} per :generateContent request, all requests in one
-- invoke_batch; NULL where unknown (a failed request, an unclear answer, the function's flag
-- off), so that the per-row call asks on its own and reports what it meets.
CREATE FUNCTION google_ml._warm_llm(kind text, m google_ml.models, items text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    allowed boolean := kind IN ('if', 'generate', 'rank', 'summarize', 'sentiment')
                       AND google_ml._flag(google_ml._ai_function_flag(kind));
BEGIN
    IF m.model_type <> 'llm' OR NOT allowed THEN
        RETURN NULL;
    END IF;
    RETURN google_ml._ai_batch(kind, m, items, {{LLM_BATCH_PROMPTS}}, false);
END;
$$;


-- @version 1.5.4


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
    PERFORM google_ml._require_ai_function(kind);
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
    answers := google_ml._ai_batch(kind, m, present, coalesce(batch_size, {{LLM_BATCH_PROMPTS}}), true);
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

-- A cursor call: reads input_cursor to the end (the first column of each row is the item) and
-- answers prompt || item for each row in batches; _ai_cursor opens the cursor over the result
-- (the documented examples read rec.input and rec.output).
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
    PERFORM google_ml._require_ai_function(kind);
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

-- The cursor form of every AI function: a new cursor over (input text, output) in the input's
-- order, output typed as the function's scalar form answers (if: boolean, unclear is false;
-- rank: real; the others: text).
CREATE FUNCTION google_ml._ai_cursor(kind text, prompt text, input_cursor refcursor,
                                     batch_size int, model_id text)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    a       record := google_ml._ai_cursor_answers(kind, prompt, input_cursor, batch_size, model_id);
    result  refcursor;
BEGIN
    OPEN result FOR EXECUTE format(
        'SELECT u.input, %s AS output
           FROM unnest($1, $2) WITH ORDINALITY AS u (input, answer, i)
          ORDER BY u.i',
        CASE kind WHEN 'if' THEN 'coalesce(u.answer::boolean, false)'
                  WHEN 'rank' THEN 'u.answer::real'
                  ELSE 'u.answer' END)
        USING a.inputs, a.answers;
    RETURN result;
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

-- Cursor forms: a new cursor over (input text, output) for each row of input_cursor. They read
-- and open cursors, so they are VOLATILE (and PARALLEL UNSAFE), as AlloyDB declares them: an
-- IMMUTABLE call with constant arguments would run while planning (EXPLAIN would read the cursor).
CREATE FUNCTION google_ml."if"(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                               model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN google_ml._ai_cursor('if', prompt, input_cursor, batch_size, model_id);
END;
$$;

CREATE FUNCTION google_ml.generate(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                                   model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN google_ml._ai_cursor('generate', prompt, input_cursor, batch_size, model_id);
END;
$$;

CREATE FUNCTION google_ml.rank(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                               model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN google_ml._ai_cursor('rank', prompt, input_cursor, batch_size, model_id);
END;
$$;


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
RETURNS refcursor LANGUAGE sql VOLATILE
AS $$ SELECT google_ml."if"(prompt, input_cursor, batch_size, model_id) $$;
CREATE FUNCTION ai.generate(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                            model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql VOLATILE
AS $$ SELECT google_ml.generate(prompt, input_cursor, batch_size, model_id) $$;
CREATE FUNCTION ai.rank(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                        model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql VOLATILE
AS $$ SELECT google_ml.rank(prompt, input_cursor, batch_size, model_id) $$;

CREATE FUNCTION ai.rank(model_id varchar, search_string text, documents text[], top_n int DEFAULT NULL)
RETURNS TABLE (index int, score real) LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT * FROM google_ml.rank(model_id, search_string, documents, top_n) $$;


-- @version 1.5.7

-- Preview functions (flag enable_preview_ai_functions; P0001 when off, as the AI query engine),
-- each in a scalar, an array and a cursor form, as ai.if / ai.generate:
--   ai.summarize(prompt, model_id)          -> text, a summary of the text
--   ai.analyze_sentiment(prompt, model_id)  -> 'positive', 'negative' or 'neutral' (NULL when
--                                              the model's answer is none of them)
--   ai.agg_summarize(text)                  -> one summary of the texts of a group (an aggregate)
-- A scalar call is one :generateContent request to an llm model (default: the
-- default_llm_model flag). The task is the system instruction; the user turn is the text alone.
-- Sentiment asks for an enum answer. Array and cursor forms batch like ai.generate's.

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
    RETURN google_ml._ai_text(m, google_ml._invoke(
        m, google_ml._headers_for_call(m, prompt, NULL, generation_config, instruction),
        body)::json);
END;
$$;

-- Scalar forms look in the warm-up cache first, as ai.if's (the proxy batches per-row calls).
CREATE FUNCTION google_ml.summarize(prompt text, model_id varchar DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    warmed text;
BEGIN
    PERFORM google_ml._require_ai_function('summarize');
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    warmed := google_ml._warm_lookup('summarize', model_id, prompt);
    IF warmed IS NOT NULL THEN
        RETURN warmed;
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
    warmed text;
BEGIN
    PERFORM google_ml._require_ai_function('sentiment');
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    warmed := google_ml._warm_lookup('sentiment', model_id, prompt);
    IF warmed IS NOT NULL THEN
        RETURN warmed;
    END IF;
    RETURN google_ml._ai_normalize('sentiment', google_ml._ai_preview_call(model_id, prompt,
        'Classify the sentiment of the text of the user message as positive, negative or neutral.',
        google_ml._ai_generation_config('sentiment', NULL)));
END;
$$;

-- Array forms: one answer per prompt, in order (NULL prompts answer NULL).
CREATE FUNCTION google_ml.summarize(prompts text[], batch_size int DEFAULT NULL,
                                    model_id varchar DEFAULT NULL)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml._ai_array('summarize', prompts, batch_size, model_id) $$;

CREATE FUNCTION google_ml.analyze_sentiment(prompts text[], batch_size int DEFAULT NULL,
                                            model_id varchar DEFAULT NULL)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml._ai_array('sentiment', prompts, batch_size, model_id) $$;

-- Cursor forms: a new cursor over (input text, output text) for each row of input_cursor.
CREATE FUNCTION google_ml.summarize(prompt text, input_cursor refcursor,
                                    batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN google_ml._ai_cursor('summarize', prompt, input_cursor, batch_size, model_id);
END;
$$;

CREATE FUNCTION google_ml.analyze_sentiment(prompt text, input_cursor refcursor,
                                            batch_size int DEFAULT NULL,
                                            model_id varchar DEFAULT NULL)
RETURNS refcursor
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN google_ml._ai_cursor('sentiment', prompt, input_cursor, batch_size, model_id);
END;
$$;

-- agg_summarize: the texts of a group (NULLs and empty texts left out), one per line, summarized
-- in one request; NULL for a group without text.
CREATE FUNCTION google_ml._agg_summarize_final(texts text[])
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    joined text := pg_catalog.array_to_string(
        ARRAY(SELECT x FROM unnest(texts) AS u (x) WHERE btrim(x) <> ''), E'\n');
BEGIN
    PERFORM google_ml._require_ai_function('summarize');
    IF joined IS NULL OR joined = '' THEN
        RETURN NULL;
    END IF;
    RETURN google_ml._ai_preview_call(NULL, joined,
        'The user message holds several texts, one per line. Summarize them together in one '
        'short paragraph: what they say in common and where they differ. Reply with the '
        'summary only.', NULL);
END;
$$;

CREATE AGGREGATE google_ml.agg_summarize(text) (
    SFUNC = pg_catalog.array_append,
    STYPE = text[],
    FINALFUNC = google_ml._agg_summarize_final
);

CREATE AGGREGATE ai.agg_summarize(text) (
    SFUNC = pg_catalog.array_append,
    STYPE = text[],
    FINALFUNC = google_ml._agg_summarize_final
);

CREATE FUNCTION ai.summarize(prompt text, model_id varchar DEFAULT NULL)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.summarize(prompt, model_id) $$;
CREATE FUNCTION ai.analyze_sentiment(prompt text, model_id varchar DEFAULT NULL)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.analyze_sentiment(prompt, model_id) $$;
CREATE FUNCTION ai.summarize(prompts text[], batch_size int DEFAULT NULL,
                             model_id varchar DEFAULT NULL)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.summarize(prompts, batch_size, model_id) $$;
CREATE FUNCTION ai.analyze_sentiment(prompts text[], batch_size int DEFAULT NULL,
                                     model_id varchar DEFAULT NULL)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml.analyze_sentiment(prompts, batch_size, model_id) $$;
CREATE FUNCTION ai.summarize(prompt text, input_cursor refcursor, batch_size int DEFAULT NULL,
                             model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql VOLATILE
AS $$ SELECT google_ml.summarize(prompt, input_cursor, batch_size, model_id) $$;
CREATE FUNCTION ai.analyze_sentiment(prompt text, input_cursor refcursor,
                                     batch_size int DEFAULT NULL, model_id varchar DEFAULT NULL)
RETURNS refcursor LANGUAGE sql VOLATILE
AS $$ SELECT google_ml.analyze_sentiment(prompt, input_cursor, batch_size, model_id) $$;


-- @version 1.5.8

-- The cost-optimized ai.if(prompt, embedding): AlloyDB trains a small proxy model on the LLM's
-- answers for a sample of rows (when the query is PREPAREd) and answers the other rows from
-- their embeddings, falling back to the LLM with a warning when it cannot. The emulator trains
-- no proxy model: every row gets the LLM's answer (batched by the warm-up), which is what a
-- perfectly accurate proxy would give. With google_ml_integration.enable_cost_optimized_ai_functions
-- off, it warns as AlloyDB does when it falls back, once per statement. The embedding is a
-- REAL[]; a vector column converts implicitly (pgvector's cast), so the documented
-- ai.if('...' || r.review, r.review_embedding) resolves here without a dependency on pgvector.
CREATE FUNCTION google_ml._cost_optimized_fallback()
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
AS $$
DECLARE
    key text := pg_catalog.pg_backend_pid()::text || ':' || pg_catalog.statement_timestamp()::text;
BEGIN
    IF pg_catalog.current_setting('google_ml_integration.emulator_cost_optimized_warned', true)
       IS DISTINCT FROM key THEN
        PERFORM pg_catalog.set_config('google_ml_integration.emulator_cost_optimized_warned', key,
                                      false);
        -- The text a real instance prints (its documentation words it differently).
        RAISE WARNING 'Cost Optimized AI Function is unavailable. Expect reduced performance.'
            USING HINT = 'SET google_ml_integration.enable_cost_optimized_ai_functions = on; '
                         '(the emulator then answers every row from the LLM without this warning)';
    END IF;
END;
$$;

-- PARALLEL RESTRICTED: the once-per-statement warning keeps its state in a setting, which a
-- parallel worker may not change.
CREATE FUNCTION google_ml."if"(prompt text, embedding real[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED
AS $$
BEGIN
    PERFORM google_ml._require_ai_query_engine();
    IF prompt IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT google_ml._flag('enable_cost_optimized_ai_functions') THEN
        PERFORM google_ml._cost_optimized_fallback();
    END IF;
    RETURN google_ml."if"(prompt, NULL::varchar);
END;
$$;

CREATE FUNCTION ai."if"(prompt text, embedding real[])
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL RESTRICTED
AS $$ SELECT google_ml."if"(prompt, embedding) $$;


-- @version 1.6.1
-- ai.summarize, ai.analyze_sentiment and ai.agg_summarize leave preview: the summarize page
-- cites 1.6.1 as their minimum version, and from then on the AI query engine's flag
-- (enable_ai_query_engine) gates them, as ai.if / ai.rank / ai.generate, instead of
-- enable_preview_ai_functions.
CREATE OR REPLACE FUNCTION google_ml._ai_function_flag(kind text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'enable_ai_query_engine'::text $$;
