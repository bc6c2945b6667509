-- Text embeddings: embedding(), google_ml.embedding, ai.embedding.

-- @version 1.2

-- The embedding of one text by model m.
CREATE FUNCTION google_ml._embed(m google_ml.models, content text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    in_fn     text;
    out_fn    text;
    body      json;
    response  jsonb;
    result    real[];
BEGIN
    IF m.model_type NOT IN ('text_embedding', 'multimodal_embedding') THEN
        RAISE EXCEPTION 'model "%" is a % model; embedding() needs a text_embedding model', m.id, m.model_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Default transforms by provider for rows registered without them.
    in_fn := coalesce(m.input_transform_fn, CASE m.provider
        WHEN 'google' THEN 'google_ml.vertexai_text_embedding_input_transform'
        WHEN 'open_ai' THEN 'google_ml.openai_text_embedding_input_transform' END);
    out_fn := coalesce(m.output_transform_fn, CASE m.provider
        WHEN 'google' THEN 'google_ml.vertexai_text_embedding_output_transform'
        WHEN 'open_ai' THEN 'google_ml.openai_text_embedding_output_transform' END);
    IF in_fn IS NULL OR out_fn IS NULL THEN
        RAISE EXCEPTION 'model "%" has no input/output transform functions', m.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set model_in_transform_fn and model_out_transform_fn with google_ml.alter_model.';
    END IF;

    -- Built-in transforms are called directly (cached plans); others by name.
    IF in_fn = 'google_ml.vertexai_text_embedding_input_transform' THEN
        body := google_ml.vertexai_text_embedding_input_transform(m.id, content);
    ELSIF in_fn = 'google_ml.openai_text_embedding_input_transform' THEN
        body := google_ml.openai_text_embedding_input_transform(m.id, content);
    ELSE
        EXECUTE 'SELECT ' || google_ml._call_expression(
                    google_ml._resolve_function(in_fn, 'in', m.model_type, 'model_in_transform_fn'),
                    '{text,text}') || '::json'
           INTO body USING m.id::text, content;
    END IF;

    response := google_ml._invoke(m, google_ml._headers_for_call(m, content, NULL), body::jsonb);

    IF out_fn = 'google_ml.vertexai_text_embedding_output_transform' THEN
        result := google_ml.vertexai_text_embedding_output_transform(m.id, response::json);
    ELSIF out_fn = 'google_ml.openai_text_embedding_output_transform' THEN
        result := google_ml.openai_text_embedding_output_transform(m.id, response::json);
    ELSE
        EXECUTE 'SELECT ' || google_ml._call_expression(
                    google_ml._resolve_function(out_fn, 'out', m.model_type, 'model_out_transform_fn'),
                    '{text,json}')
           INTO result USING m.id::text, response::json;
    END IF;
    RETURN result;
END;
$$;


-- The embedding entry points look in the warm-up cache first. IMMUTABLE, as
-- generated columns (GENERATED ALWAYS AS (embedding(...)::vector) STORED) need.
-- A warmed answer is returned as the cache holds it (coalesce, not a plpgsql variable: a
-- real[] assigned to one is expanded and flattened again, for each row).

-- The per-row call of an entry point the warm-up did not answer: the model registered as
-- model_id, or with any_vertex (public.embedding) also a Vertex AI model by bare name or path.
-- public.embedding predates model endpoint management and works without it: AlloyDB's
-- work-with-embeddings pages set google_ml_integration.enable_model_support to off before
-- calling embedding('text-embedding-005', ...). With the flag off it takes a Vertex AI model
-- by name or path only (the registry is model endpoint management's); anything else, and
-- every google_ml function, gets 55000.
CREATE FUNCTION google_ml._embed_per_row(model_id text, content text, any_vertex boolean)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    IF any_vertex AND NOT google_ml._flag('enable_model_support') THEN
        m := google_ml._vertex_model(model_id, 'text_embedding');
        IF m.id IS NOT NULL THEN
            RETURN google_ml._embed(m, content);
        END IF;
    END IF;
    PERFORM google_ml._require_model_support();
    RETURN google_ml._embed(CASE WHEN any_vertex THEN google_ml._text_embedding_model(model_id)
                                 ELSE google_ml._registered_model(model_id) END, content);
END;
$$;

-- The model embedding() means: registered, or a Vertex AI model by bare name or
-- path (no registration needed); 42704 if neither.
CREATE FUNCTION google_ml._text_embedding_model(model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._model_for_warm('embedding', model_id);
BEGIN
    IF m.id IS NULL THEN
        m := google_ml._registered_model(model_id);  -- raises 42704
    END IF;
    RETURN m;
END;
$$;

-- public.embedding: registered models, and also any Vertex AI embedding model
-- by bare name or full path, without registration.
CREATE FUNCTION public.embedding(model_id text, content text)
RETURNS real[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN coalesce(google_ml._warm_embedding(model_id, content),
                    google_ml._embed_per_row(model_id, content, true));
END;
$$;


COMMENT ON FUNCTION public.embedding(text, text) IS
    'Embedding of content by a registered model or a Vertex AI model named by id or path.';

-- @version 1.3

-- google_ml.embedding and ai.embedding: model endpoint management's (registered models).

-- google_ml.embedding: a registered (or pre-registered) text_embedding model.
CREATE FUNCTION google_ml.embedding(model_id text, content text)
RETURNS real[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN coalesce(google_ml._warm_embedding(model_id, content),
                    google_ml._embed_per_row(model_id, content, false));
END;
$$;

COMMENT ON FUNCTION google_ml.embedding(text, text) IS
    'Embedding of content by a registered text_embedding model.';
CREATE FUNCTION ai.embedding(model_id text, content text)
RETURNS real[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT google_ml.embedding(model_id, content)
$$;
