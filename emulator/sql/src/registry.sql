-- The model registry.

-- @version 1.2

-- The registry's table and the internals that calls of Vertex AI models by name use
-- (public.embedding, ml_predict_row): 1.2 has no model endpoint management, so no
-- pre-registered rows and no create_model & co. (those come with 1.3, below).

CREATE TABLE google_ml.models (
    id                         varchar(100) PRIMARY KEY,
    provider                   google_ml.model_provider NOT NULL DEFAULT 'custom',
    model_type                 google_ml.model_type NOT NULL DEFAULT 'generic',
    request_url                text,
    qualified_name             text,
    auth_type                  google_ml.auth_type,
    auth_id                    text,
    -- Function names, schema-qualified (as resolved when the model was registered).
    header_gen_fn              text,
    input_transform_fn         text,
    output_transform_fn        text,
    input_batch_transform_fn   text,
    output_batch_transform_fn  text,
    model_availability         text NOT NULL DEFAULT 'AVAILABLE',
    -- true for the rows this script inserts; updated_at says whether one was altered.
    is_preregistered           boolean NOT NULL DEFAULT false,
    created_at                 timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                 timestamptz
);

COMMENT ON TABLE google_ml.models IS
    'Registered model endpoints; pre-registered models are rows with is_preregistered.';

-- A row inserted with the id of a pre-registered model replaces it. This lets
-- create_model register (say) text-embedding-005 as the seed page does, and lets
-- pg_restore load an altered pre-registered row over the one CREATE EXTENSION
-- just inserted. SECURITY DEFINER so that INSERT privilege alone is enough.
CREATE FUNCTION google_ml._replace_preregistered()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM google_ml.models WHERE id = NEW.id AND is_preregistered;
    RETURN NEW;
END;
$$;

CREATE TRIGGER replace_preregistered
    BEFORE INSERT ON google_ml.models
    FOR EACH ROW EXECUTE FUNCTION google_ml._replace_preregistered();

-- Request URL with built-in support, from provider, type and qualified name.
-- Vertex AI URLs are relative (publishers/google/models/M:verb); the engine
-- resolves them against the configured project and region. NULL: no URL to
-- store; for Vertex AI ranking that is built-in support (the engine builds the
-- Discovery Engine URL from the configured project), otherwise a URL is needed.
-- The WHEN branches come from the provider catalogue (emulator/providers.py),
-- which the engine reads too.
CREATE FUNCTION google_ml.generate_model_request_url(
    provider        google_ml.model_provider,
    model_type      google_ml.model_type,
    qualified_name  text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
{{DEFAULT_URL_CASES}}
    END
$$;


-- Text to enum with a message that names the argument (a plain cast would
-- raise 22P02 "invalid input value for enum"). `kind` only carries the enum type.
CREATE FUNCTION google_ml._to_enum(value text, kind anyenum, argument text)
RETURNS anyenum
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v text := lower(btrim(value));
    found_value kind%TYPE;
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT e INTO found_value FROM pg_catalog.unnest(pg_catalog.enum_range(kind)) AS e
     WHERE e::text = v;
    IF found_value IS NOT NULL THEN
        RETURN found_value;
    END IF;
    RAISE EXCEPTION 'invalid %: "%"', argument, value
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Valid values: ' || pg_catalog.array_to_string(
                  pg_catalog.enum_range(kind)::text[], ', ') || '.';
END;
$$;

CREATE FUNCTION google_ml._to_provider(value text, argument text DEFAULT 'model_provider')
RETURNS google_ml.model_provider
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml._to_enum(value, NULL::google_ml.model_provider, argument) $$;

CREATE FUNCTION google_ml._to_model_type(value text, argument text DEFAULT 'model_type')
RETURNS google_ml.model_type
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml._to_enum(value, NULL::google_ml.model_type, argument) $$;

CREATE FUNCTION google_ml._to_auth_type(value text, argument text DEFAULT 'model_auth_type')
RETURNS google_ml.auth_type
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT google_ml._to_enum(value, NULL::google_ml.auth_type, argument) $$;


