-- The built-in transform and header functions.

-- @version 1.2

-- The qualified name of a registered model. SECURITY DEFINER: built-in
-- transforms need it while running for users who cannot read google_ml.models.
CREATE FUNCTION google_ml.model_qualified_name_of(model_id varchar)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qualified_name text;
BEGIN
    SELECT m.qualified_name INTO qualified_name
      FROM google_ml.models AS m
     WHERE m.id = model_qualified_name_of.model_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', model_id
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN coalesce(qualified_name, model_id);
END;
$$;

-- A provider response that lacks the expected field.
CREATE FUNCTION google_ml._unexpected_response(model_id text, expected text, response json)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'model "%": unexpected response, no %', model_id, expected
        USING ERRCODE = 'invalid_json_text',
              DETAIL = pg_catalog.left(response::text, 500);
END;
$$;


-- Vertex AI text embeddings: {"instances":[{"content":...}]} ->
-- {"predictions":[{"embeddings":{"values":[...]}}]}
CREATE FUNCTION google_ml.vertexai_text_embedding_input_transform(
    model_id varchar(100), input_text text)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.json_build_object(
        'instances', pg_catalog.json_build_array(
            pg_catalog.json_build_object('content', input_text)))
$$;

CREATE FUNCTION google_ml.vertexai_text_embedding_output_transform(
    model_id varchar(100), response_json json)
RETURNS real[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v json := response_json -> 'predictions' -> 0 -> 'embeddings' -> 'values';
BEGIN
    IF v IS NULL OR pg_catalog.json_typeof(v) <> 'array' THEN
        PERFORM google_ml._unexpected_response(
            model_id, 'predictions[0].embeddings.values', response_json);
    END IF;
    RETURN ARRAY(SELECT x::real FROM pg_catalog.json_array_elements_text(v) AS x);
END;
$$;

CREATE FUNCTION google_ml.vertexai_text_embedding_batch_input_transform(
    model_id text, input text[])
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.json_build_object(
        'instances', coalesce(
            (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('content', t) ORDER BY i)
               FROM pg_catalog.unnest(input) WITH ORDINALITY AS u (t, i)),
            '[]'::json))
$$;

-- One row per prediction, in order: a two-dimensional real[][].
CREATE FUNCTION google_ml.vertexai_text_embedding_batch_output_transform(
    model_id text, model_output json)
