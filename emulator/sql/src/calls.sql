-- Model calls: the request of docs/internals.md, built in the caller's session.

-- @version 1.2

-- The model row for a call, or NULL. SECURITY DEFINER so any user may call
-- models without SELECT on google_ml.models; it runs in the caller's
-- transaction, so a model created there and not yet committed is seen.
CREATE FUNCTION google_ml._model_for_call(model_id text)
RETURNS google_ml.models
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m FROM google_ml.models AS m WHERE m.id = model_id
$$;

-- The auth object of a request: null, IAM, or a secret path (never a value).
CREATE FUNCTION google_ml._auth_for_call(m google_ml.models)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    path text;
BEGIN
    IF m.auth_type IS NULL THEN
        RETURN NULL;
    ELSIF m.auth_type = 'alloydb_service_agent_iam' THEN
        RETURN jsonb_build_object('type', 'alloydb_service_agent_iam');
    END IF;
    SELECT s.secret_path INTO path FROM google_ml.secrets AS s WHERE s.secret_id = m.auth_id;
    IF path IS NULL THEN
        RAISE EXCEPTION 'model "%": secret "%" does not exist', m.id, m.auth_id
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN jsonb_build_object('type', 'secret_manager', 'secret_path', path);
END;
$$;

-- The URL to send, as registered (possibly relative, possibly without the
-- Vertex AI verb, possibly NULL for built-in support: the engine resolves all
-- three); http:// only while allow_http_endpoints is on.
CREATE FUNCTION google_ml._url_for_call(m google_ml.models)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    url text := nullif(btrim(m.request_url), '');
BEGIN
    IF url ~* '^http://' AND NOT google_ml._flag('allow_http_endpoints') THEN
        RAISE EXCEPTION 'model "%": http:// endpoints are not allowed: "%"', m.id, url
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Turn on google_ml_integration.allow_http_endpoints.';
    END IF;
    RETURN url;
END;
$$;

-- The SQL expression that calls a resolved transform/header function with
-- $1..$n of the given types, converted to its declared parameter types
-- (text <-> json by value, not by parsing).
CREATE FUNCTION google_ml._call_expression(fn regprocedure, argument_types regtype[])
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    p           pg_catalog.pg_proc;
    target      regtype;
    source      regtype;
    args        text[] := '{}';
BEGIN
    SELECT * INTO p FROM pg_catalog.pg_proc WHERE oid = fn;
    FOR i IN 1 .. p.pronargs LOOP
        target := p.proargtypes[i - 1];
        source := argument_types[i];
        args := args || CASE
            WHEN source IN ('text'::regtype, 'varchar'::regtype)
                 AND target IN ('json'::regtype, 'jsonb'::regtype)
                THEN format('pg_catalog.to_json($%s)::%s', i, target)
            WHEN source IN ('json'::regtype, 'jsonb'::regtype)
                 AND target IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
                THEN format('$%s::text::%s', i, target)
            ELSE format('$%s::%s', i, target)
        END;
    END LOOP;
    RETURN format('%I.%I(%s)',
                  (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = p.pronamespace),
                  p.proname, array_to_string(args, ', '));
END;
$$;

-- The headers from a model's header function ({} if it has none). A header function takes
-- (model_id, input text or request JSON), or, for llm models called by the AI functions,
-- (model_id, prompt, generation_config, system_instructions): it gets as many as it declares.
CREATE FUNCTION google_ml._headers_for_call(m google_ml.models, input_text text, input_json json,
                                            generation_config jsonb DEFAULT NULL,
                                            system_instruction text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    fn       regprocedure;
    n        int;
    headers  jsonb;
BEGIN
    IF m.header_gen_fn IS NULL THEN
        RETURN '{}'::jsonb;
    ELSIF m.header_gen_fn = 'google_ml.anthropic_claude_header_gen_fn' THEN
        RETURN google_ml.anthropic_claude_header_gen_fn(m.id, input_json)::jsonb;
    END IF;
    fn := google_ml._resolve_function(m.header_gen_fn, 'header', m.model_type, 'generate_headers_fn');
    SELECT p.pronargs INTO n FROM pg_catalog.pg_proc AS p WHERE p.oid = fn;
    IF input_json IS NOT NULL AND n = 2 THEN
        EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,json}')
                || '::jsonb' INTO headers USING m.id::text, input_json;
    ELSE
        EXECUTE 'SELECT ' || google_ml._call_expression(
                    fn, ('{text,text,json,text}'::regtype[])[1:n]) || '::jsonb'
           INTO headers
          USING m.id::text, coalesce(input_text, input_json::text), generation_config::json,
                system_instruction;
    END IF;
    IF headers IS NOT NULL AND jsonb_typeof(headers) <> 'object' THEN
        RAISE EXCEPTION 'model "%": header function % must return a JSON object', m.id, m.header_gen_fn
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN coalesce(headers, '{}'::jsonb);
END;
$$;