-- Whether a function fits its role in a model of that type:
--   header     (model_id text-like, input text|json [, json, text|json]) -> json|jsonb
--   in         (model_id text-like, input text [, json, text|json]) -> json|jsonb; for reranking
--              (model_id, search_string text, documents text[] [, top_n int]) -> json|jsonb
--   out        (model_id text-like, response json|jsonb) -> real[] for text_embedding,
--              text for llm, rows (integer index, numeric score) for reranking, anything for
--              other types
--   batch_in   (model_id text-like, inputs text[]|varchar[] [, json, text|json]) -> json|jsonb
--   (an llm model's system instructions may be declared text or json: Google's Jev codelab
--   writes its batch input transform, a real instance's mock set-up its header functions,
--   with system_instructions JSON; the instruction then arrives as a JSON string)
--   batch_out  (model_id text-like, response json|jsonb) -> an array
CREATE FUNCTION google_ml._signature_fits(
    fn          oid,
    role        text,
    model_type  google_ml.model_type)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT
        p.prokind = 'f'
        -- a reranking model's output transform returns rows: TABLE (index INT, score REAL)
        AND p.proretset = (role = 'out' AND model_type = 'reranking')
        AND p.pronargs >= 2
        AND p.pronargs - p.pronargdefaults <= CASE WHEN role IN ('in', 'batch_in', 'header') THEN 4 ELSE 2 END
        AND p.pronargs <= CASE WHEN role IN ('in', 'batch_in', 'header') THEN 4 ELSE 2 END
        AND p.proargtypes[0] IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
        AND CASE role
            WHEN 'header' THEN
                p.proargtypes[1] IN ('text'::regtype, 'varchar'::regtype,
                                     'json'::regtype, 'jsonb'::regtype)
                -- llm models: (model_id, prompt, generation_config, system_instructions)
                AND (p.pronargs < 3 OR p.proargtypes[2] IN ('json'::regtype, 'jsonb'::regtype))
                AND (p.pronargs < 4 OR p.proargtypes[3] IN ('text'::regtype, 'varchar'::regtype,
                                                             'json'::regtype, 'jsonb'::regtype))
                AND p.prorettype IN ('json'::regtype, 'jsonb'::regtype)
            WHEN 'in' THEN
                p.proargtypes[1] IN ('text'::regtype, 'varchar'::regtype)
                AND CASE WHEN model_type = 'reranking' THEN
                    -- (model_id, search_string TEXT, documents TEXT[], top_n INT DEFAULT NULL),
                    -- as the register page's third-party ranking model (Cohere) declares it
                    p.pronargs >= 3
                    AND p.proargtypes[2] IN ('text[]'::regtype, 'varchar[]'::regtype)
                    AND (p.pronargs < 4 OR p.proargtypes[3] IN ('int2'::regtype, 'int4'::regtype,
                                                                 'int8'::regtype))
                ELSE
                    (p.pronargs < 3 OR p.proargtypes[2] IN ('json'::regtype, 'jsonb'::regtype))
                    AND (p.pronargs < 4 OR p.proargtypes[3] IN ('text'::regtype, 'varchar'::regtype,
                                                                 'json'::regtype, 'jsonb'::regtype))
                END
                AND p.prorettype IN ('json'::regtype, 'jsonb'::regtype)
            WHEN 'out' THEN
                p.proargtypes[1] IN ('json'::regtype, 'jsonb'::regtype)
                AND CASE model_type
                    WHEN 'text_embedding' THEN p.prorettype = 'real[]'::regtype
                    WHEN 'multimodal_embedding' THEN p.prorettype = 'real[]'::regtype
                    WHEN 'llm' THEN p.prorettype IN ('text'::regtype, 'varchar'::regtype)
                    -- two output columns: an integer index and a numeric score
                    WHEN 'reranking' THEN
                        (SELECT pg_catalog.array_agg(p.proallargtypes[i] ORDER BY i)
                           FROM pg_catalog.generate_subscripts(p.proargmodes, 1) AS i
                          WHERE p.proargmodes[i] IN ('o', 't')) IN (
                            SELECT ARRAY[i.oid::oid, r.oid::oid]
                              FROM pg_catalog.unnest('{int2,int4,int8}'::regtype[]) AS i (oid),
                                   pg_catalog.unnest('{float4,float8,numeric}'::regtype[]) AS r (oid))
                    ELSE p.prorettype <> 'void'::regtype
                END
            WHEN 'batch_in' THEN
                p.proargtypes[1] IN ('text[]'::regtype, 'varchar[]'::regtype)
                AND (p.pronargs < 3 OR p.proargtypes[2] IN ('json'::regtype, 'jsonb'::regtype))
                AND (p.pronargs < 4 OR p.proargtypes[3] IN ('text'::regtype, 'varchar'::regtype,
                                                             'json'::regtype, 'jsonb'::regtype))
                AND p.prorettype IN ('json'::regtype, 'jsonb'::regtype)
            WHEN 'batch_out' THEN
                p.proargtypes[1] IN ('json'::regtype, 'jsonb'::regtype)
                AND (SELECT t.typcategory = 'A' FROM pg_catalog.pg_type AS t
                      WHERE t.oid = p.prorettype)
            ELSE false
        END
    FROM pg_catalog.pg_proc AS p
    WHERE p.oid = fn
$$;

-- The expected signature, for error messages.
CREATE FUNCTION google_ml._signature_hint(role text, model_type google_ml.model_type)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE role
        WHEN 'header' THEN
            '(model_id VARCHAR(100), input_text TEXT) RETURNS JSON, or (model_id TEXT, input JSON) RETURNS JSON'
            || CASE WHEN model_type = 'llm' THEN ', or for llm models (model_id VARCHAR(100), prompt TEXT, '
                                                 'generation_config JSON, system_instructions TEXT or JSON) RETURNS JSON'
                    ELSE '' END
        WHEN 'in' THEN
            CASE WHEN model_type = 'llm'
                THEN '(model_id VARCHAR(100), input_text TEXT, generation_config JSON, system_instruction TEXT) RETURNS JSON'
                WHEN model_type = 'reranking'
                THEN '(model_id VARCHAR(100), search_string TEXT, documents TEXT[], top_n INT DEFAULT NULL) RETURNS JSON'
                ELSE '(model_id VARCHAR(100), input_text TEXT) RETURNS JSON'
            END
        WHEN 'out' THEN
            '(model_id VARCHAR(100), response_json JSON) RETURNS '
            || CASE
                   WHEN model_type IN ('text_embedding', 'multimodal_embedding') THEN 'REAL[]'
                   WHEN model_type = 'llm' THEN 'TEXT'
                   WHEN model_type = 'reranking' THEN 'TABLE (index INT, score REAL)'
                   ELSE 'a value'
               END
        WHEN 'batch_in' THEN '(model_id TEXT, input TEXT[]) RETURNS JSON'
        WHEN 'batch_out' THEN '(model_id TEXT, model_output JSON) RETURNS REAL[][] (or another array)'
    END