RETURNS real[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    result real[];
BEGIN
    IF pg_catalog.json_typeof(model_output -> 'predictions') IS DISTINCT FROM 'array' THEN
        PERFORM google_ml._unexpected_response(model_id, 'predictions', model_output);
    END IF;
    SELECT pg_catalog.array_agg(
               ARRAY(SELECT x::real FROM pg_catalog.json_array_elements_text(
                         p -> 'embeddings' -> 'values') AS x)
               ORDER BY i)
      INTO result
      FROM pg_catalog.json_array_elements(model_output -> 'predictions')
           WITH ORDINALITY AS e (p, i);
    RETURN coalesce(result, '{}');
END;
$$;


-- OpenAI embeddings: {"model": qualified name, "input": text or [texts]} ->
-- {"data":[{"index":i,"embedding":[...]}]}
CREATE FUNCTION google_ml.openai_text_embedding_input_transform(
    model_id varchar(100), input_text text)
RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.json_build_object(
        'model', google_ml.model_qualified_name_of(model_id),
        'input', input_text)
$$;

CREATE FUNCTION google_ml.openai_text_embedding_output_transform(
    model_id varchar(100), response_json json)
RETURNS real[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v json := response_json -> 'data' -> 0 -> 'embedding';
BEGIN
    IF v IS NULL OR pg_catalog.json_typeof(v) <> 'array' THEN
        PERFORM google_ml._unexpected_response(model_id, 'data[0].embedding', response_json);
    END IF;
    RETURN ARRAY(SELECT x::real FROM pg_catalog.json_array_elements_text(v) AS x);
END;
$$;

CREATE FUNCTION google_ml.openai_text_embedding_batch_input_transform(
    model_id text, input text[])
RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.json_build_object(
        'model', google_ml.model_qualified_name_of(model_id),
        'input', pg_catalog.to_json(coalesce(input, '{}')))
$$;

CREATE FUNCTION google_ml.openai_text_embedding_batch_output_transform(
    model_id text, model_output json)
RETURNS real[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    result real[];
BEGIN
    IF pg_catalog.json_typeof(model_output -> 'data') IS DISTINCT FROM 'array' THEN
        PERFORM google_ml._unexpected_response(model_id, 'data', model_output);
    END IF;
    SELECT pg_catalog.array_agg(
               ARRAY(SELECT x::real FROM pg_catalog.json_array_elements_text(d -> 'embedding') AS x)
               ORDER BY coalesce((d ->> 'index')::int, i::int))
      INTO result
      FROM pg_catalog.json_array_elements(model_output -> 'data') WITH ORDINALITY AS e (d, i);
    RETURN coalesce(result, '{}');
END;
$$;


-- Gemini (generateContent). The batch forms carry one generateContent body per
-- input, as a JSON array, and read back an array of responses (or of
-- {"ok": response} items as returned by the engine's invoke_batch).
CREATE FUNCTION google_ml.gemini_llm_input_transform(
    model_id            varchar(100),
    input_text          text,
    generation_config   json DEFAULT NULL,
    system_instruction  text DEFAULT NULL)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.json_strip_nulls(pg_catalog.json_build_object(
        'contents', pg_catalog.json_build_array(pg_catalog.json_build_object(
            'role', 'user',
            'parts', pg_catalog.json_build_array(
                pg_catalog.json_build_object('text', input_text)))),
        'generationConfig', generation_config,
        'systemInstruction', CASE WHEN system_instruction IS NOT NULL THEN
            pg_catalog.json_build_object('parts', pg_catalog.json_build_array(
                pg_catalog.json_build_object('text', system_instruction)))
        END))
$$;

-- The generated text: candidates[0].content.parts[*].text; for a
-- streamGenerateContent response (an array of chunks), all chunks joined.
CREATE FUNCTION google_ml.gemini_llm_output_transform(
    model_id varchar(100), response_json json)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    chunks json := CASE WHEN pg_catalog.json_typeof(response_json) = 'array'
                        THEN response_json
                        ELSE pg_catalog.json_build_array(response_json) END;
    result text;
BEGIN
    SELECT pg_catalog.string_agg(part ->> 'text', '' ORDER BY c.i, p.j)
      INTO result
      FROM pg_catalog.json_array_elements(chunks) WITH ORDINALITY AS c (chunk, i)
      CROSS JOIN LATERAL pg_catalog.json_array_elements(
          CASE WHEN pg_catalog.json_typeof(
                        chunk -> 'candidates' -> 0 -> 'content' -> 'parts') = 'array'
               THEN chunk -> 'candidates' -> 0 -> 'content' -> 'parts'
               ELSE '[]'::json END) WITH ORDINALITY AS p (part, j);
    IF result IS NULL THEN
        PERFORM google_ml._unexpected_response(
            model_id, 'candidates[0].content.parts[0].text', response_json);
    END IF;
    RETURN result;
END;
$$;

CREATE FUNCTION google_ml.gemini_llm_batch_input_transform(
    model_id            text,
    input_texts         text[],
    generation_config   json DEFAULT NULL,
    system_instruction  text DEFAULT NULL)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        pg_catalog.json_agg(
            google_ml.gemini_llm_input_transform(
                model_id, t, generation_config, system_instruction)
            ORDER BY i),
        '[]'::json)
    FROM pg_catalog.unnest(input_texts) WITH ORDINALITY AS u (t, i)
$$;

CREATE FUNCTION google_ml.gemini_llm_batch_output_transform(
    model_id text, model_output json)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        pg_catalog.array_agg(
            google_ml.gemini_llm_output_transform(
                model_id, coalesce(r -> 'ok', r))
            ORDER BY i),
        '{}')
    FROM pg_catalog.json_array_elements(model_output) WITH ORDINALITY AS e (r, i)
$$;


-- Vertex AI ranking: {"records":[{"id":"2","score":0.93},...]} -> rows
-- (index = the record id, 1-based position in the documents given; score),
-- highest score first.
CREATE FUNCTION google_ml.vertexai_reranking_output_transform(
    model_id varchar(100), response_json json)
RETURNS TABLE (index int, score real)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (r ->> 'id')::int, (r ->> 'score')::real
      FROM pg_catalog.json_array_elements(
               coalesce(response_json -> 'records', '[]'::json)) AS r
     ORDER BY (r ->> 'score')::real DESC, (r ->> 'id')::int
$$;


-- Anthropic: the API version header. The API key itself is the model's secret
-- (model_auth_type secret_manager): for provider anthropic the engine sends the
-- secret value as x-api-key instead of Authorization: Bearer.
CREATE FUNCTION google_ml.anthropic_claude_header_gen_fn(
    model_id varchar(100), request_body json)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.json_build_object({{ANTHROPIC_VERSION_HEADER}}, {{ANTHROPIC_VERSION}})
$$;