-- One request object of docs/internals.md (what _invoke sends, without sending). An
-- unregistered Vertex AI model also carries its path (vertex_path): its id may be shortened
-- (see _vertex_model), and google_ml._authorized_request derives the URL from the path.
CREATE FUNCTION google_ml._request(m google_ml.models, headers jsonb, body jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
        'op', 'invoke',
        'model_id', m.id,
        'provider', m.provider,
        'model_type', m.model_type,
        'qualified_name', m.qualified_name,
        'url', google_ml._url_for_call(m),
        'headers', coalesce(headers, '{}'::jsonb),
        'auth', google_ml._auth_for_call(m),
        'body', body)
        -- created_at is NULL only in the transient rows of _vertex_model
        || CASE WHEN m.created_at IS NULL AND m.provider = 'google'
                     AND m.request_url !~* '^https?://'
                THEN jsonb_build_object('vertex_path', m.request_url)
                ELSE '{}'::jsonb END
$$;

-- Builds the request of docs/internals.md and sends it to the engine.
CREATE FUNCTION google_ml._invoke(m google_ml.models, headers jsonb, body jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml._call_engine(google_ml._request(m, headers, body))
$$;

-- An unregistered Vertex AI model named by a bare id (text-embedding-004) or a
-- path (projects/P/locations/R/publishers/google/models/M[:verb],
-- publishers/google/models/M, projects/P/locations/R/endpoints/E), as a
-- transient model row; NULL if the name is neither.
CREATE FUNCTION google_ml._vertex_model(name text, model_type google_ml.model_type)
RETURNS google_ml.models
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    m            google_ml.models;
    path_match   text[];
BEGIN
    -- model_id is varchar(100); a full endpoint path can be longer
    -- (projects/P/locations/L/publishers/google/models/M:streamGenerateContent): its id is then
    -- the model and verb, and requests carry the path itself (see _request).
    m.id := CASE WHEN pg_catalog.length(name) <= 100 THEN name
                 ELSE pg_catalog.left(pg_catalog.regexp_replace(name, '^.*/', ''), 100) END;
    m.provider := 'google';
    m.model_type := model_type;
    m.auth_type := 'alloydb_service_agent_iam';
    m.is_preregistered := false;
    m.model_availability := 'AVAILABLE';
    path_match := regexp_match(
        name, '^(projects/[^/]+/locations/[^/]+/)?(publishers/[^/]+/models|endpoints)/([^/:]+)(:[A-Za-z]+)?$');
    IF path_match IS NOT NULL THEN
        m.qualified_name := path_match[3];
        m.request_url := name;
    ELSIF name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]*$' THEN
        m.qualified_name := name;
        m.request_url := google_ml.generate_model_request_url('google', model_type, name);
    ELSE
        RETURN NULL;
    END IF;
    IF model_type IN ('text_embedding', 'multimodal_embedding') THEN
        m.input_transform_fn := 'google_ml.vertexai_text_embedding_input_transform';
        m.output_transform_fn := 'google_ml.vertexai_text_embedding_output_transform';
    END IF;
    RETURN m;
END;
$$;