$$;

-- Resolves a transform/header function named by the user ('fn', 'schema.fn' or
-- 'schema.fn(argtypes)') to the overload that fits its role. Unqualified names
-- follow search_path: the first schema that has a function of that name wins.
-- Raises 42883 when no function has that name, 42P13 when none fits.
CREATE FUNCTION google_ml._resolve_function(
    name        text,
    role        text,
    model_type  google_ml.model_type,
    argument    text)
RETURNS regprocedure
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    parts       text[];
    candidates  oid[];
    candidate   oid;
    found_sigs  text;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RETURN NULL;
    END IF;

    IF name LIKE '%(%' THEN
        candidates := ARRAY[pg_catalog.to_regprocedure(name)::oid];
        IF candidates[1] IS NULL THEN
            candidates := '{}';
        END IF;
    ELSE
        BEGIN
            parts := pg_catalog.parse_ident(btrim(name));
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'invalid %: "%" is not a function name', argument, name
                USING ERRCODE = 'invalid_parameter_value';
        END;
        IF pg_catalog.cardinality(parts) = 2 THEN
            SELECT pg_catalog.array_agg(p.oid ORDER BY p.oid) INTO candidates
              FROM pg_catalog.pg_proc AS p
              JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
             WHERE n.nspname = parts[1] AND p.proname = parts[2];
        ELSIF pg_catalog.cardinality(parts) = 1 THEN
            SELECT pg_catalog.array_agg(p.oid ORDER BY p.oid) INTO candidates
              FROM pg_catalog.pg_proc AS p
             WHERE p.proname = parts[1]
               AND p.pronamespace = (
                   SELECT n.oid
                     FROM pg_catalog.unnest(pg_catalog.current_schemas(true))
                          WITH ORDINALITY AS s (nspname, position)
                     JOIN pg_catalog.pg_namespace AS n ON n.nspname = s.nspname
                    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_proc AS q
                                   WHERE q.pronamespace = n.oid AND q.proname = parts[1])
                    ORDER BY s.position
                    LIMIT 1);
        ELSE
            RAISE EXCEPTION 'invalid %: "%" is not a function name', argument, name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    IF candidates IS NULL OR pg_catalog.cardinality(candidates) = 0 THEN
        -- AlloyDB's text (as recorded on AlloyDB Omni 1.6.3): "Invalid <argument>: <name>".
        RAISE EXCEPTION 'Invalid %: %', argument, name
            USING ERRCODE = 'undefined_function',
                  DETAIL = format('function "%s" does not exist', name),
                  HINT = 'Create it first, with the signature '
                         || google_ml._signature_hint(role, model_type) || '.';
    END IF;

    FOREACH candidate IN ARRAY candidates LOOP
        IF google_ml._signature_fits(candidate, role, model_type) THEN
            RETURN candidate::regprocedure;
        END IF;
    END LOOP;

    SELECT pg_catalog.string_agg(
               c::regprocedure::text || ' RETURNS ' || pg_catalog.format_type(p.prorettype, NULL),
               '; ')
      INTO found_sigs
      FROM pg_catalog.unnest(candidates) AS c
      JOIN pg_catalog.pg_proc AS p ON p.oid = c;
    RAISE EXCEPTION '%: function "%" has the wrong signature', argument, name
        USING ERRCODE = 'invalid_function_definition',
              DETAIL = 'Found: ' || found_sigs || '.',
              HINT = 'Expected ' || google_ml._signature_hint(role, model_type) || '.';
END;
$$;

-- The schema-qualified name stored in google_ml.models for a resolved function.
CREATE FUNCTION google_ml._function_name(fn regprocedure)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
      FROM pg_catalog.pg_proc AS p
      JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
     WHERE p.oid = fn
$$;


