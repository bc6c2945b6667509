-- google_ml_integration 1.5.2 (the base script), emulated on stock PostgreSQL.
--
-- What this script creates (see docs/extension.md for the full story):
--
--   1. schemas google_ml and ai, the enum types, the flag helpers
--   2. the model registry: google_ml.models, google_ml.secrets, model_info_view,
--      the pre-registered models (plain rows: they can be altered and dropped)
--   3. validation helpers and the management procedures
--      (create_model, alter_model, drop_model, list_model, *_sm_secret)
--   4. the built-in transform and header functions
--   5. the callback channel to the emulator engine (dblink's C functions,
--      google_ml._engine_endpoint, google_ml._call_engine)
--   6. the model-call functions (embedding, predict_row, ml_predict_row)
--   7. privileges and pg_dump configuration
--
-- Conventions:
--   * Every reference to an object of this extension is schema-qualified, so the
--     script and the functions behave the same whatever the caller's search_path.
--   * Functions that run in the caller's session (management, model calls,
--     transforms) are SECURITY INVOKER: PostgreSQL's own privilege checks apply.
--     The few SECURITY DEFINER helpers pin search_path to pg_catalog, pg_temp.
--   * SQLSTATEs, one per class of failure:
--       22023 invalid_parameter_value   bad argument value (unknown enum label, bad
--                                       secret path, missing URL, http:// refused)
--       42710 duplicate_object          model_id / secret_id already exists
--       42704 undefined_object          unknown model / secret
--       42883 undefined_function        transform or header function not found
--       42P13 invalid_function_definition  function found, wrong signature
--       55000 object_not_in_prerequisite_state  enable_model_support is off
--       08004 sqlserver_rejected_establishment_of_sqlconnection  no engine
--       22032 invalid_json_text         a provider response of unexpected shape

-- Complain if the script is sourced in psql rather than run by CREATE EXTENSION.
\echo Use "CREATE EXTENSION google_ml_integration" to load this file. \quit


-- ===========================================================================
-- 1. Schemas, types, flags
-- ===========================================================================

CREATE SCHEMA google_ml;
COMMENT ON SCHEMA google_ml IS
    'AlloyDB AI: model endpoint management, predictions, secrets';

CREATE SCHEMA ai;
COMMENT ON SCHEMA ai IS
    'AlloyDB AI: AI functions (mirrors google_ml)';

CREATE TYPE google_ml.model_provider AS ENUM (
    'google', 'open_ai', 'hugging_face', 'anthropic', 'custom'
);

CREATE TYPE google_ml.model_type AS ENUM (
    'text_embedding', 'generic', 'multimodal_embedding', 'reranking',
    'ts_forecasting', 'llm'
);

CREATE TYPE google_ml.auth_type AS ENUM (
    'alloydb_service_agent_iam', 'secret_manager'
);


-- The google_ml_integration.* settings: name (without prefix), default, description.
-- Stock PostgreSQL knows them only as placeholders, so the defaults live here.
CREATE FUNCTION google_ml._flag_defaults()
RETURNS TABLE (name text, default_value boolean, description text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES
        ('allow_http_endpoints', false,
         'Allows model request URLs that use http:// (otherwise only https://).'),
        ('enable_ai_query_engine', false,
         'Enables the AI query engine functions (ai.if, ai.rank, ai.generate).'),
        ('enable_faster_embedding_generation', false,
         'Enables faster embedding generation (ai.initialize_embeddings).'),
        ('enable_model_support', true,
         'Enables model endpoint management and model calls.'),
        ('enable_preview_ai_functions', false,
         'Enables the AI functions in preview.')
$$;

-- PostgreSQL's boolean spellings (on/off, true/false, yes/no, 1/0 and their
-- unique prefixes); NULL for anything else, so a bad value never breaks a query.
CREATE FUNCTION google_ml._parse_bool(value text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN v IN ('on', 't', 'tr', 'tru', 'true', 'y', 'ye', 'yes', '1') THEN true
        WHEN v IN ('off', 'of', 'f', 'fa', 'fal', 'fals', 'false', 'n', 'no', '0') THEN false
    END
    FROM (SELECT lower(btrim(value)) AS v) AS s
$$;

-- The effective value of google_ml_integration.<name>: the setting when it is set
-- (ALTER SYSTEM, ALTER DATABASE/ROLE, SET ...) and valid, its default otherwise.
CREATE FUNCTION google_ml._flag(name text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        google_ml._parse_bool(
            pg_catalog.current_setting('google_ml_integration.' || name, true)),
        (SELECT d.default_value FROM google_ml._flag_defaults() AS d
          WHERE d.name = _flag.name),
        false)
$$;

-- One pg_settings-shaped row per google_ml_integration.* flag. Same column names
-- and types as pg_catalog.pg_settings, in order, so the proxy can splice
-- google_ml.pg_settings_with_flags into a query that reads pg_settings.
CREATE VIEW google_ml._settings
WITH (security_invoker = true)
AS
SELECT
    'google_ml_integration.' || d.name                          AS name,
    CASE WHEN google_ml._flag(d.name) THEN 'on' ELSE 'off' END  AS setting,
    NULL::text                                                  AS unit,
    'Customized Options'::text                                  AS category,
    d.description                                               AS short_desc,
    NULL::text                                                  AS extra_desc,
    'user'::text                                                AS context,
    'bool'::text                                                AS vartype,
    CASE WHEN raw.value IS NULL THEN 'default' ELSE 'session' END AS source,
    NULL::text                                                  AS min_val,
    NULL::text                                                  AS max_val,
    NULL::text[]                                                AS enumvals,
    CASE WHEN d.default_value THEN 'on' ELSE 'off' END          AS boot_val,
    CASE WHEN google_ml._flag(d.name) THEN 'on' ELSE 'off' END  AS reset_val,
    NULL::text                                                  AS sourcefile,
    NULL::integer                                               AS sourceline,
    false                                                       AS pending_restart
FROM google_ml._flag_defaults() AS d
CROSS JOIN LATERAL (
    SELECT pg_catalog.current_setting('google_ml_integration.' || d.name, true) AS value
) AS raw;

COMMENT ON VIEW google_ml._settings IS
    'The google_ml_integration.* flags as pg_settings rows (stock PostgreSQL hides placeholders).';

-- pg_settings plus the flag rows it does not already have.
CREATE VIEW google_ml.pg_settings_with_flags
WITH (security_invoker = true)
AS
SELECT * FROM pg_catalog.pg_settings
UNION ALL
SELECT s.* FROM google_ml._settings AS s
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_settings AS p WHERE p.name = s.name);

COMMENT ON VIEW google_ml.pg_settings_with_flags IS
    'pg_catalog.pg_settings with the google_ml_integration.* flags added.';


-- ===========================================================================
-- 2. The model registry
-- ===========================================================================

CREATE TABLE google_ml.secrets (
    secret_id    text PRIMARY KEY,
    -- projects/P/secrets/S/versions/N|latest; the value itself is never stored.
    secret_path  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz
);

COMMENT ON TABLE google_ml.secrets IS
    'Secret Manager paths registered with google_ml.create_sm_secret (paths only, never values).';

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
    m.output_batch_transform_fn::varchar  AS output_batch_transform_fn,
    m.model_availability::varchar         AS model_availability
FROM google_ml.models AS m;

COMMENT ON VIEW google_ml.model_info_view IS
    'All models, pre-registered ones included.';


-- Request URL with built-in support, from provider, type and qualified name.
-- Vertex AI URLs are relative (publishers/google/models/M:verb); the engine
-- resolves them against the configured project and region. NULL: no URL to
-- store; for Vertex AI ranking that is built-in support (the engine builds the
-- Discovery Engine URL from the configured project), otherwise a URL is needed.
CREATE FUNCTION google_ml.generate_model_request_url(
    provider        google_ml.model_provider,
    model_type      google_ml.model_type,
    qualified_name  text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE provider
        WHEN 'google' THEN
            CASE
                WHEN qualified_name IS NULL OR qualified_name = '' THEN NULL
                WHEN qualified_name LIKE '%:%'
                    THEN 'publishers/google/models/' || qualified_name
                WHEN model_type IN ('text_embedding', 'multimodal_embedding')
                    THEN 'publishers/google/models/' || qualified_name || ':predict'
                WHEN model_type IN ('llm', 'generic')
                    THEN 'publishers/google/models/' || qualified_name || ':generateContent'
            END
        WHEN 'open_ai' THEN
            CASE model_type
                WHEN 'text_embedding' THEN 'https://api.openai.com/v1/embeddings'
                WHEN 'llm' THEN 'https://api.openai.com/v1/chat/completions'
                WHEN 'generic' THEN 'https://api.openai.com/v1/chat/completions'
            END
        WHEN 'anthropic' THEN 'https://api.anthropic.com/v1/messages'
        WHEN 'hugging_face' THEN
            CASE WHEN qualified_name IS NOT NULL AND qualified_name <> ''
                THEN 'https://api-inference.huggingface.co/models/' || qualified_name
            END
    END
$$;


-- Pre-registered models (reference section 6): plain rows, so they can be
-- altered and dropped like any other.
INSERT INTO google_ml.models (
    id, provider, model_type, request_url, qualified_name, auth_type,
    input_transform_fn, output_transform_fn,
    input_batch_transform_fn, output_batch_transform_fn, is_preregistered)
SELECT
    e.id, 'google', 'text_embedding',
    google_ml.generate_model_request_url('google', 'text_embedding', e.id),
    e.id, 'alloydb_service_agent_iam',
    'google_ml.vertexai_text_embedding_input_transform',
    'google_ml.vertexai_text_embedding_output_transform',
    'google_ml.vertexai_text_embedding_batch_input_transform',
    'google_ml.vertexai_text_embedding_batch_output_transform',
    true
FROM (VALUES
    ('textembedding-gecko'),
    ('textembedding-gecko@001'),
    ('textembedding-gecko@003'),
    ('textembedding-gecko-multilingual@001'),
    ('text-embedding-005'),
    ('gemini-embedding-001')
) AS e (id);

INSERT INTO google_ml.models (
    id, provider, model_type, request_url, qualified_name, auth_type, is_preregistered)
VALUES
    ('gemini-1.5-pro:generateContent', 'google', 'generic',
     'publishers/google/models/gemini-1.5-pro:generateContent', 'gemini-1.5-pro',
     'alloydb_service_agent_iam', true),
    ('gemini-1.5-pro:streamGenerateContent', 'google', 'generic',
     'publishers/google/models/gemini-1.5-pro:streamGenerateContent', 'gemini-1.5-pro',
     'alloydb_service_agent_iam', true),
    ('gemini-1.0-pro:generateContent', 'google', 'generic',
     'publishers/google/models/gemini-1.0-pro:generateContent', 'gemini-1.0-pro',
     'alloydb_service_agent_iam', true);

INSERT INTO google_ml.models (
    id, provider, model_type, request_url, qualified_name, auth_type,
    input_transform_fn, output_transform_fn,
    input_batch_transform_fn, output_batch_transform_fn, is_preregistered)
VALUES
    ('gemini-2.5-flash-lite', 'google', 'llm',
     'publishers/google/models/gemini-2.5-flash-lite:generateContent',
     'gemini-2.5-flash-lite', 'alloydb_service_agent_iam',
     'google_ml.gemini_llm_input_transform',
     'google_ml.gemini_llm_output_transform',
     'google_ml.gemini_llm_batch_input_transform',
     'google_ml.gemini_llm_batch_output_transform',
     true),
    ('semantic-ranker-default-003', 'google', 'reranking',
     NULL,
     'semantic-ranker-default-003', 'alloydb_service_agent_iam',
     NULL,
     'google_ml.vertexai_reranking_output_transform',
     NULL, NULL,
     true);


-- ===========================================================================
-- 3. Validation helpers and management procedures
-- ===========================================================================

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

-- A Secret Manager secret version path; checked by shape only, so placeholders
-- such as projects/PROJECT_ID/secrets/S/versions/VERSION_NUMBER are accepted.
CREATE FUNCTION google_ml._check_secret_path(secret_path text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF secret_path IS NULL
       OR secret_path !~ '^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$' THEN
        RAISE EXCEPTION 'invalid secret_path: "%"', secret_path
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A secret path looks like projects/PROJECT/secrets/NAME/versions/VERSION (a number or latest).';
    END IF;
    RETURN secret_path;
END;
$$;


-- The signature a transform or header function must have, per role:
--   header     (model_id text-like, input text-like|json|jsonb) -> json|jsonb
--   in         (model_id text-like, input_text text-like [, generation_config json,
--               system_instruction text]) -> json|jsonb
--   out        (model_id text-like, response json|jsonb) -> real[] for text_embedding,
--              text for llm, anything for other types
--   batch_in   (model_id text-like, inputs text[]|varchar[] [, json, text]) -> json|jsonb
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
        AND NOT p.proretset
        AND p.pronargs >= 2
        AND p.pronargs - p.pronargdefaults <= CASE WHEN role IN ('in', 'batch_in') THEN 4 ELSE 2 END
        AND p.pronargs <= CASE WHEN role IN ('in', 'batch_in') THEN 4 ELSE 2 END
        AND p.proargtypes[0] IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
        AND CASE role
            WHEN 'header' THEN
                p.proargtypes[1] IN ('text'::regtype, 'varchar'::regtype,
                                     'json'::regtype, 'jsonb'::regtype)
                AND p.prorettype IN ('json'::regtype, 'jsonb'::regtype)
            WHEN 'in' THEN
                p.proargtypes[1] IN ('text'::regtype, 'varchar'::regtype)
                AND (p.pronargs < 3 OR p.proargtypes[2] IN ('json'::regtype, 'jsonb'::regtype))
                AND (p.pronargs < 4 OR p.proargtypes[3] IN ('text'::regtype, 'varchar'::regtype))
                AND p.prorettype IN ('json'::regtype, 'jsonb'::regtype)
            WHEN 'out' THEN
                p.proargtypes[1] IN ('json'::regtype, 'jsonb'::regtype)
                AND CASE model_type
                    WHEN 'text_embedding' THEN p.prorettype = 'real[]'::regtype
                    WHEN 'multimodal_embedding' THEN p.prorettype = 'real[]'::regtype
                    WHEN 'llm' THEN p.prorettype IN ('text'::regtype, 'varchar'::regtype)
                    ELSE p.prorettype <> 'void'::regtype
                END
            WHEN 'batch_in' THEN
                p.proargtypes[1] IN ('text[]'::regtype, 'varchar[]'::regtype)
                AND (p.pronargs < 3 OR p.proargtypes[2] IN ('json'::regtype, 'jsonb'::regtype))
                AND (p.pronargs < 4 OR p.proargtypes[3] IN ('text'::regtype, 'varchar'::regtype))
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
        WHEN 'in' THEN
            CASE WHEN model_type = 'llm'
                THEN '(model_id VARCHAR(100), input_text TEXT, generation_config JSON, system_instruction TEXT) RETURNS JSON'
                ELSE '(model_id VARCHAR(100), input_text TEXT) RETURNS JSON'
            END
        WHEN 'out' THEN
            '(model_id VARCHAR(100), response_json JSON) RETURNS '
            || CASE
                   WHEN model_type IN ('text_embedding', 'multimodal_embedding') THEN 'REAL[]'
                   WHEN model_type = 'llm' THEN 'TEXT'
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
        RAISE EXCEPTION '%: function "%" does not exist', argument, name
            USING ERRCODE = 'undefined_function',
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
        RAISE EXCEPTION 'model "%" already exists', create_model.model_id
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


-- list_model returns one record shaped by the caller's column definition list:
--
--   SELECT * FROM google_ml.list_model('id') AS t(model_id varchar, ...);
--
-- Clients use several lists (1.3: 9 columns; 1.5.3: 13, with model_availability
-- after model_id). A PL/pgSQL function cannot read the caller's list, but in a
-- set-returning function RETURN QUERY is checked against it immediately, and a
-- mismatch is a catchable 42804 whose DETAIL names the expected column count, or
-- the name, type and position of the first mismatching column. So: try the two
-- known lists first (cheap, locale-independent), then learn the caller's list one
-- column at a time from those DETAILs and fill each column by its name. Columns
-- with unknown names get NULL. Hence RETURNS SETOF record (one row) instead of
-- RETURNS record; the call syntax is the same.
CREATE FUNCTION google_ml.list_model(model_id text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
ROWS 1
AS $$
DECLARE
    m           google_ml.models;
    vals        jsonb;
    detail      text;
    n_columns   int;
    exprs       text[];
    mismatch    text[];
    position    int;
    attempts    int := 0;
BEGIN
    SELECT * INTO m FROM google_ml.models AS x WHERE x.id = list_model.model_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', list_model.model_id
            USING ERRCODE = 'undefined_object';
    END IF;

    -- The 1.5.3 list.
    BEGIN
        RETURN QUERY SELECT
            m.id::varchar, m.model_availability::varchar, m.request_url::varchar,
            m.provider, m.model_type, m.qualified_name::varchar, m.auth_type,
            m.auth_id::varchar, m.header_gen_fn::varchar, m.input_transform_fn::varchar,
            m.output_transform_fn::varchar, m.input_batch_transform_fn::varchar,
            m.output_batch_transform_fn::varchar;
        RETURN;
    EXCEPTION
        WHEN datatype_mismatch THEN NULL;
        WHEN feature_not_supported THEN
            RAISE EXCEPTION 'google_ml.list_model needs a column definition list'
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'SELECT * FROM google_ml.list_model(''id'') AS t(model_id varchar, model_request_url varchar, ...)';
    END;

    -- The 1.3 list.
    BEGIN
        RETURN QUERY SELECT
            m.id::varchar, m.request_url::varchar, m.provider, m.model_type,
            m.qualified_name::varchar, m.auth_type, m.auth_id::varchar,
            m.input_transform_fn::varchar, m.output_transform_fn::varchar;
        RETURN;
    EXCEPTION WHEN datatype_mismatch THEN NULL;
    END;

    -- Any other list: learn it from the mismatch details.
    vals := pg_catalog.jsonb_build_object(
        'model_id', m.id,
        'id', m.id,
        'model_availability', m.model_availability,
        'model_request_url', m.request_url,
        'request_url', m.request_url,
        'model_provider', m.provider,
        'provider', m.provider,
        'model_type', m.model_type,
        'model_qualified_name', m.qualified_name,
        'qualified_name', m.qualified_name,
        'model_auth_type', m.auth_type,
        'auth_type', m.auth_type,
        'model_auth_id', m.auth_id,
        'auth_id', m.auth_id,
        'header_gen_fn', m.header_gen_fn,
        'generate_headers_fn', m.header_gen_fn,
        'input_transform_fn', m.input_transform_fn,
        'model_in_transform_fn', m.input_transform_fn,
        'output_transform_fn', m.output_transform_fn,
        'model_out_transform_fn', m.output_transform_fn,
        'input_batch_transform_fn', m.input_batch_transform_fn,
        'model_batch_in_transform_fn', m.input_batch_transform_fn,
        'output_batch_transform_fn', m.output_batch_transform_fn,
        'model_batch_out_transform_fn', m.output_batch_transform_fn,
        'is_preregistered', m.is_preregistered,
        'created_at', m.created_at,
        'updated_at', m.updated_at);

    BEGIN
        RETURN QUERY SELECT WHERE false;  -- zero columns: the DETAIL gives the count
        RETURN;
    EXCEPTION WHEN datatype_mismatch THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    END;
    n_columns := (pg_catalog.regexp_match(detail, 'expected column count \((\d+)\)'))[1]::int;
    IF n_columns IS NULL THEN
        RAISE EXCEPTION 'google_ml.list_model: cannot match the column definition list'
            USING ERRCODE = 'datatype_mismatch', DETAIL = detail;
    END IF;
    -- pg_node_tree: a placeholder type no column definition list asks for.
    exprs := pg_catalog.array_fill('NULL::pg_catalog.pg_node_tree'::text, ARRAY[n_columns]);

    LOOP
        attempts := attempts + 1;
        BEGIN
            RETURN QUERY EXECUTE 'SELECT ' || pg_catalog.array_to_string(exprs, ', ');
            RETURN;
        EXCEPTION WHEN datatype_mismatch THEN
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        END;
        mismatch := pg_catalog.regexp_match(
            detail, 'expected type (.+) in column "(.*)" \(position (\d+)\)\.?$');
        position := mismatch[3]::int;
        IF mismatch IS NULL OR attempts > n_columns + 1
           OR exprs[position] <> 'NULL::pg_catalog.pg_node_tree' THEN
            RAISE EXCEPTION 'google_ml.list_model: cannot match the column definition list'
                USING ERRCODE = 'datatype_mismatch', DETAIL = detail;
        END IF;
        -- mismatch[1] is format_type() output, already quoted by PostgreSQL.
        exprs[position] := pg_catalog.format('%L::%s', vals ->> mismatch[2], mismatch[1]);
    END LOOP;
END;
$$;

COMMENT ON FUNCTION google_ml.list_model(text) IS
    'One model, shaped by the caller''s column definition list (1.3 and 1.5.3 lists, or any subset of model_info_view columns).';


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


-- Secrets: paths to Google Secret Manager secret versions.
CREATE PROCEDURE google_ml.create_sm_secret(secret_id text, secret_path text)
LANGUAGE plpgsql
AS $$
BEGIN
    IF create_sm_secret.secret_id IS NULL OR btrim(create_sm_secret.secret_id) = '' THEN
        RAISE EXCEPTION 'secret_id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM google_ml._check_secret_path(create_sm_secret.secret_path);
    IF EXISTS (SELECT 1 FROM google_ml.secrets AS s
                WHERE s.secret_id = create_sm_secret.secret_id) THEN
        RAISE EXCEPTION 'secret "%" already exists', create_sm_secret.secret_id
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use google_ml.alter_sm_secret to change its path.';
    END IF;
    INSERT INTO google_ml.secrets (secret_id, secret_path)
    VALUES (create_sm_secret.secret_id, create_sm_secret.secret_path);
END;
$$;

CREATE PROCEDURE google_ml.alter_sm_secret(secret_id text, secret_path text)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM google_ml._check_secret_path(alter_sm_secret.secret_path);
    UPDATE google_ml.secrets AS s
       SET secret_path = alter_sm_secret.secret_path,
           updated_at = pg_catalog.now()
     WHERE s.secret_id = alter_sm_secret.secret_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'secret "%" does not exist', alter_sm_secret.secret_id
            USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;

CREATE PROCEDURE google_ml.drop_sm_secret(secret_id text)
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM google_ml.secrets AS s WHERE s.secret_id = drop_sm_secret.secret_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'secret "%" does not exist', drop_sm_secret.secret_id
            USING ERRCODE = 'undefined_object';
    END IF;
END;
$$;


-- ===========================================================================
-- 4. Built-in transform and header functions
-- ===========================================================================

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
    SELECT pg_catalog.json_build_object('anthropic-version', '2023-06-01')
$$;


-- ===========================================================================
-- 5. The callback channel to the emulator engine (docs/internals.md)
-- ===========================================================================

-- dblink's C functions, declared here so that neither CREATE EXTENSION dblink nor
-- its absence matters. Only _call_engine uses them.
CREATE FUNCTION google_ml._dblink_connect(text, text)
RETURNS text
AS '$libdir/dblink', 'dblink_connect'
LANGUAGE C STRICT;

CREATE FUNCTION google_ml._dblink(text, text)
RETURNS SETOF record
AS '$libdir/dblink', 'dblink_record'
LANGUAGE C STRICT;

CREATE FUNCTION google_ml._dblink_disconnect(text)
RETURNS text
AS '$libdir/dblink', 'dblink_disconnect'
LANGUAGE C STRICT;

CREATE FUNCTION google_ml._dblink_get_connections()
RETURNS text[]
AS '$libdir/dblink', 'dblink_get_connections'
LANGUAGE C;

-- Where the engine listens: one row per emulator instance (several may front one
-- server behind a load balancer), written by each proxy (upsert). A session learns
-- its instance from google_ml_integration.emulator_instance, which the proxy adds to
-- its startup options. The conninfo carries the run's password; no privileges for
-- PUBLIC.
CREATE TABLE google_ml._engine_endpoint (
    instance    text PRIMARY KEY DEFAULT '',
    conninfo    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE google_ml._engine_endpoint IS
    'The emulator engine''s callback endpoint (libpq conninfo), written by the proxy.';

-- The documented GRANT ... ON ALL TABLES IN SCHEMA google_ml TO u would also
-- reach this table; row level security without a policy keeps its row (and the
-- password in it) away from everyone but superusers and the owner.
ALTER TABLE google_ml._engine_endpoint ENABLE ROW LEVEL SECURITY;

-- Opens this backend's named connection to the engine. The callback server
-- identifies the session by application_name = the leader backend's pid
-- (parallel workers count as their leader).
CREATE FUNCTION google_ml._engine_connect(connection_name text)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    endpoint    text;
    leader_pid  int;
BEGIN
    -- This session's emulator; a session that did not come through one gets any, whose
    -- callback then says how to connect.
    SELECT e.conninfo INTO endpoint
      FROM google_ml._engine_endpoint AS e
     ORDER BY e.instance = coalesce(
                  pg_catalog.current_setting('google_ml_integration.emulator_instance', true), '')
              DESC, e.updated_at DESC
     LIMIT 1;
    IF endpoint IS NULL THEN
        -- The embedded server's emulator also leaves it in the data directory, which covers a
        -- database whose row is not written yet (CREATE EXTENSION and a call in one message).
        endpoint := nullif(btrim(pg_catalog.pg_read_file(
            'alloydb_ai_emulator.conninfo', 0, 4096, true)), '');
    END IF;
    IF endpoint IS NULL THEN
        RAISE EXCEPTION 'model calls need the AlloyDB AI emulator: connect through the emulator (alloydb-ai-emulator serve) instead of directly to PostgreSQL'
            USING ERRCODE = 'sqlserver_rejected_establishment_of_sqlconnection';
    END IF;
    SELECT coalesce(a.leader_pid, a.pid) INTO leader_pid
      FROM pg_catalog.pg_stat_activity AS a
     WHERE a.pid = pg_catalog.pg_backend_pid();
    IF leader_pid IS NOT NULL AND leader_pid <> pg_catalog.pg_backend_pid() THEN
        connection_name := connection_name || '_worker';  -- see _call_engine_text
    END IF;
    IF connection_name = ANY (coalesce(google_ml._dblink_get_connections(), '{}')) THEN
        PERFORM google_ml._dblink_disconnect(connection_name);
    END IF;
    PERFORM google_ml._dblink_connect(
        connection_name,
        endpoint || ' application_name=' || coalesce(leader_pid, pg_catalog.pg_backend_pid()));
    RETURN connection_name;
END;
$$;

-- Any user may call _call_engine_text (every model call goes through it), so it
-- must not trust where a request goes or with which credentials: a caller could
-- otherwise send someone's secret, or the service account's token, to a host of
-- their own. The URL and the auth of each request are taken from the model
-- registry (or, for an unregistered Vertex AI model, from its name) here, as the
-- definer; only headers and body come from the caller's transforms.
CREATE FUNCTION google_ml._authorized_request(request jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m       google_ml.models;
    result  jsonb := '[]';
    item    jsonb;
BEGIN
    IF request ->> 'op' = 'invoke_batch' THEN
        FOR item IN SELECT * FROM jsonb_array_elements(request -> 'requests') LOOP
            result := result || jsonb_build_array(google_ml._authorized_request(item));
        END LOOP;
        RETURN jsonb_set(request, '{requests}', result);
    END IF;
    SELECT * INTO m FROM google_ml.models AS x WHERE x.id = request ->> 'model_id';
    IF m.id IS NULL THEN
        m := google_ml._vertex_model(request ->> 'model_id',
                                     coalesce(request ->> 'model_type', 'generic')::google_ml.model_type);
    END IF;
    IF m.id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', request ->> 'model_id'
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN request || jsonb_build_object(
        'provider', m.provider,
        'model_type', m.model_type,
        'qualified_name', m.qualified_name,
        'url', google_ml._url_for_call(m),
        'auth', google_ml._auth_for_call(m));
END;
$$;

REVOKE ALL ON FUNCTION google_ml._authorized_request(jsonb) FROM PUBLIC;

-- Hands one request (docs/internals.md) to the engine and returns its answer as
-- text (large batched answers stay text: json, not jsonb, is cheap to walk once).
-- One named connection per backend, kept open; reconnects once if it was lost.
-- Engine errors arrive as PostgreSQL errors with the engine's SQLSTATE.
CREATE FUNCTION google_ml._call_engine_text(request jsonb)
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
BEGIN
    request := google_ml._authorized_request(request);
    -- dblink waits for the answer even when the statement is cancelled or times out, so
    -- the engine keeps the statement_timeout: it answers 57014 when this much time is left.
    timeout_ms := extract(epoch FROM pg_catalog.current_setting('statement_timeout')::interval) * 1000;
    IF timeout_ms > 0 THEN
        request := request || jsonb_build_object('deadline_ms', greatest(0, timeout_ms
            - extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000));
    END IF;
    IF worker_connection = ANY (open_connections) THEN
        -- A parallel worker: no subtransactions allowed (so no retry), and it is short-lived.
        SELECT t.r INTO response
          FROM google_ml._dblink(worker_connection, request::text) AS t (r text);
    ELSIF connection_name = ANY (open_connections) THEN
        BEGIN
            SELECT t.r INTO response
              FROM google_ml._dblink(connection_name, request::text) AS t (r text);
        EXCEPTION WHEN connection_failure THEN
            -- 08006: the connection broke (engine restarted, proxy gone). Once more.
            PERFORM google_ml._engine_connect(connection_name);
            SELECT t.r INTO response
              FROM google_ml._dblink(connection_name, request::text) AS t (r text);
        END;
    ELSE
        -- First call of this backend: a new connection, named for what this process is.
        SELECT t.r INTO response
          FROM google_ml._dblink(google_ml._engine_connect(connection_name), request::text)
               AS t (r text);
    END IF;
    IF response IS NULL THEN
        RAISE EXCEPTION 'the emulator engine returned no response for model "%"',
                        request ->> 'model_id'
            USING ERRCODE = 'protocol_violation';
    END IF;
    RETURN response;
END;
$$;

CREATE FUNCTION google_ml._call_engine(request jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml._call_engine_text(request)::jsonb
$$;

COMMENT ON FUNCTION google_ml._call_engine(jsonb) IS
    'Sends a request to the emulator engine through the callback channel (docs/internals.md).';


-- ===========================================================================
-- 6. Model calls
-- ===========================================================================

-- 55000 unless google_ml_integration.enable_model_support is on.
CREATE FUNCTION google_ml._require_model_support()
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    IF NOT google_ml._flag('enable_model_support') THEN
        RAISE EXCEPTION 'model support is disabled: google_ml_integration.enable_model_support is off'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'ALTER SYSTEM SET google_ml_integration.enable_model_support = on; '
                         'SELECT pg_reload_conf(); (or SET it for this session).';
    END IF;
END;
$$;

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

-- The headers from a model's header function ({} if it has none).
CREATE FUNCTION google_ml._headers_for_call(m google_ml.models, input_text text, input_json json)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    fn       regprocedure;
    headers  jsonb;
BEGIN
    IF m.header_gen_fn IS NULL THEN
        RETURN '{}'::jsonb;
    ELSIF m.header_gen_fn = 'google_ml.anthropic_claude_header_gen_fn' THEN
        RETURN google_ml.anthropic_claude_header_gen_fn(m.id, input_json)::jsonb;
    END IF;
    fn := google_ml._resolve_function(m.header_gen_fn, 'header', m.model_type, 'generate_headers_fn');
    IF input_json IS NOT NULL THEN
        EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,json}')
                || '::jsonb' INTO headers USING m.id::text, input_json;
    ELSE
        EXECUTE 'SELECT ' || google_ml._call_expression(fn, '{text,text}')
                || '::jsonb' INTO headers USING m.id::text, input_text;
    END IF;
    IF headers IS NOT NULL AND jsonb_typeof(headers) <> 'object' THEN
        RAISE EXCEPTION 'model "%": header function % must return a JSON object', m.id, m.header_gen_fn
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN coalesce(headers, '{}'::jsonb);
END;
$$;

-- Builds the request of docs/internals.md and sends it to the engine.
CREATE FUNCTION google_ml._invoke(m google_ml.models, headers jsonb, body jsonb)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml._call_engine(jsonb_build_object(
        'op', 'invoke',
        'model_id', m.id,
        'provider', m.provider,
        'model_type', m.model_type,
        'qualified_name', m.qualified_name,
        'url', google_ml._url_for_call(m),
        'headers', coalesce(headers, '{}'::jsonb),
        'auth', google_ml._auth_for_call(m),
        'body', body))
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
    m.id := name;
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

-- A registered model, or 42704 naming it.
CREATE FUNCTION google_ml._registered_model(model_id text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._model_for_call(model_id);
BEGIN
    IF m.id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', model_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it with CALL google_ml.create_model(...), or list models with SELECT * FROM google_ml.model_info_view.';
    END IF;
    RETURN m;
END;
$$;


-- google_ml.embedding: a registered (or pre-registered) text_embedding model.
CREATE FUNCTION google_ml.embedding(model_id text, content text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
    PERFORM google_ml._require_model_support();
    RETURN google_ml._embed(google_ml._registered_model(model_id), content);
END;
$$;

COMMENT ON FUNCTION google_ml.embedding(text, text) IS
    'Embedding of content by a registered text_embedding model.';

CREATE FUNCTION ai.embedding(model_id text, content text)
RETURNS real[]
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml.embedding(model_id, content)
$$;

-- public.embedding: registered models, and also any Vertex AI embedding model
-- by bare name or full path, without registration.
CREATE FUNCTION public.embedding(model_id text, content text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
    PERFORM google_ml._require_model_support();
    m := google_ml._model_for_call(model_id);
    IF m.id IS NULL THEN
        m := google_ml._vertex_model(model_id, 'text_embedding');
    END IF;
    IF m.id IS NULL THEN
        m := google_ml._registered_model(model_id);  -- raises 42704
    END IF;
    RETURN google_ml._embed(m, content);
END;
$$;

COMMENT ON FUNCTION public.embedding(text, text) IS
    'Embedding of content by a registered model or a Vertex AI model named by id or path.';


-- Sends request_body as is and returns the raw response.
CREATE FUNCTION google_ml._predict(m google_ml.models, request_body json)
RETURNS json
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml._invoke(
               m, google_ml._headers_for_call(m, NULL, request_body), request_body::jsonb)::json
$$;

CREATE FUNCTION google_ml.predict_row(model_id text, request_body json)
RETURNS json
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
    PERFORM google_ml._require_model_support();
    RETURN google_ml._predict(google_ml._registered_model(model_id), request_body);
END;
$$;

COMMENT ON FUNCTION google_ml.predict_row(text, json) IS
    'Sends request_body as is to a registered model and returns the raw response.';

CREATE FUNCTION ai.predict_row(model_id text, request_body json)
RETURNS json
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT google_ml.predict_row(model_id, request_body)
$$;

-- ml_predict_row: a Vertex AI endpoint path
-- (projects/P/locations/R/publishers/google/models/M:verb, .../endpoints/E,
-- or without the projects/P/locations/R/ prefix), or a registered model id.
CREATE FUNCTION public.ml_predict_row(endpoint text, body json)
RETURNS json
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models;
BEGIN
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


-- ===========================================================================
-- 7. Privileges and pg_dump
-- ===========================================================================

GRANT USAGE ON SCHEMA google_ml TO PUBLIC;
GRANT USAGE ON SCHEMA ai TO PUBLIC;

-- Functions and procedures are executable by PUBLIC by default; the dblink
-- entry points and the engine plumbing are not.
REVOKE ALL ON FUNCTION google_ml._dblink_connect(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink_disconnect(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink_get_connections() FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._engine_connect(text) FROM PUBLIC;
REVOKE ALL ON TABLE google_ml._engine_endpoint FROM PUBLIC;
-- _call_engine stays executable: every model call of every user goes through it.

-- Model metadata: the tables belong to the installing superuser; a DBA grants
-- GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA google_ml TO u.
-- The settings views read only pg_settings and current_setting(), so anyone may.
GRANT SELECT ON google_ml._settings TO PUBLIC;
GRANT SELECT ON google_ml.pg_settings_with_flags TO PUBLIC;

-- pg_dump keeps user rows; pre-registered rows come back with CREATE EXTENSION
-- (altered ones are dumped and replace them on restore, see the trigger).
SELECT pg_catalog.pg_extension_config_dump(
    'google_ml.models', 'WHERE NOT is_preregistered OR updated_at IS NOT NULL');
SELECT pg_catalog.pg_extension_config_dump('google_ml.secrets', '');