-- A registered model, or 42704 naming it.
CREATE FUNCTION google_ml._registered_model(model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._model_for_call(model_id);
BEGIN
    IF m.id IS NULL THEN
        -- 1.2 has no model endpoint management to register a model with.
        RAISE EXCEPTION 'model "%" does not exist', model_id
            USING ERRCODE = 'undefined_object',
                  HINT = CASE WHEN pg_catalog.to_regproc('google_ml.create_model') IS NULL
                      THEN 'This version (1.2) calls Vertex AI models by path (publishers/google/models/MODEL:VERB) or, with embedding(), by name; '
                           'ALTER EXTENSION google_ml_integration UPDATE; to register models with google_ml.create_model.'
                      ELSE 'Register it with CALL google_ml.create_model(...), or list models with SELECT * FROM google_ml.model_info_view.' END;
    END IF;
    RETURN m;
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


-- Sends request_body as is and returns the raw response.
CREATE FUNCTION google_ml._predict(m google_ml.models, request_body json)
RETURNS json
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml._invoke(
               m, google_ml._headers_for_call(m, NULL, request_body), request_body::jsonb)::json
$$;

-- What google_ml.predict_row answers for a model's response: in 1.3 the response as it comes
-- (GenWealth, Google's sample app, pins VERSION '1.3' and reads
-- predict_row(...) -> 'candidates' -> 0 of a :generateContent model). From 1.4.2 on a Gemini
-- :generateContent answer is wrapped in a JSON array: see the 1.4.2 block below.
CREATE FUNCTION google_ml._predict_row_answer(m google_ml.models, response json)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT response
$$;

-- ml_predict_row: a Vertex AI endpoint path
-- (projects/P/locations/R/publishers/google/models/M:verb, .../endpoints/E,
-- or without the projects/P/locations/R/ prefix), or a registered model id. Like
-- embedding(), it predates model endpoint management: a path needs no
-- google_ml_integration.enable_model_support (vertex-ai/invoke-predictions: "with any generic
-- model hosted in Vertex AI without registering the endpoint"); a registered id does.
CREATE FUNCTION public.ml_predict_row(endpoint text, body json)
RETURNS json
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    IF endpoint LIKE '%/%' AND NOT google_ml._flag('enable_model_support') THEN
        m := google_ml._vertex_model(endpoint, 'generic');
        IF m.id IS NOT NULL THEN
            RETURN google_ml._predict(m, body);
        END IF;
    END IF;
    PERFORM google_ml._require_model_support();
    m := google_ml._model_for_call(endpoint);
    IF m.id IS NULL AND endpoint LIKE '%/%' THEN
        m := google_ml._vertex_model(endpoint, 'generic');
    END IF;
    IF m.id IS NULL THEN
        m := google_ml._registered_model(endpoint);  -- raises 42704
    END IF;
    RETURN google_ml._predict(m, body);
END;
$$;

COMMENT ON FUNCTION public.ml_predict_row(text, json) IS
    'Sends body as is to a Vertex AI endpoint (or registered model) and returns the raw response.';



-- @version 1.3

-- google_ml.predict_row: model endpoint management's (a registered model).

CREATE FUNCTION google_ml.predict_row(model_id text, request_body json)
RETURNS json
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    PERFORM google_ml._require_model_support();
    m := google_ml._registered_model(model_id);
    RETURN google_ml._predict_row_answer(m, google_ml._predict(m, request_body));
END;
$$;

COMMENT ON FUNCTION google_ml.predict_row(text, json) IS
    'Sends request_body as is to a registered model; answers the response as it comes.';

CREATE FUNCTION ai.predict_row(model_id text, request_body json)
RETURNS json
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml.predict_row(model_id, request_body)
$$;



-- @version 1.4.2

-- From 1.4.2 on, predict_row answers a Gemini :generateContent model's response wrapped in a
-- JSON array, [{"candidates": [...], "usageMetadata": {...}}]. 1.4.2 brings the pre-registered
-- gemini-1.5-pro:generateContent, and the register page calls it as
-- json_array_elements(google_ml.predict_row(model_id => 'gemini-1.5-pro:generateContent', ...))
-- -> 'candidates' -> 0 ...; a 1.5.9 instance was seen to answer so (for its Gemini
-- model), and so does 1.6. 1.3 answered the object (the function above). Where between 1.3
-- and 1.4.2 AlloyDB changed is not published: the emulator changes with the first version
-- whose pages show the array. A :streamGenerateContent answer is an array of chunks already;
-- other models' answers are returned as they come.
CREATE OR REPLACE FUNCTION google_ml._predict_row_answer(m google_ml.models, response json)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN m.provider = 'google'
             AND coalesce(m.request_url, '') ~* ':generateContent$'
             AND pg_catalog.json_typeof(response) = 'object'
            THEN pg_catalog.json_build_array(response)
        ELSE response
    END
$$;

COMMENT ON FUNCTION google_ml.predict_row(text, json) IS
    'Sends request_body as is to a registered model; answers the response (a Gemini generateContent response wrapped in a JSON array, as AlloyDB since 1.4.2).';