-- Fills in built-in support (URL, transforms, header function, auth) for the
-- NULL fields of a model row and validates the result. create_model and
-- alter_model both go through here, so both enforce the same rules.
CREATE FUNCTION google_ml._validated_model(m google_ml.models)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF m.id IS NULL OR btrim(m.id) = '' THEN
        RAISE EXCEPTION 'model_id is required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    m.provider := coalesce(m.provider, 'custom');
    m.model_type := coalesce(m.model_type, 'generic');
    m.model_availability := coalesce(m.model_availability, 'AVAILABLE');

    -- reference/model-endpoint: "You cannot pass transform functions when you are registering a
    -- generic model endpoint" (predict_row sends request_body as is and answers the response as
    -- it comes). A header function is allowed.
    IF m.model_type = 'generic' AND pg_catalog.num_nonnulls(m.input_transform_fn, m.output_transform_fn,
            m.input_batch_transform_fn, m.output_batch_transform_fn) > 0 THEN
        RAISE EXCEPTION 'transform functions cannot be set for generic model "%"', m.id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Given: ' || pg_catalog.concat_ws(', ',
                      'model_in_transform_fn => ' || pg_catalog.quote_literal(m.input_transform_fn),
                      'model_out_transform_fn => ' || pg_catalog.quote_literal(m.output_transform_fn),
                      'model_batch_in_transform_fn => ' || pg_catalog.quote_literal(m.input_batch_transform_fn),
                      'model_batch_out_transform_fn => ' || pg_catalog.quote_literal(m.output_batch_transform_fn))
                      || '.',
                  HINT = 'google_ml.predict_row() sends a generic model (the default model_type) '
                         'its request_body unchanged and returns the response unchanged. Leave the '
                         'transforms out, or give the model its type: model_type => '
                         '''text_embedding'' (embedding()), ''llm'' (the AI functions) or '
                         '''reranking'' (ai.rank).';
    END IF;

    -- Built-in support.
    IF m.provider = 'open_ai' AND m.model_type = 'text_embedding'
       AND m.qualified_name IS NULL THEN
        RAISE EXCEPTION 'model_qualified_name is required for OpenAI embedding model "%"', m.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example text-embedding-ada-002, text-embedding-3-small or text-embedding-3-large.';
    END IF;
    IF m.request_url IS NULL THEN
        m.request_url := google_ml.generate_model_request_url(
            m.provider, m.model_type, m.qualified_name);
    END IF;
    IF (m.request_url IS NULL OR btrim(m.request_url) = '')
       AND NOT (m.provider = 'google' AND m.model_type = 'reranking') THEN
        RAISE EXCEPTION 'model_request_url is required for model "%"', m.id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Provider %s has no built-in support for %s models%s.',
                                  m.provider, m.model_type,
                                  CASE WHEN m.qualified_name IS NULL
                                       THEN ' without a model_qualified_name' ELSE '' END);
    END IF;

    IF m.provider = 'google' AND m.model_type IN ('text_embedding', 'multimodal_embedding') THEN
        m.input_transform_fn := coalesce(m.input_transform_fn,
            'google_ml.vertexai_text_embedding_input_transform');
        m.output_transform_fn := coalesce(m.output_transform_fn,
            'google_ml.vertexai_text_embedding_output_transform');
        m.input_batch_transform_fn := coalesce(m.input_batch_transform_fn,
            'google_ml.vertexai_text_embedding_batch_input_transform');
        m.output_batch_transform_fn := coalesce(m.output_batch_transform_fn,
            'google_ml.vertexai_text_embedding_batch_output_transform');
    ELSIF m.provider = 'google' AND m.model_type = 'llm' THEN
        m.input_transform_fn := coalesce(m.input_transform_fn,
            'google_ml.gemini_llm_input_transform');
        m.output_transform_fn := coalesce(m.output_transform_fn,
            'google_ml.gemini_llm_output_transform');
        m.input_batch_transform_fn := coalesce(m.input_batch_transform_fn,
            'google_ml.gemini_llm_batch_input_transform');
        m.output_batch_transform_fn := coalesce(m.output_batch_transform_fn,
            'google_ml.gemini_llm_batch_output_transform');
    ELSIF m.provider = 'google' AND m.model_type = 'reranking' THEN
        m.output_transform_fn := coalesce(m.output_transform_fn,
            'google_ml.vertexai_reranking_output_transform');
    ELSIF m.provider = 'open_ai' AND m.model_type = 'text_embedding' THEN
        m.input_transform_fn := coalesce(m.input_transform_fn,
            'google_ml.openai_text_embedding_input_transform');
        m.output_transform_fn := coalesce(m.output_transform_fn,
            'google_ml.openai_text_embedding_output_transform');
        m.input_batch_transform_fn := coalesce(m.input_batch_transform_fn,
            'google_ml.openai_text_embedding_batch_input_transform');
        m.output_batch_transform_fn := coalesce(m.output_batch_transform_fn,
            'google_ml.openai_text_embedding_batch_output_transform');
    ELSIF m.provider = 'anthropic' THEN
        m.header_gen_fn := coalesce(m.header_gen_fn,
            'google_ml.anthropic_claude_header_gen_fn');
    END IF;

    -- Authentication.
    IF m.auth_type IS NULL AND m.auth_id IS NOT NULL THEN
        m.auth_type := 'secret_manager';
    END IF;
    IF m.auth_type IS NULL AND m.provider = 'google' AND m.header_gen_fn IS NULL THEN
        m.auth_type := 'alloydb_service_agent_iam';
    END IF;
    IF m.auth_type = 'secret_manager' THEN
        IF m.auth_id IS NULL THEN
            RAISE EXCEPTION 'model_auth_id is required when model_auth_type is secret_manager (model "%")', m.id
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM google_ml.secrets AS s WHERE s.secret_id = m.auth_id) THEN
            RAISE EXCEPTION 'model_auth_id: secret "%" does not exist', m.auth_id
                USING ERRCODE = 'undefined_object',
                      HINT = 'Register it first with CALL google_ml.create_sm_secret(secret_id => ..., secret_path => ...).';
        END IF;
    ELSIF m.auth_id IS NOT NULL THEN
        RAISE EXCEPTION 'model_auth_id is only used with model_auth_type secret_manager (model "%")', m.id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- http:// only when allowed.
    IF m.request_url ~* '^http://' AND NOT google_ml._flag('allow_http_endpoints') THEN
        RAISE EXCEPTION 'model_request_url: http:// endpoints are not allowed: "%"', m.request_url
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use https://, or turn on google_ml_integration.allow_http_endpoints '
                         '(SET, ALTER DATABASE/ROLE ... SET, or ALTER SYSTEM SET with pg_reload_conf()).';
    END IF;

    -- Functions: must exist and fit; stored schema-qualified.
    m.header_gen_fn := google_ml._function_name(google_ml._resolve_function(
        m.header_gen_fn, 'header', m.model_type, 'generate_headers_fn'));
    m.input_transform_fn := google_ml._function_name(google_ml._resolve_function(
        m.input_transform_fn, 'in', m.model_type, 'model_in_transform_fn'));
    m.output_transform_fn := google_ml._function_name(google_ml._resolve_function(
        m.output_transform_fn, 'out', m.model_type, 'model_out_transform_fn'));
    m.input_batch_transform_fn := google_ml._function_name(google_ml._resolve_function(
        m.input_batch_transform_fn, 'batch_in', m.model_type, 'model_batch_in_transform_fn'));
    m.output_batch_transform_fn := google_ml._function_name(google_ml._resolve_function(
        m.output_batch_transform_fn, 'batch_out', m.model_type, 'model_batch_out_transform_fn'));

    IF m.model_type = 'text_embedding'
       AND (m.input_transform_fn IS NULL OR m.output_transform_fn IS NULL) THEN
        RAISE EXCEPTION 'model_in_transform_fn and model_out_transform_fn are required for text_embedding model "%" of provider %', m.id, m.provider
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only google and open_ai embedding models have built-in transforms.';
    END IF;
    IF (m.input_batch_transform_fn IS NULL) <> (m.output_batch_transform_fn IS NULL) THEN
        RAISE EXCEPTION 'model_batch_in_transform_fn and model_batch_out_transform_fn go together (model "%")', m.id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN m;
END;
$$;


-- A model row with the given (non-NULL) procedure arguments laid over it: what
-- create_model (over an empty row) and alter_model (over the stored one) share.
CREATE FUNCTION google_ml._with_arguments(
    m                             google_ml.models,
    model_request_url             text,
    model_provider                text,
    model_type                    text,
    model_qualified_name          text,
    model_auth_type               text,
    model_auth_id                 text,
    generate_headers_fn           text,
    model_in_transform_fn         text,
    model_out_transform_fn        text,
    model_batch_in_transform_fn   text,
    model_batch_out_transform_fn  text)
RETURNS google_ml.models
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    m.request_url := coalesce(nullif(btrim(model_request_url), ''), m.request_url);
    m.provider := coalesce(google_ml._to_provider(model_provider), m.provider);
    m.model_type := coalesce(google_ml._to_model_type(_with_arguments.model_type), m.model_type);
    m.qualified_name := coalesce(nullif(btrim(model_qualified_name), ''), m.qualified_name);
    m.auth_type := coalesce(google_ml._to_auth_type(model_auth_type), m.auth_type);
    m.auth_id := coalesce(nullif(btrim(model_auth_id), ''), m.auth_id);
    m.header_gen_fn := coalesce(generate_headers_fn, m.header_gen_fn);
    m.input_transform_fn := coalesce(model_in_transform_fn, m.input_transform_fn);
    m.output_transform_fn := coalesce(model_out_transform_fn, m.output_transform_fn);
    m.input_batch_transform_fn := coalesce(model_batch_in_transform_fn, m.input_batch_transform_fn);
    m.output_batch_transform_fn := coalesce(model_batch_out_transform_fn, m.output_batch_transform_fn);
    RETURN m;
END;
$$;


-- pg_dump keeps user rows; pre-registered rows come back with CREATE EXTENSION
-- (altered ones are dumped and replace them on restore, see the trigger).
SELECT pg_catalog.pg_extension_config_dump(
    'google_ml.models', 'WHERE NOT is_preregistered OR updated_at IS NOT NULL');


-- @version 1.3

-- Model endpoint management (AlloyDB 1.3): registering models, their view, the
-- pre-registered rows.

-- A model that names a secret sends the secret's value to its URL: registering or changing
-- one (create_model, alter_model, or DML on the table) needs the right to use that secret
-- (google_ml._require_secret_use). Invoker's rights, so CURRENT_USER is the caller.
CREATE FUNCTION google_ml._guard_secret_use()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.auth_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD) THEN
        PERFORM google_ml._require_secret_use(NEW.auth_id, NEW.id);
    END IF;
    RETURN NEW;
END;
$$;

-- Named so that it runs before replace_preregistered (triggers run in name order).
CREATE TRIGGER guard_secret_use
    BEFORE INSERT OR UPDATE ON google_ml.models
    FOR EACH ROW EXECUTE FUNCTION google_ml._guard_secret_use();


CREATE VIEW google_ml.model_info_view
WITH (security_invoker = true)
AS
SELECT
    m.id::varchar                         AS model_id,
    m.request_url::varchar                AS model_request_url,
    m.provider                            AS model_provider,
    m.model_type                          AS model_type,
    m.qualified_name::varchar             AS model_qualified_name,
    m.auth_type                           AS model_auth_type,
    m.auth_id::varchar                    AS model_auth_id,
    m.header_gen_fn::varchar              AS header_gen_fn,
    m.input_transform_fn::varchar         AS input_transform_fn,
    m.output_transform_fn::varchar        AS output_transform_fn,
    m.input_batch_transform_fn::varchar   AS input_batch_transform_fn,
    m.output_batch_transform_fn::varchar  AS output_batch_transform_fn
FROM google_ml.models AS m;

COMMENT ON VIEW google_ml.model_info_view IS
    'All models, pre-registered ones included.';


-- Pre-registered models (reference section 6): plain rows, so they can be
-- altered and dropped like any other. The rows of each version come from the provider
-- catalogue (emulator/providers.py, PREREGISTERED); their URLs are the default URLs above.
INSERT INTO google_ml.models (
    id, provider, model_type, request_url, qualified_name, auth_type,
    input_transform_fn, output_transform_fn,
    input_batch_transform_fn, output_batch_transform_fn, is_preregistered)
VALUES
{{PREREGISTERED_1_3}};

CREATE PROCEDURE google_ml.create_model(
    model_id                      text,
    model_request_url             text DEFAULT NULL,
    model_provider                text DEFAULT NULL,
    model_type                    text DEFAULT NULL,
    model_qualified_name          text DEFAULT NULL,
    model_auth_type               text DEFAULT NULL,
    model_auth_id                 text DEFAULT NULL,
    generate_headers_fn           text DEFAULT NULL,
    model_in_transform_fn         text DEFAULT NULL,
    model_out_transform_fn        text DEFAULT NULL,
    model_batch_in_transform_fn   text DEFAULT NULL,
    model_batch_out_transform_fn  text DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    m google_ml.models;
BEGIN
    IF EXISTS (SELECT 1 FROM google_ml.models AS x
                WHERE x.id = create_model.model_id AND NOT x.is_preregistered) THEN
        -- AlloyDB's words: deploy scripts test SQLERRM ~ 'Model already exists'.
        RAISE EXCEPTION 'Model already exists: "%"', create_model.model_id
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use google_ml.alter_model to change it, or google_ml.drop_model first.';
    END IF;

    m.id := create_model.model_id;
    m := google_ml._validated_model(google_ml._with_arguments(
        m, model_request_url, model_provider, create_model.model_type, model_qualified_name,
        model_auth_type, model_auth_id, generate_headers_fn, model_in_transform_fn,
        model_out_transform_fn, model_batch_in_transform_fn, model_batch_out_transform_fn));

    -- A pre-registered row of the same id is replaced (trigger replace_preregistered).
    INSERT INTO google_ml.models (
        id, provider, model_type, request_url, qualified_name, auth_type, auth_id,
        header_gen_fn, input_transform_fn, output_transform_fn,
        input_batch_transform_fn, output_batch_transform_fn, model_availability)
    VALUES (
        m.id, m.provider, m.model_type, m.request_url, m.qualified_name, m.auth_type,
        m.auth_id, m.header_gen_fn, m.input_transform_fn, m.output_transform_fn,
        m.input_batch_transform_fn, m.output_batch_transform_fn, m.model_availability);
END;
$$;

COMMENT ON PROCEDURE google_ml.create_model IS
    'Registers a model endpoint; URL, transforms and auth are filled in for models with built-in support.';


-- Changes the given (non-NULL) fields of a model and validates the result.
CREATE PROCEDURE google_ml.alter_model(
    model_id                      text,
    model_request_url             text DEFAULT NULL,
    model_provider                text DEFAULT NULL,
    model_type                    text DEFAULT NULL,
    model_qualified_name          text DEFAULT NULL,
    model_auth_type               text DEFAULT NULL,
    model_auth_id                 text DEFAULT NULL,
    generate_headers_fn           text DEFAULT NULL,
    model_in_transform_fn         text DEFAULT NULL,
    model_out_transform_fn        text DEFAULT NULL,
    model_batch_in_transform_fn   text DEFAULT NULL,
    model_batch_out_transform_fn  text DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    m google_ml.models;
BEGIN
    SELECT * INTO m FROM google_ml.models AS x
     WHERE x.id = alter_model.model_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', alter_model.model_id
            USING ERRCODE = 'undefined_object';
    END IF;

    m := google_ml._with_arguments(
        m, model_request_url, model_provider, alter_model.model_type, model_qualified_name,
        model_auth_type, model_auth_id, generate_headers_fn, model_in_transform_fn,
        model_out_transform_fn, model_batch_in_transform_fn, model_batch_out_transform_fn);
    IF model_auth_type = 'alloydb_service_agent_iam' THEN
        m.auth_id := NULL;  -- switching away from a secret
    END IF;
    m := google_ml._validated_model(m);

    UPDATE google_ml.models AS x
       SET provider = m.provider,
           model_type = m.model_type,
           request_url = m.request_url,
           qualified_name = m.qualified_name,
           auth_type = m.auth_type,
           auth_id = m.auth_id,
           header_gen_fn = m.header_gen_fn,
           input_transform_fn = m.input_transform_fn,
           output_transform_fn = m.output_transform_fn,
           input_batch_transform_fn = m.input_batch_transform_fn,
           output_batch_transform_fn = m.output_batch_transform_fn,
           updated_at = pg_catalog.now()
     WHERE x.id = m.id;
END;
$$;

COMMENT ON PROCEDURE google_ml.alter_model IS
    'Changes the given (non-NULL) fields of a registered model.';


CREATE PROCEDURE google_ml.drop_model(model_id text)
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM google_ml.models AS x WHERE x.id = drop_model.model_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', drop_model.model_id
            USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;

COMMENT ON PROCEDURE google_ml.drop_model IS 'Removes a model (pre-registered ones included).';


-- list_model returns one model as a record:
--
--   SELECT google_ml.list_model('id');                                   -- the documented form
--   SELECT * FROM google_ml.list_model('id') AS t(model_id varchar, ...); -- LangChain's form
--
-- Clients use several column definition lists (1.3: 9 columns; 1.5.3: 13, with
-- model_availability after model_id). PostgreSQL matches the returned record to the caller's
-- list by position and type after the function returns, and PL/pgSQL cannot see that list; so
-- the function reads it from the statement text (current_query()) when the statement has one
-- for list_model, and fills each column by name (unknown names get NULL). Otherwise (no list,
-- or a call from inside a function) it returns the list of its version:
-- google_ml._list_model_columns().
CREATE FUNCTION google_ml._list_model_columns()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT 'model_id varchar, model_request_url varchar, model_provider google_ml.model_provider, '
           'model_type google_ml.model_type, model_qualified_name varchar, '
           'model_auth_type google_ml.auth_type, model_auth_id varchar, '
           'input_transform_fn varchar, output_transform_fn varchar'::text
$$;

-- The (name, type) pairs of a column definition list, or NULL if it is not one: each item a
-- plain or quoted name and a type name (with an optional typmod and array brackets) that
-- PostgreSQL knows. Types are kept as written, so typmods match the caller's list.
CREATE FUNCTION google_ml._column_definitions(list text)
RETURNS TABLE (name text, type text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    item    text;
    parts   text[];
    names   text[] := '{}';
    types   text[] := '{}';
BEGIN
    IF list IS NULL THEN
        RETURN;
    END IF;
    FOREACH item IN ARRAY pg_catalog.regexp_split_to_array(list, ',(?![^(]*\))') LOOP
        parts := pg_catalog.regexp_match(item,
            '^\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+([A-Za-z_][A-Za-z0-9_$ .]*?(\s*\(\s*\d+\s*(,\s*\d+\s*)?\))?(\s*\[\s*\])*)\s*$');
        IF parts IS NULL OR pg_catalog.to_regtype(pg_catalog.regexp_replace(
               parts[2], '\(.*\)', '')) IS NULL THEN
            RETURN;  -- not a column definition list: nothing
        END IF;
        names := names || CASE WHEN parts[1] LIKE '"%' THEN replace(btrim(parts[1], '"'), '""', '"')
                               ELSE lower(parts[1]) END;
        types := types || parts[2];
    END LOOP;
    RETURN QUERY SELECT u.n, u.t FROM unnest(names, types) WITH ORDINALITY AS u (n, t, i)
                  ORDER BY u.i;
END;
$$;

CREATE FUNCTION google_ml.list_model(model_id text)
RETURNS record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    m        google_ml.models;
    vals     jsonb;
    query    text := coalesce(pg_catalog.current_query(), '');
    list     text;
    exprs    text;
    result   record;
BEGIN
    SELECT * INTO m FROM google_ml.models AS x WHERE x.id = list_model.model_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', list_model.model_id
            USING ERRCODE = 'undefined_object';
    END IF;
    vals := pg_catalog.jsonb_build_object(
        'model_id', m.id, 'id', m.id,
        'model_availability', m.model_availability,
        'model_request_url', m.request_url, 'request_url', m.request_url,
        'model_provider', m.provider, 'provider', m.provider,
        'model_type', m.model_type,
        'model_qualified_name', m.qualified_name, 'qualified_name', m.qualified_name,
        'model_auth_type', m.auth_type, 'auth_type', m.auth_type,
        'model_auth_id', m.auth_id, 'auth_id', m.auth_id,
        'header_gen_fn', m.header_gen_fn, 'generate_headers_fn', m.header_gen_fn,
        'input_transform_fn', m.input_transform_fn, 'model_in_transform_fn', m.input_transform_fn,
        'output_transform_fn', m.output_transform_fn, 'model_out_transform_fn', m.output_transform_fn,
        'input_batch_transform_fn', m.input_batch_transform_fn,
        'model_batch_in_transform_fn', m.input_batch_transform_fn,
        'output_batch_transform_fn', m.output_batch_transform_fn,
        'model_batch_out_transform_fn', m.output_batch_transform_fn,
        'is_preregistered', m.is_preregistered,
        'created_at', m.created_at,
        'updated_at', m.updated_at);

    -- The caller's column definition list: list_model(...) [AS] [alias] (name type, ...).
    list := (pg_catalog.regexp_match(query,
        'list_model\s*\((?:[^()]|\([^()]*\))*\)\s*(?:AS\s*)?(?:(?:"[^"]+"|[A-Za-z_]\w*)\s*)?\(((?:[^()]|\([^()]*\))*)\)',
        'i'))[1];
    SELECT pg_catalog.string_agg(pg_catalog.format('%L::%s', vals ->> d.name, d.type), ', ')
      INTO exprs
      FROM google_ml._column_definitions(list) AS d;
    IF exprs IS NULL THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('%L::%s', vals ->> d.name, d.type), ', ')
          INTO exprs
          FROM google_ml._column_definitions(google_ml._list_model_columns()) AS d;
    END IF;
    EXECUTE 'SELECT ' || exprs INTO result;
    RETURN result;
END;
$$;

COMMENT ON FUNCTION google_ml.list_model(text) IS
    'One model as a record: the caller''s column definition list (1.3, 1.5.3 or any other, filled by name), or the version''s list.';


-- ai.create_model: the same procedure under the ai schema.
CREATE PROCEDURE ai.create_model(
    model_id                      text,
    model_request_url             text DEFAULT NULL,
    model_provider                text DEFAULT NULL,
    model_type                    text DEFAULT NULL,
    model_qualified_name          text DEFAULT NULL,
    model_auth_type               text DEFAULT NULL,
    model_auth_id                 text DEFAULT NULL,
    generate_headers_fn           text DEFAULT NULL,
    model_in_transform_fn         text DEFAULT NULL,
    model_out_transform_fn        text DEFAULT NULL,
    model_batch_in_transform_fn   text DEFAULT NULL,
    model_batch_out_transform_fn  text DEFAULT NULL)
LANGUAGE plpgsql
AS $$
BEGIN
    CALL google_ml.create_model(
        model_id => model_id,
        model_request_url => model_request_url,
        model_provider => model_provider,
        model_type => model_type,
        model_qualified_name => model_qualified_name,
        model_auth_type => model_auth_type,
        model_auth_id => model_auth_id,
        generate_headers_fn => generate_headers_fn,
        model_in_transform_fn => model_in_transform_fn,
        model_out_transform_fn => model_out_transform_fn,
        model_batch_in_transform_fn => model_batch_in_transform_fn,
        model_batch_out_transform_fn => model_batch_out_transform_fn);
END;
$$;


-- @version 1.4.2

-- Pre-registered generic Gemini models (emulator/providers.py, PREREGISTERED).
INSERT INTO google_ml.models (
    id, provider, model_type, request_url, qualified_name, auth_type,
    input_transform_fn, output_transform_fn,
    input_batch_transform_fn, output_batch_transform_fn, is_preregistered)
VALUES
{{PREREGISTERED_1_4_2}}
-- A database updated from 1.3 may have a model of that id already: it keeps its own.
ON CONFLICT (id) DO NOTHING;


-- @version 1.5.2

-- Pre-registered with the AI functions: their default llm model and the reranking model
-- (emulator/providers.py, PREREGISTERED).
INSERT INTO google_ml.models (
    id, provider, model_type, request_url, qualified_name, auth_type,
    input_transform_fn, output_transform_fn,
    input_batch_transform_fn, output_batch_transform_fn, is_preregistered)
VALUES
{{PREREGISTERED_1_5_2}}
ON CONFLICT (id) DO NOTHING;


-- @version 1.5.3

-- 1.5.3 shows whether a model is available (the column the 1.5.3 list_model list has).
CREATE OR REPLACE VIEW google_ml.model_info_view
WITH (security_invoker = true)
AS
SELECT
    m.id::varchar                         AS model_id,
    m.request_url::varchar                AS model_request_url,
    m.provider                            AS model_provider,
    m.model_type                          AS model_type,
    m.qualified_name::varchar             AS model_qualified_name,
    m.auth_type                           AS model_auth_type,
    m.auth_id::varchar                    AS model_auth_id,
    m.header_gen_fn::varchar              AS header_gen_fn,
    m.input_transform_fn::varchar         AS input_transform_fn,
    m.output_transform_fn::varchar        AS output_transform_fn,
    m.input_batch_transform_fn::varchar   AS input_batch_transform_fn,
    m.output_batch_transform_fn::varchar  AS output_batch_transform_fn,
    m.model_availability::varchar         AS model_availability
FROM google_ml.models AS m;

-- list_model's record gains model_availability after model_id, and the header and batch
-- transform functions (LangChain's 1.5.3 list).
CREATE OR REPLACE FUNCTION google_ml._list_model_columns()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT 'model_id varchar, model_availability varchar, model_request_url varchar, '
           'model_provider google_ml.model_provider, model_type google_ml.model_type, '
           'model_qualified_name varchar, model_auth_type google_ml.auth_type, '
           'model_auth_id varchar, header_gen_fn varchar, input_transform_fn varchar, '
           'output_transform_fn varchar, input_batch_transform_fn varchar, '
           'output_batch_transform_fn varchar'::text
$$;
