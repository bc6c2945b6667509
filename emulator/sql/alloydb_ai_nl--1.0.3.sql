-- alloydb_ai_nl 1.0.3, emulated on stock PostgreSQL (docs/natural-language.md).
--
-- What this script creates:
--
--   1. schema alloydb_ai_nl, the flag check, name helpers
--   2. configurations: g_create_configuration, g_manage_configuration, general context
--   3. schema context: generate / review / update / apply, get_* and set_* context
--   4. concept types, associations (manual and generated), the value index, synonyms
--   5. templates and fragments (add, views, enable / disable / drop, generated templates)
--   6. get_sql, execute_nl_query, get_sql_summary
--
-- Conventions:
--   * Everything the user calls is SECURITY INVOKER: the generated SQL is checked (EXPLAIN)
--     and run with the caller's rights only. Reading the stores for a question goes through
--     one SECURITY DEFINER helper (_question_context) that returns JSON.
--   * SQL generation, context descriptions, template checks and summaries are asked of the
--     emulator engine (op "alloydb_ai_nl", emulator/nl/): deterministic in fake mode, Gemini
--     in live mode. They use google_ml._call_engine, so they need the emulator's proxy.
--   * SQLSTATEs: 22023 bad argument, 42704 unknown configuration / concept type / template,
--     42P01 unknown relation, 42703 unknown column, 3F000 unknown schema, 42710 duplicate,
--     55000 alloydb_ai_nl.enabled is off, P0001 a check that failed (as AlloyDB raises it).

\echo Use "CREATE EXTENSION alloydb_ai_nl CASCADE" to load this file. \quit

-- ===========================================================================
-- 1. Schema, flag, helpers
-- ===========================================================================

CREATE SCHEMA alloydb_ai_nl;
GRANT USAGE ON SCHEMA alloydb_ai_nl TO PUBLIC;

-- The flag alloydb_ai_nl.enabled. AlloyDB turns it on per instance; the emulator treats an unset
-- flag as on (nothing to configure) and honours an explicit off.
CREATE FUNCTION alloydb_ai_nl.g_check_alloydb_ai_nl_enabled()
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF google_ml._parse_bool(pg_catalog.current_setting('alloydb_ai_nl.enabled', true)) IS FALSE THEN
        RAISE EXCEPTION 'AlloyDB AI natural language is not enabled'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set the flag alloydb_ai_nl.enabled to on (ALTER SYSTEM SET alloydb_ai_nl.enabled = on; SELECT pg_reload_conf();).';
    END IF;
END;
$$;

-- A relation name as the user wrote it -> its oid, or a clear error.
CREATE FUNCTION alloydb_ai_nl._relation(name text)
RETURNS regclass
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel regclass;
BEGIN
    rel := pg_catalog.to_regclass(btrim(name));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation "%" does not exist', btrim(name)
            USING ERRCODE = 'undefined_table',
                  HINT = 'Name a table, view or materialized view as schema.name.';
    END IF;
    RETURN rel;
END;
$$;

-- schema.name of a relation, always qualified (what the views show).
CREATE FUNCTION alloydb_ai_nl._relation_name(rel regclass)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT n.nspname || '.' || c.relname
      FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = rel
$$;

-- 'schema.table.column' -> (relation, column), or a clear error.
CREATE FUNCTION alloydb_ai_nl._column(name text, OUT rel regclass, OUT col name)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    dot int := length(btrim(name)) - strpos(reverse(btrim(name)), '.') + 1;
BEGIN
    IF strpos(btrim(name), '.') = 0 THEN
        RAISE EXCEPTION 'column name "%" is not qualified', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name a column as schema.table.column.';
    END IF;
    rel := alloydb_ai_nl._relation(substr(btrim(name), 1, dot - 1));
    col := substr(btrim(name), dot + 1);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0
                      AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, alloydb_ai_nl._relation_name(rel)
            USING ERRCODE = 'undefined_column';
    END IF;
END;
$$;

-- ===========================================================================
-- 2. Configurations
-- ===========================================================================

CREATE TABLE alloydb_ai_nl.g_configuration (
    configuration_id text PRIMARY KEY,
    model_id         text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- AlloyDB's own name for the configurations table (its alloydb_ai_nl reads the model of a
-- configuration FROM alloydb_ai_nl.g_magic_configuration WHERE configuration_id = ...). Google's
-- MCP Toolbox notebook (docs/en/samples/alloydb/ai-nl/alloydb_ai_nl.ipynb), run on AlloyDB,
-- creates its configuration only IF NOT EXISTS (SELECT 1 FROM it WHERE configuration_id = ...).
CREATE VIEW alloydb_ai_nl.g_magic_configuration AS
    SELECT configuration_id, model_id, NULL::jsonb AS model_parameters, created_at
      FROM alloydb_ai_nl.g_configuration;

CREATE TABLE alloydb_ai_nl.g_configuration_relation (
    configuration_id text NOT NULL REFERENCES alloydb_ai_nl.g_configuration ON DELETE CASCADE,
    relation         oid NOT NULL,
    PRIMARY KEY (configuration_id, relation)
);

CREATE TABLE alloydb_ai_nl.g_configuration_schema (
    configuration_id text NOT NULL REFERENCES alloydb_ai_nl.g_configuration ON DELETE CASCADE,
    schema_name      name NOT NULL,
    PRIMARY KEY (configuration_id, schema_name)
);

CREATE TABLE alloydb_ai_nl.g_general_context (
    id               bigserial PRIMARY KEY,
    configuration_id text NOT NULL REFERENCES alloydb_ai_nl.g_configuration ON DELETE CASCADE,
    context          text NOT NULL
);

CREATE FUNCTION alloydb_ai_nl._check_configuration(configuration_id text)
RETURNS alloydb_ai_nl.g_configuration
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    cfg alloydb_ai_nl.g_configuration;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    SELECT * INTO cfg FROM alloydb_ai_nl.g_configuration AS c
     WHERE c.configuration_id = _check_configuration.configuration_id;
    IF cfg.configuration_id IS NULL THEN
        RAISE EXCEPTION 'The configuration % does not exist.', coalesce(configuration_id, 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with alloydb_ai_nl.g_create_configuration(''' || coalesce(configuration_id, '') || ''').';
    END IF;
    RETURN cfg;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.g_create_configuration(
    configuration_id text,
    model_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    IF coalesce(btrim(configuration_id), '') = '' THEN
        RAISE EXCEPTION 'configuration_id must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM alloydb_ai_nl.g_configuration AS c
                WHERE c.configuration_id = g_create_configuration.configuration_id) THEN
        RAISE EXCEPTION 'The configuration % already exists.', configuration_id
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first with alloydb_ai_nl.g_manage_configuration(''drop_configuration'', ''' || configuration_id || ''').';
    END IF;
    INSERT INTO alloydb_ai_nl.g_configuration (configuration_id, model_id)
    VALUES (configuration_id,
            coalesce(model_id,
                     nullif(pg_catalog.current_setting('google_ml_integration.default_llm_model', true), ''),
                     'gemini-2.0-flash'));
END;
$$;

-- The scope of a configuration: registered relations and every relation of registered schemas.
CREATE FUNCTION alloydb_ai_nl._scope(configuration_id text)
RETURNS SETOF regclass
LANGUAGE sql STABLE
AS $$
    SELECT r.relation::regclass FROM alloydb_ai_nl.g_configuration_relation AS r
      JOIN pg_catalog.pg_class AS c ON c.oid = r.relation
     WHERE r.configuration_id = _scope.configuration_id
    UNION
    SELECT c.oid::regclass FROM alloydb_ai_nl.g_configuration_schema AS s
      JOIN pg_catalog.pg_namespace AS n ON n.nspname = s.schema_name
      JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid
     WHERE s.configuration_id = _scope.configuration_id AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
$$;

CREATE FUNCTION alloydb_ai_nl.g_manage_configuration(
    operation text,
    configuration_id_in text,
    general_context_in text[] DEFAULT NULL,
    table_views_in text[] DEFAULT NULL,
    schema_names_in text[] DEFAULT NULL,
    model_id_in text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    item text;
    rel regclass;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(configuration_id_in);
    CASE lower(btrim(operation))
    WHEN 'register_table_view', 'unregister_table_view' THEN
        IF table_views_in IS NULL OR cardinality(table_views_in) = 0 THEN
            RAISE EXCEPTION 'operation % needs table_views_in', operation
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass table_views_in => ''{schema.table, schema.view}''.';
        END IF;
        FOREACH item IN ARRAY table_views_in LOOP
            rel := alloydb_ai_nl._relation(item);
            IF lower(btrim(operation)) = 'register_table_view' THEN
                INSERT INTO alloydb_ai_nl.g_configuration_relation VALUES (configuration_id_in, rel)
                ON CONFLICT DO NOTHING;
            ELSE
                DELETE FROM alloydb_ai_nl.g_configuration_relation AS r
                 WHERE r.configuration_id = configuration_id_in AND r.relation = rel;
            END IF;
        END LOOP;
    WHEN 'register_schema', 'unregister_schema' THEN
        IF schema_names_in IS NULL OR cardinality(schema_names_in) = 0 THEN
            RAISE EXCEPTION 'operation % needs schema_names_in', operation
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass schema_names_in => ''{my_schema}''.';
        END IF;
        FOREACH item IN ARRAY schema_names_in LOOP
            IF pg_catalog.to_regnamespace(quote_ident(btrim(item))) IS NULL THEN
                RAISE EXCEPTION 'schema "%" does not exist', btrim(item) USING ERRCODE = 'invalid_schema_name';
            END IF;
            IF lower(btrim(operation)) = 'register_schema' THEN
                INSERT INTO alloydb_ai_nl.g_configuration_schema VALUES (configuration_id_in, btrim(item))
                ON CONFLICT DO NOTHING;
            ELSE
                DELETE FROM alloydb_ai_nl.g_configuration_schema AS s
                 WHERE s.configuration_id = configuration_id_in AND s.schema_name = btrim(item);
            END IF;
        END LOOP;
    WHEN 'add_general_context' THEN
        IF general_context_in IS NULL OR cardinality(general_context_in) = 0 THEN
            RAISE EXCEPTION 'operation add_general_context needs general_context_in'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass general_context_in => ''{"a rule of your application"}''.';
        END IF;
        INSERT INTO alloydb_ai_nl.g_general_context (configuration_id, context)
        SELECT configuration_id_in, c FROM unnest(general_context_in) AS c WHERE btrim(c) <> '';
    WHEN 'drop_general_context' THEN
        DELETE FROM alloydb_ai_nl.g_general_context AS g
         WHERE g.configuration_id = configuration_id_in
           AND (general_context_in IS NULL OR g.context = ANY (general_context_in));
    -- change_model is the name a set-up script that ran on AlloyDB uses; the model must be
    -- registered (in google_ml.model_info_view), as AlloyDB requires.
    WHEN 'change_model', 'update_configuration_model' THEN
        IF model_id_in IS NULL THEN
            RAISE EXCEPTION 'operation % needs model_id_in', operation
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM google_ml._registered_model(model_id_in);  -- or 42704
        UPDATE alloydb_ai_nl.g_configuration AS c SET model_id = model_id_in
         WHERE c.configuration_id = configuration_id_in;
    WHEN 'drop_configuration' THEN
        DELETE FROM alloydb_ai_nl.g_template_store AS t WHERE t.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_fragment_store AS f WHERE f.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_generated_templates AS t WHERE t.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_value_index_columns AS v WHERE v.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_generated_value_index_columns AS v WHERE v.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_value_index AS v WHERE v.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_generated_schema_context AS g WHERE g.config = configuration_id_in;
        DELETE FROM alloydb_ai_nl.g_configuration AS c WHERE c.configuration_id = configuration_id_in;
    ELSE
        RAISE EXCEPTION 'unknown operation "%"', operation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use register_table_view, unregister_table_view, register_schema, unregister_schema, add_general_context, drop_general_context, change_model or drop_configuration.';
    END CASE;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.list_general_context(nl_config text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config);
    RETURN QUERY SELECT g.context FROM alloydb_ai_nl.g_general_context AS g
                  WHERE g.configuration_id = nl_config ORDER BY g.id;
END;
$$;

-- ===========================================================================
-- 3. Schema context
-- ===========================================================================

CREATE TABLE alloydb_ai_nl.g_generated_schema_context (
    id             bigserial PRIMARY KEY,
    config         text NOT NULL,
    schema_object  text NOT NULL,
    object_type    text NOT NULL CHECK (object_type IN ('table', 'view', 'materialized view', 'column')),
    object_context text NOT NULL,
    UNIQUE (config, schema_object)
);

CREATE VIEW alloydb_ai_nl.generated_schema_context_view AS
    SELECT id, config, schema_object, object_type, object_context
      FROM alloydb_ai_nl.g_generated_schema_context;

-- Where the engine is asked: one request per task, with the configuration's model (its URL and
-- credentials come from the model registry, see google_ml._authorized_request).
CREATE FUNCTION alloydb_ai_nl._ask_engine(configuration_id text, task text, payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    model text;
BEGIN
    SELECT c.model_id INTO model FROM alloydb_ai_nl.g_configuration AS c
     WHERE c.configuration_id = _ask_engine.configuration_id;
    RETURN google_ml._call_engine(jsonb_build_object(
        'op', 'alloydb_ai_nl', 'task', task, 'model_id', coalesce(model, 'gemini-2.0-flash'),
        'model_type', 'generic', 'headers', '{}'::jsonb, 'body', NULL, 'nl', payload));
END;
$$;

-- A few distinct values of a column, read with the caller's rights (none when not allowed).
CREATE FUNCTION alloydb_ai_nl._samples(rel regclass, col name, how_many int DEFAULT 5)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result text[];
BEGIN
    EXECUTE format('SELECT array_agg(v) FROM (SELECT DISTINCT %1$I::text AS v FROM %2$s WHERE %1$I IS NOT NULL ORDER BY 1 LIMIT %3$s) AS s',
                   col, rel, how_many) INTO result;
    RETURN coalesce(result, '{}');
EXCEPTION WHEN OTHERS THEN
    RETURN '{}';
END;
$$;

-- What the engine needs to describe relations: names, kinds, columns with types and samples,
-- foreign keys, comments.
CREATE FUNCTION alloydb_ai_nl._describe_relation(rel regclass, with_samples boolean DEFAULT true)
RETURNS jsonb
LANGUAGE sql VOLATILE
AS $$
    SELECT jsonb_build_object(
        'name', alloydb_ai_nl._relation_name(rel),
        'kind', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END,
        'comment', pg_catalog.obj_description(rel, 'pg_class'),
        'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'name', a.attname,
                        'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                        'comment', pg_catalog.col_description(rel, a.attnum),
                        'samples', CASE WHEN with_samples AND a.atttypid NOT IN (
                                            SELECT t.oid FROM pg_catalog.pg_type AS t
                                             WHERE t.typname IN ('vector', 'bytea', 'json', 'jsonb'))
                                        THEN to_jsonb(alloydb_ai_nl._samples(rel, a.attname))
                                        ELSE '[]'::jsonb END)
                        ORDER BY a.attnum), '[]')
                      FROM pg_catalog.pg_attribute AS a
                     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped),
        'foreign_keys', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'columns', (SELECT jsonb_agg(a.attname ORDER BY k.i) FROM unnest(f.conkey) WITH ORDINALITY AS k(n, i)
                                      JOIN pg_catalog.pg_attribute AS a ON a.attrelid = f.conrelid AND a.attnum = k.n),
                        'references', alloydb_ai_nl._relation_name(f.confrelid),
                        'referenced_columns', (SELECT jsonb_agg(a.attname ORDER BY k.i) FROM unnest(f.confkey) WITH ORDINALITY AS k(n, i)
                                      JOIN pg_catalog.pg_attribute AS a ON a.attrelid = f.confrelid AND a.attnum = k.n))), '[]')
                      FROM pg_catalog.pg_constraint AS f WHERE f.conrelid = rel AND f.contype = 'f'))
      FROM pg_catalog.pg_class AS c WHERE c.oid = rel
$$;

-- The parameter names are AlloyDB's, as a set-up script that ran on it names them
-- (generate_schema_context(nl_config_id => ..., overwrite_if_exist => TRUE)).
CREATE FUNCTION alloydb_ai_nl.generate_schema_context(nl_config_id text, overwrite_if_exist boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    relations jsonb;
    answer jsonb;
    item jsonb;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id);
    SELECT coalesce(jsonb_agg(alloydb_ai_nl._describe_relation(s.rel) ORDER BY alloydb_ai_nl._relation_name(s.rel)), '[]')
      INTO relations FROM alloydb_ai_nl._scope(nl_config_id) AS s(rel);
    IF jsonb_array_length(relations) = 0 THEN
        RAISE EXCEPTION 'configuration % has no registered table, view or schema', nl_config_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register them with alloydb_ai_nl.g_manage_configuration(operation => ''register_table_view'', ...).';
    END IF;
    answer := alloydb_ai_nl._ask_engine(nl_config_id, 'describe', jsonb_build_object('relations', relations));
    FOR item IN SELECT * FROM jsonb_array_elements(answer -> 'contexts') LOOP
        INSERT INTO alloydb_ai_nl.g_generated_schema_context AS g (config, schema_object, object_type, object_context)
        VALUES (nl_config_id, item ->> 'schema_object', item ->> 'object_type', item ->> 'object_context')
        ON CONFLICT (config, schema_object) DO UPDATE SET object_context = excluded.object_context
         WHERE overwrite_if_exist;
    END LOOP;
END;
$$;

CREATE FUNCTION alloydb_ai_nl._update_generated_context(schema_object text, object_context text, is_column boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    UPDATE alloydb_ai_nl.g_generated_schema_context AS g SET object_context = _update_generated_context.object_context
     WHERE g.schema_object = btrim(_update_generated_context.schema_object)
       AND (g.object_type = 'column') = is_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no generated context for "%"', schema_object
            USING ERRCODE = 'undefined_object',
                  HINT = 'Generate it first with alloydb_ai_nl.generate_schema_context(nl_config_id); see alloydb_ai_nl.generated_schema_context_view.';
    END IF;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.update_generated_relation_context(relation_name text, relation_context text)
RETURNS void LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._update_generated_context(relation_name, relation_context, false) $$;

CREATE FUNCTION alloydb_ai_nl.update_generated_column_context(column_name text, column_context text)
RETURNS void LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._update_generated_context(column_name, column_context, true) $$;

CREATE FUNCTION alloydb_ai_nl.set_relation_context(relation_name text, relation_context text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    rel regclass := alloydb_ai_nl._relation(relation_name);
    kind text;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                          WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END
      INTO kind FROM pg_catalog.pg_class AS c WHERE c.oid = rel;
    EXECUTE format('COMMENT ON %s %s IS %L', kind, rel, relation_context);
END;
$$;

CREATE FUNCTION alloydb_ai_nl.set_column_context(column_name text, column_context text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    target record := alloydb_ai_nl._column(column_name);
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', target.rel, target.col, column_context);
END;
$$;

CREATE FUNCTION alloydb_ai_nl.get_relation_context(relation_name text)
RETURNS text LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.obj_description(alloydb_ai_nl._relation(relation_name), 'pg_class') $$;

CREATE FUNCTION alloydb_ai_nl.get_column_context(column_name text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    target record := alloydb_ai_nl._column(column_name);
BEGIN
    RETURN (SELECT pg_catalog.col_description(target.rel, a.attnum) FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid = target.rel AND a.attname = target.col);
END;
$$;

-- Applies generated context rows (as COMMENTs) and removes them from the review view. Without
-- overwrite, an object that already has a comment keeps it.
CREATE FUNCTION alloydb_ai_nl._apply_generated_context(rows_config text, one_object text, is_column boolean, overwrite boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    g record;
    applied integer := 0;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    FOR g IN SELECT * FROM alloydb_ai_nl.g_generated_schema_context AS x
              WHERE (rows_config IS NULL OR x.config = rows_config)
                AND (one_object IS NULL OR (x.schema_object = btrim(one_object) AND (x.object_type = 'column') = is_column))
              ORDER BY x.id LOOP
        IF g.object_type = 'column' THEN
            IF overwrite OR alloydb_ai_nl.get_column_context(g.schema_object) IS NULL THEN
                PERFORM alloydb_ai_nl.set_column_context(g.schema_object, g.object_context);
            END IF;
        ELSIF overwrite OR alloydb_ai_nl.get_relation_context(g.schema_object) IS NULL THEN
            PERFORM alloydb_ai_nl.set_relation_context(g.schema_object, g.object_context);
        END IF;
        DELETE FROM alloydb_ai_nl.g_generated_schema_context AS x WHERE x.id = g.id;
        applied := applied + 1;
    END LOOP;
    IF one_object IS NOT NULL AND applied = 0 THEN
        RAISE EXCEPTION 'no generated context for "%"', one_object
            USING ERRCODE = 'undefined_object',
                  HINT = 'See alloydb_ai_nl.generated_schema_context_view.';
    END IF;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.apply_generated_relation_context(relation_name text, overwrite boolean DEFAULT false)
RETURNS void LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._apply_generated_context(NULL, relation_name, false, overwrite) $$;

CREATE FUNCTION alloydb_ai_nl.apply_generated_column_context(column_name text, overwrite boolean DEFAULT false)
RETURNS void LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._apply_generated_context(NULL, column_name, true, overwrite) $$;

CREATE FUNCTION alloydb_ai_nl.apply_generated_schema_context(nl_config text, overwrite boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config);
    PERFORM alloydb_ai_nl._apply_generated_context(nl_config, NULL, NULL, overwrite);
END;
$$;

-- ===========================================================================
-- 4. Concept types, associations, value index, synonyms
-- ===========================================================================

CREATE TABLE alloydb_ai_nl.g_concept_type (
    concept_type    text PRIMARY KEY,
    match_function  text NOT NULL,
    additional_info jsonb NOT NULL DEFAULT '{}',
    builtin         boolean NOT NULL DEFAULT false
);

-- The concept types users added, under AlloyDB's name and column (type_name), which the same
-- notebook reads before add_concept_type.
CREATE VIEW alloydb_ai_nl.concept_types_user_defined AS
    SELECT concept_type AS type_name, match_function, additional_info
      FROM alloydb_ai_nl.g_concept_type WHERE NOT builtin;

INSERT INTO alloydb_ai_nl.g_concept_type (concept_type, match_function, additional_info, builtin)
SELECT t, 'alloydb_ai_nl.get_concept_and_value_generic_entity_name', jsonb_build_object('description', d), true
  FROM (VALUES ('generic_entity_name', 'A generic entity name (one string column).'),
               ('country_name', 'Names of countries.'),
               ('city_name', 'Names of cities.'),
               ('region_name', 'Names of regions.'),
               ('full_person_name', 'Name of a person: first, last and middle names (up to three string columns).'),
               ('ssn', 'A social security number (one string column).'),
               ('date', 'A date or timestamp.')) AS b(t, d);

CREATE TABLE alloydb_ai_nl.g_value_index_columns (
    id              bigserial PRIMARY KEY,
    config          text,  -- NULL: every configuration whose scope has the columns
    column_names    text NOT NULL,
    concept_type    text NOT NULL REFERENCES alloydb_ai_nl.g_concept_type ON DELETE CASCADE,
    additional_info jsonb NOT NULL DEFAULT '{}',
    UNIQUE NULLS NOT DISTINCT (config, column_names)
);

CREATE VIEW alloydb_ai_nl.value_index_columns AS
    SELECT id, config, column_names, concept_type, additional_info FROM alloydb_ai_nl.g_value_index_columns;

CREATE TABLE alloydb_ai_nl.g_generated_value_index_columns (
    id              bigserial PRIMARY KEY,
    config          text NOT NULL,
    column_names    text NOT NULL,
    concept_type    text NOT NULL,
    additional_info jsonb NOT NULL DEFAULT '{}'
);

CREATE VIEW alloydb_ai_nl.generated_value_index_columns_view AS
    SELECT id, config, column_names, concept_type, additional_info
      FROM alloydb_ai_nl.g_generated_value_index_columns;

CREATE TABLE alloydb_ai_nl.g_value_index (
    config       text NOT NULL,
    concept_type text NOT NULL,
    column_names text NOT NULL,
    value        text NOT NULL
);
CREATE INDEX ON alloydb_ai_nl.g_value_index (config, lower(value));
CREATE INDEX ON alloydb_ai_nl.g_value_index USING gin (lower(value) gin_trgm_ops);

CREATE TABLE alloydb_ai_nl.g_synonym_set (
    id       bigserial PRIMARY KEY,
    synonyms text[] NOT NULL
);

CREATE FUNCTION alloydb_ai_nl._check_concept_type(concept_type text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM alloydb_ai_nl.g_concept_type AS c WHERE c.concept_type = _check_concept_type.concept_type) THEN
        RAISE EXCEPTION 'concept type "%" does not exist', concept_type
            USING ERRCODE = 'undefined_object',
                  HINT = 'See alloydb_ai_nl.list_concept_types(), or add it with alloydb_ai_nl.add_concept_type(...).';
    END IF;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.add_concept_type(
    concept_type_in text,
    match_function_in text DEFAULT 'alloydb_ai_nl.get_concept_and_value_generic_entity_name',
    additional_info_in jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    IF coalesce(btrim(concept_type_in), '') = '' THEN
        RAISE EXCEPTION 'concept_type_in must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.to_regproc(match_function_in) IS NULL
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure(match_function_in)) THEN
        RAISE EXCEPTION 'match function % does not exist', match_function_in
            USING ERRCODE = 'undefined_function',
                  HINT = 'Use alloydb_ai_nl.get_concept_and_value_generic_entity_name or a function of your own.';
    END IF;
    INSERT INTO alloydb_ai_nl.g_concept_type (concept_type, match_function, additional_info)
    VALUES (btrim(concept_type_in), match_function_in, coalesce(additional_info_in, '{}'))
    ON CONFLICT (concept_type) DO UPDATE
       SET match_function = excluded.match_function, additional_info = excluded.additional_info
     WHERE NOT g_concept_type.builtin;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.list_concept_types()
RETURNS TABLE (concept_type text, match_function text, additional_info jsonb, builtin boolean)
LANGUAGE sql STABLE
AS $$
    SELECT c.concept_type, c.match_function, c.additional_info, c.builtin
      FROM alloydb_ai_nl.g_concept_type AS c ORDER BY c.builtin DESC, c.concept_type
$$;

CREATE FUNCTION alloydb_ai_nl.drop_concept_type(concept_type_in text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    PERFORM alloydb_ai_nl._check_concept_type(concept_type_in);
    IF (SELECT builtin FROM alloydb_ai_nl.g_concept_type AS c WHERE c.concept_type = concept_type_in) THEN
        RAISE EXCEPTION 'concept type "%" is built in and cannot be dropped', concept_type_in
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM alloydb_ai_nl.g_concept_type AS c WHERE c.concept_type = concept_type_in;
END;
$$;

-- 'a.t.c1,a.t.c2' -> the checked columns (all of one relation), in order.
CREATE FUNCTION alloydb_ai_nl._columns(column_names text)
RETURNS TABLE (rel regclass, col name)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    item text;
    first_rel regclass;
BEGIN
    FOREACH item IN ARRAY string_to_array(column_names, ',') LOOP
        SELECT c.rel, c.col INTO rel, col FROM alloydb_ai_nl._column(item) AS c;
        IF first_rel IS NOT NULL AND rel <> first_rel THEN
            RAISE EXCEPTION 'the columns "%" are not all of one relation', column_names
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        first_rel := rel;
        RETURN NEXT;
    END LOOP;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.associate_concept_type(
    column_names_in text,
    concept_type_in text,
    nl_config_id_in text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    normalized text;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    IF nl_config_id_in IS NOT NULL THEN
        PERFORM alloydb_ai_nl._check_configuration(nl_config_id_in);
    END IF;
    PERFORM alloydb_ai_nl._check_concept_type(concept_type_in);
    SELECT string_agg(alloydb_ai_nl._relation_name(c.rel) || '.' || c.col, ',')
      INTO normalized FROM alloydb_ai_nl._columns(column_names_in) AS c;
    INSERT INTO alloydb_ai_nl.g_value_index_columns (config, column_names, concept_type)
    VALUES (nl_config_id_in, normalized, concept_type_in)
    ON CONFLICT (config, column_names) DO UPDATE SET concept_type = excluded.concept_type;
END;
$$;

-- Associations by column names and types: user concept types named like the column
-- (brand_name, or product_name for products.name), then the built-in ones.
--
-- The ids are numbered in a fixed order, whatever the relations' OIDs: the associations to user
-- concept types first, then the built-in ones, each in relation-name then column order. The
-- pages edit and drop generated associations by id (the tutorial drops id 1), so an order that
-- followed the hash of OIDs (_scope is a UNION) made the same script drop a different association
-- on each cluster - addresses.city on some, and Lisbon left the value index.
CREATE FUNCTION alloydb_ai_nl.generate_concept_type_associations(nl_config text, relation_name text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    r regclass;
    only_rel regclass := CASE WHEN relation_name IS NULL THEN NULL ELSE alloydb_ai_nl._relation(relation_name) END;
    a record;
    singular text;
    concept text;
    user_concept boolean;
    first_col text;
    last_col text;
    found_rows jsonb := '[]';
    g record;
    added integer := 0;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config);
    FOR r IN SELECT s FROM alloydb_ai_nl._scope(nl_config) AS s WHERE only_rel IS NULL OR s = only_rel
              ORDER BY alloydb_ai_nl._relation_name(s) LOOP
        singular := regexp_replace((SELECT relname FROM pg_catalog.pg_class WHERE oid = r), 'e?s$', '');
        first_col := NULL;
        last_col := NULL;
        FOR a IN SELECT att.attname::text AS col, pg_catalog.format_type(att.atttypid, NULL) AS typ
                   FROM pg_catalog.pg_attribute AS att
                  WHERE att.attrelid = r AND att.attnum > 0 AND NOT att.attisdropped ORDER BY att.attnum LOOP
            concept := NULL;
            IF a.typ IN ('text', 'character varying', 'character') THEN
                SELECT c.concept_type INTO concept FROM alloydb_ai_nl.g_concept_type AS c
                 WHERE NOT c.builtin AND c.concept_type IN (a.col, singular || '_' || a.col)
                 ORDER BY c.concept_type = a.col, c.concept_type LIMIT 1;  -- the specific one first
                user_concept := concept IS NOT NULL;
                IF concept IS NULL THEN
                    concept := CASE
                        WHEN a.col ~* 'city' THEN 'city_name'
                        WHEN a.col ~* 'country' THEN 'country_name'
                        WHEN a.col ~* '(region|state|province)' THEN 'region_name'
                        WHEN a.col ~* '(^|_)ssn$' THEN 'ssn'
                        WHEN a.col ~* '^first_?name$' THEN NULL
                        WHEN a.col ~* '^last_?name$' THEN NULL
                        ELSE NULL END;
                    IF a.col ~* '^first_?name$' THEN first_col := a.col; END IF;
                    IF a.col ~* '^last_?name$' THEN last_col := a.col; END IF;
                END IF;
            END IF;
            IF concept IS NOT NULL THEN
                found_rows := found_rows || jsonb_build_object(
                    'columns', alloydb_ai_nl._relation_name(r) || '.' || a.col, 'concept', concept, 'user', user_concept);
            END IF;
        END LOOP;
        IF first_col IS NOT NULL AND last_col IS NOT NULL THEN
            found_rows := found_rows || jsonb_build_object(
                'columns', alloydb_ai_nl._relation_name(r) || '.' || first_col || ','
                           || alloydb_ai_nl._relation_name(r) || '.' || last_col,
                'concept', 'full_person_name', 'user', false);
        END IF;
    END LOOP;
    -- One row at a time, so the ids follow this order.
    FOR g IN SELECT x ->> 'columns' AS column_names, x ->> 'concept' AS concept_type
               FROM jsonb_array_elements(found_rows) WITH ORDINALITY AS e(x, i)
              ORDER BY (x -> 'user')::boolean DESC, i LOOP
        INSERT INTO alloydb_ai_nl.g_generated_value_index_columns (config, column_names, concept_type)
        VALUES (nl_config, g.column_names, g.concept_type);
        added := added + 1;
    END LOOP;
    RETURN added;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.update_generated_concept_type_associations(
    id bigint, column_names text DEFAULT NULL, concept_type text DEFAULT NULL, additional_info jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    IF concept_type IS NOT NULL THEN
        PERFORM alloydb_ai_nl._check_concept_type(concept_type);
    END IF;
    UPDATE alloydb_ai_nl.g_generated_value_index_columns AS g
       SET column_names = coalesce(update_generated_concept_type_associations.column_names, g.column_names),
           concept_type = coalesce(update_generated_concept_type_associations.concept_type, g.concept_type),
           additional_info = coalesce(update_generated_concept_type_associations.additional_info, g.additional_info)
     WHERE g.id = update_generated_concept_type_associations.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'generated association % does not exist', id USING ERRCODE = 'undefined_object',
            HINT = 'See alloydb_ai_nl.generated_value_index_columns_view.';
    END IF;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.drop_generated_concept_type_association(id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    DELETE FROM alloydb_ai_nl.g_generated_value_index_columns AS g WHERE g.id = drop_generated_concept_type_association.id;
    RETURN FOUND;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.apply_generated_concept_type_association(id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    g alloydb_ai_nl.g_generated_value_index_columns;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    SELECT * INTO g FROM alloydb_ai_nl.g_generated_value_index_columns AS x WHERE x.id = apply_generated_concept_type_association.id;
    IF g.id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM alloydb_ai_nl.associate_concept_type(g.column_names, g.concept_type, g.config);
    UPDATE alloydb_ai_nl.g_value_index_columns AS v SET additional_info = g.additional_info
     WHERE v.config = g.config AND v.column_names = g.column_names;
    DELETE FROM alloydb_ai_nl.g_generated_value_index_columns AS x WHERE x.id = g.id;
    RETURN true;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.apply_generated_concept_type_associations(nl_config text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    applied integer := 0;
    g_id bigint;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config);
    FOR g_id IN SELECT x.id FROM alloydb_ai_nl.g_generated_value_index_columns AS x
                 WHERE x.config = nl_config ORDER BY x.id LOOP
        IF alloydb_ai_nl.apply_generated_concept_type_association(g_id) THEN
            applied := applied + 1;
        END IF;
    END LOOP;
    RETURN applied;
END;
$$;

-- (Re)builds the value index of one configuration (or of all): the distinct values of every
-- associated column in its scope, read with the caller's rights.
CREATE FUNCTION alloydb_ai_nl._build_value_index(nl_config text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v record;
    expr text;
    rel regclass;
BEGIN
    DELETE FROM alloydb_ai_nl.g_value_index AS x WHERE x.config = nl_config;
    FOR v IN SELECT DISTINCT ON (c.column_names) c.column_names, c.concept_type
               FROM alloydb_ai_nl.g_value_index_columns AS c
              WHERE c.config = nl_config OR c.config IS NULL
              ORDER BY c.column_names, c.config NULLS LAST LOOP
        SELECT min(x.rel::oid)::regclass, 'concat_ws('' '', ' || string_agg(quote_ident(x.col) || '::text', ', ') || ')'
          INTO rel, expr FROM alloydb_ai_nl._columns(v.column_names) AS x;
        IF rel NOT IN (SELECT s FROM alloydb_ai_nl._scope(nl_config) AS s) THEN
            CONTINUE;
        END IF;
        EXECUTE format('INSERT INTO alloydb_ai_nl.g_value_index (config, concept_type, column_names, value) '
                       'SELECT DISTINCT %L, %L, %L, v FROM (SELECT %s AS v FROM %s LIMIT 1000000) AS s '
                       'WHERE btrim(v) <> ''''', nl_config, v.concept_type, v.column_names, expr, rel);
    END LOOP;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.create_value_index(nl_config_id_in text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id_in);
    PERFORM alloydb_ai_nl._build_value_index(nl_config_id_in);
END;
$$;

CREATE FUNCTION alloydb_ai_nl.refresh_value_index(nl_config_id_in text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    cfg text;
BEGIN
    IF nl_config_id_in IS NOT NULL THEN
        PERFORM alloydb_ai_nl._check_configuration(nl_config_id_in);
    END IF;
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    FOR cfg IN SELECT c.configuration_id FROM alloydb_ai_nl.g_configuration AS c
                WHERE nl_config_id_in IS NULL OR c.configuration_id = nl_config_id_in LOOP
        PERFORM alloydb_ai_nl._build_value_index(cfg);
    END LOOP;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.drop_value_index(nl_config_id_in text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id_in);
    DELETE FROM alloydb_ai_nl.g_value_index AS x WHERE x.config = nl_config_id_in;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.insert_synonym_set(synonyms text[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    IF synonyms IS NULL OR cardinality(synonyms) < 2 THEN
        RAISE EXCEPTION 'a synonym set needs at least two values' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO alloydb_ai_nl.g_synonym_set (synonyms) VALUES (synonyms) RETURNING id INTO new_id;
    RETURN new_id;
END;
$$;

-- The index values a phrase may stand for: the same value in any case, a synonym of it, or
-- (fuzzy) a value with enough trigrams in common. Best first.
CREATE FUNCTION alloydb_ai_nl._match_value(phrase text, nl_config text, concept text DEFAULT NULL)
RETURNS TABLE (value_phrase text, value text, concept_type text, column_names text, score real)
LANGUAGE sql STABLE
AS $$
    WITH candidates AS (
        SELECT phrase AS p
        UNION
        SELECT s FROM alloydb_ai_nl.g_synonym_set AS y, unnest(y.synonyms) AS s
         WHERE EXISTS (SELECT FROM unnest(y.synonyms) AS t WHERE lower(t) = lower(phrase))
    )
    SELECT DISTINCT ON (v.value, v.column_names) phrase, v.value, v.concept_type, v.column_names,
           CASE WHEN lower(v.value) = lower(phrase) THEN 1.0::real
                WHEN lower(v.value) = lower(c.p) THEN 0.95::real
                ELSE similarity(lower(v.value), lower(c.p)) END AS score
      FROM candidates AS c
      JOIN alloydb_ai_nl.g_value_index AS v
        ON v.config = nl_config AND (lower(v.value) = lower(c.p) OR lower(v.value) % lower(c.p))
     WHERE concept IS NULL OR v.concept_type = concept
     ORDER BY v.value, v.column_names, score DESC
$$;

CREATE FUNCTION alloydb_ai_nl.get_concept_and_value(value_phrases_in text[], nl_config_id_in text)
RETURNS json
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id_in);
    RETURN (SELECT coalesce(json_agg(json_build_object(
                'value_phrase', p, 'concept_type', m.concept_type, 'value', m.value,
                'columns', m.column_names, 'score', round(m.score::numeric, 3)) ORDER BY i, m.score DESC), '[]')
              FROM unnest(value_phrases_in) WITH ORDINALITY AS x(p, i),
                   LATERAL (SELECT * FROM alloydb_ai_nl._match_value(x.p, nl_config_id_in)
                             ORDER BY score DESC LIMIT 5) AS m);
END;
$$;

-- The built-in match function of the generic concept types.
CREATE FUNCTION alloydb_ai_nl.get_concept_and_value_generic_entity_name(
    value_phrase text, nl_config_id text DEFAULT NULL)
RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(json_agg(json_build_object('value_phrase', m.value_phrase, 'concept_type', m.concept_type,
                                               'value', m.value, 'columns', m.column_names)
                             ORDER BY m.score DESC), '[]')
      FROM alloydb_ai_nl.g_configuration AS c,
           LATERAL alloydb_ai_nl._match_value(value_phrase, c.configuration_id) AS m
     WHERE nl_config_id IS NULL OR c.configuration_id = nl_config_id
$$;

-- ===========================================================================
-- 5. Templates and fragments
-- ===========================================================================

-- AlloyDB's template_parameterized / fragment_parameterized: {"sql": ..., "intent": ...} (its
-- add_template and add_fragment store json_build_object('sql', ..., 'intent', ...)). IMMUTABLE
-- for the generated columns below: json_build_object of two texts gives the same JSON always
-- (it is STABLE only because it takes any type).
CREATE FUNCTION alloydb_ai_nl._parameterized(sql text, intent text)
RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.json_build_object('sql', sql, 'intent', intent) $$;

CREATE TABLE alloydb_ai_nl.g_template_store (
    id          bigserial PRIMARY KEY,
    config      text NOT NULL REFERENCES alloydb_ai_nl.g_configuration ON DELETE CASCADE,
    type        text NOT NULL DEFAULT 'Template',
    manifest    text NOT NULL,
    nl          text NOT NULL,
    sql         text NOT NULL,
    intent      text NOT NULL,
    psql        text NOT NULL,
    pintent     text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    explanation text NOT NULL DEFAULT '',
    weight      integer NOT NULL DEFAULT 1,
    enabled     boolean NOT NULL DEFAULT true,
    -- AlloyDB's own columns, read-only here: its (older, readable) alloydb_ai_nl inserts
    -- template_context, template_nl, template_sql, template_intent, template_manifest, ...,
    -- template_comment, template_explanation, template_weight, and its enable/disable/drop_template
    -- find a template by template_id and switch template_active. The MCP Toolbox notebook adds a
    -- template only IF NOT EXISTS (SELECT 1 FROM alloydb_ai_nl.g_template_store WHERE
    -- template_sql = '...').
    template_sql         text GENERATED ALWAYS AS (sql) STORED,
    template_id          bigint GENERATED ALWAYS AS (id) STORED,
    template_context     text GENERATED ALWAYS AS (config) STORED,
    template_nl          text GENERATED ALWAYS AS (nl) STORED,
    template_intent      text GENERATED ALWAYS AS (intent) STORED,
    template_manifest    text GENERATED ALWAYS AS (manifest) STORED,
    template_comment     text GENERATED ALWAYS AS (comment) STORED,
    template_explanation text GENERATED ALWAYS AS (explanation) STORED,
    template_weight      integer GENERATED ALWAYS AS (weight) STORED,
    template_active      boolean GENERATED ALWAYS AS (enabled) STORED,
    template_parameterized json GENERATED ALWAYS AS (alloydb_ai_nl._parameterized(psql, pintent)) STORED
);

CREATE VIEW alloydb_ai_nl.template_store_view AS
    SELECT id, config, type, manifest, nl, sql, intent, psql, pintent, comment, explanation, weight, enabled
      FROM alloydb_ai_nl.g_template_store;

-- Generated templates wait here for review, with ids of their own (the page's id => 1).
CREATE TABLE alloydb_ai_nl.g_generated_templates (
    id          bigserial PRIMARY KEY,
    config      text NOT NULL REFERENCES alloydb_ai_nl.g_configuration ON DELETE CASCADE,
    type        text NOT NULL DEFAULT 'Template',
    manifest    text NOT NULL,
    nl          text NOT NULL,
    sql         text NOT NULL,
    intent      text NOT NULL,
    psql        text NOT NULL,
    pintent     text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    explanation text NOT NULL DEFAULT '',
    weight      integer NOT NULL DEFAULT 1
);

CREATE VIEW alloydb_ai_nl.generated_templates_view AS
    SELECT id, config, type, manifest, nl, sql, intent, psql, pintent, comment, explanation, weight
      FROM alloydb_ai_nl.g_generated_templates;

CREATE TABLE alloydb_ai_nl.g_fragment_store (
    id            bigserial PRIMARY KEY,
    config        text NOT NULL REFERENCES alloydb_ai_nl.g_configuration ON DELETE CASCADE,
    table_aliases text[] NOT NULL,
    manifest      text NOT NULL,
    intent        text NOT NULL,
    fragment      text NOT NULL,
    pintent       text NOT NULL,
    pfragment     text NOT NULL,
    comment       text NOT NULL DEFAULT '',
    weight        integer NOT NULL DEFAULT 1,
    enabled       boolean NOT NULL DEFAULT true,
    -- AlloyDB's own columns, read-only here (its add_fragment inserts fragment_context,
    -- fragment_table_aliases, fragment_intent, fragment, ..., fragment_manifest,
    -- fragment_comment, fragment_weight; enable/disable/drop_fragment use fragment_id and
    -- fragment_active)
    fragment_id            bigint GENERATED ALWAYS AS (id) STORED,
    fragment_context       text GENERATED ALWAYS AS (config) STORED,
    fragment_table_aliases text[] GENERATED ALWAYS AS (table_aliases) STORED,
    fragment_intent        text GENERATED ALWAYS AS (intent) STORED,
    fragment_manifest      text GENERATED ALWAYS AS (manifest) STORED,
    fragment_comment       text GENERATED ALWAYS AS (comment) STORED,
    fragment_weight        integer GENERATED ALWAYS AS (weight) STORED,
    fragment_active        boolean GENERATED ALWAYS AS (enabled) STORED,
    fragment_parameterized json GENERATED ALWAYS AS (alloydb_ai_nl._parameterized(pfragment, pintent)) STORED
);

CREATE VIEW alloydb_ai_nl.fragment_store_view AS
    SELECT id, config, 'Fragment'::text AS type, manifest, array_to_string(table_aliases, ', ') AS scope,
           fragment, intent, pfragment, pintent, comment, weight, enabled
      FROM alloydb_ai_nl.g_fragment_store;

-- NULL when `sql` plans (EXPLAIN, with the caller's rights), else the error message. A FOR loop
-- over EXECUTE opens a cursor, which refuses several statements (a plain EXECUTE would run
-- "SELECT 1; DROP TABLE t" whole).
CREATE FUNCTION alloydb_ai_nl._explain_error(sql text)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    line record;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || sql LOOP
        NULL;
    END LOOP;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END;
$$;

-- The value-index entries for the literals of a text (what parameterization calls them).
CREATE FUNCTION alloydb_ai_nl._known_values(nl_config text, texts text[])
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object('value', v.value, 'concept_type', v.concept_type,
                                                          'columns', v.column_names)), '[]')
      FROM alloydb_ai_nl.g_value_index AS v
     WHERE v.config = nl_config AND length(v.value) > 1
       AND EXISTS (SELECT FROM unnest(texts) AS t WHERE strpos(lower(t), lower(v.value)) > 0)
$$;

-- The relation names a configuration's templates and fragments read (the stores are not the
-- caller's to read; the names are resolved with the caller's search_path below).
CREATE FUNCTION alloydb_ai_nl._store_relation_names(nl_config text)
RETURNS SETOF text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m[1]
      FROM alloydb_ai_nl.g_template_store AS t,
           regexp_matches(t.sql, '\m(?:from|join)\s+((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)', 'gi') AS m
     WHERE t.config = nl_config AND t.enabled
    UNION
    SELECT split_part(btrim(a), ' ', 1)
      FROM alloydb_ai_nl.g_fragment_store AS f, unnest(f.table_aliases) AS a
     WHERE f.config = nl_config AND f.enabled
$$;

-- The relations a configuration knows: its scope, and those its templates and fragments read.
CREATE FUNCTION alloydb_ai_nl._known_relations(nl_config text)
RETURNS SETOF regclass
LANGUAGE sql STABLE
AS $$
    SELECT s FROM alloydb_ai_nl._scope(nl_config) AS s
    UNION
    SELECT r FROM (SELECT pg_catalog.to_regclass(n) AS r
                     FROM alloydb_ai_nl._store_relation_names(nl_config) AS n) AS x
     WHERE r IS NOT NULL
$$;

CREATE FUNCTION alloydb_ai_nl._schema_of(nl_config text)
RETURNS jsonb
LANGUAGE sql VOLATILE
AS $$
    SELECT coalesce(jsonb_agg(alloydb_ai_nl._describe_relation(s.rel, false)
                              ORDER BY alloydb_ai_nl._relation_name(s.rel)), '[]')
      FROM alloydb_ai_nl._known_relations(nl_config) AS s(rel)
$$;

-- Asks the engine to parameterize (when not given), write the manifest and check the intent
-- of a template or a fragment; raises AlloyDB's errors.
CREATE FUNCTION alloydb_ai_nl._prepare_entry(nl_config text, kind text, entry jsonb, check_intent boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    answer jsonb;
BEGIN
    answer := alloydb_ai_nl._ask_engine(nl_config, kind, entry || jsonb_build_object(
        'check_intent', check_intent,
        'known_values', alloydb_ai_nl._known_values(nl_config, ARRAY[entry ->> 'intent', entry ->> 'sql']),
        'schema', CASE WHEN check_intent THEN alloydb_ai_nl._schema_of(nl_config) ELSE '[]' END));
    IF coalesce(answer ->> 'error', '') <> '' THEN
        RAISE EXCEPTION '%', answer ->> 'error' USING ERRCODE = 'raise_exception';
    END IF;
    RETURN answer;
END;
$$;

CREATE FUNCTION alloydb_ai_nl._add_template(
    nl_config_id text, intent text, sql text, parameterized_sql text, parameterized_intent text,
    nl_question text, manifest text, sql_explanation text, comment text, weight integer, check_intent boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    error_msg text;
    prepared jsonb;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id);
    IF coalesce(sql, '') = '' OR coalesce(intent, '') = '' THEN
        RAISE EXCEPTION 'Both SQL and intent inputs must contain values. sql: %, intent: %', sql, intent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    error_msg := alloydb_ai_nl._explain_error(sql);
    IF error_msg IS NOT NULL THEN
        RAISE EXCEPTION E'The sql_example is not executable.\n%\nQuery: %', error_msg, sql
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    prepared := alloydb_ai_nl._prepare_entry(nl_config_id, 'template', jsonb_build_object(
        'intent', intent, 'sql', sql, 'psql', parameterized_sql, 'pintent', parameterized_intent,
        'manifest', nullif(manifest, ''), 'explanation', sql_explanation), check_intent);
    INSERT INTO alloydb_ai_nl.g_template_store
        (config, manifest, nl, sql, intent, psql, pintent, comment, explanation, weight)
    VALUES (nl_config_id, prepared ->> 'manifest', coalesce(nullif(nl_question, ''), intent), sql, intent,
            prepared ->> 'psql', prepared ->> 'pintent', coalesce(comment, ''), coalesce(sql_explanation, ''),
            coalesce(weight, 1));
    RETURN true;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.add_template(
    nl_config_id text,
    intent text,
    sql text,
    nl_question text DEFAULT '',
    sql_explanation text DEFAULT '',
    comment text DEFAULT '',
    weight integer DEFAULT 1,
    check_intent boolean DEFAULT false)
RETURNS boolean LANGUAGE sql
AS $$
    SELECT alloydb_ai_nl._add_template(nl_config_id, intent, sql, NULL, NULL, nl_question, NULL,
                                       sql_explanation, comment, weight, check_intent)
$$;

CREATE FUNCTION alloydb_ai_nl.add_template(
    nl_config_id text,
    intent text,
    sql text,
    parameterized_sql text,
    parameterized_intent text,
    nl_question text DEFAULT '',
    manifest text DEFAULT '',
    sql_explanation text DEFAULT '',
    comment text DEFAULT '',
    weight integer DEFAULT 1,
    check_intent boolean DEFAULT false)
RETURNS boolean LANGUAGE sql
AS $$
    SELECT alloydb_ai_nl._add_template(nl_config_id, intent, sql, parameterized_sql, parameterized_intent,
                                       nl_question, manifest, sql_explanation, comment, weight, check_intent)
$$;

CREATE FUNCTION alloydb_ai_nl._set_enabled(store text, entry_id bigint, on_off boolean, drop_it boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    done boolean;
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    IF drop_it THEN
        EXECUTE format('DELETE FROM alloydb_ai_nl.%I WHERE id = $1 RETURNING true', store) INTO done USING entry_id;
    ELSE
        EXECUTE format('UPDATE alloydb_ai_nl.%I SET enabled = $2 WHERE id = $1 AND enabled <> $2 RETURNING true', store)
           INTO done USING entry_id, on_off;
    END IF;
    RETURN coalesce(done, false);
END;
$$;

CREATE FUNCTION alloydb_ai_nl.enable_template(id bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._set_enabled('g_template_store', id, true) $$;
CREATE FUNCTION alloydb_ai_nl.disable_template(id bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._set_enabled('g_template_store', id, false) $$;
CREATE FUNCTION alloydb_ai_nl.drop_template(id bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._set_enabled('g_template_store', id, NULL, true) $$;
CREATE FUNCTION alloydb_ai_nl.enable_fragment(id bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._set_enabled('g_fragment_store', id, true) $$;
CREATE FUNCTION alloydb_ai_nl.disable_fragment(id bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._set_enabled('g_fragment_store', id, false) $$;
CREATE FUNCTION alloydb_ai_nl.drop_fragment(id bigint) RETURNS boolean LANGUAGE sql
AS $$ SELECT alloydb_ai_nl._set_enabled('g_fragment_store', id, NULL, true) $$;

CREATE FUNCTION alloydb_ai_nl._add_fragment(
    nl_config_id text, table_aliases text[], intent text, parameterized_intent text, fragment text,
    parameterized_fragment text, manifest text, comment text, weight integer, check_intent boolean)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    probe text;
    error_msg text;
    where_error text;
    prepared jsonb;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id);
    IF table_aliases IS NULL OR cardinality(table_aliases) = 0 THEN
        RAISE EXCEPTION 'You need to provide a table alias list.' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(fragment, '') = '' OR coalesce(intent, '') = '' THEN
        RAISE EXCEPTION 'You need to provide a valid fragment.' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    probe := 'SELECT 1 FROM ' || array_to_string(table_aliases, ', ') || ' WHERE ' || fragment;
    error_msg := alloydb_ai_nl._explain_error(probe);
    IF error_msg IS NOT NULL THEN
        -- AlloyDB's add_fragment tries the fragment again after AND (the last table alias may
        -- end in a WHERE clause of its own) and, when that fails too, reports that attempt
        where_error := error_msg;
        probe := 'SELECT 1 FROM ' || array_to_string(table_aliases, ', ') || ' AND ' || fragment;
        error_msg := alloydb_ai_nl._explain_error(probe);
    END IF;
    IF error_msg IS NOT NULL THEN
        RAISE EXCEPTION E'The sql is not executable. Error: %\n, sql: %.', error_msg, probe
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'With WHERE before the fragment: ' || where_error;
    END IF;
    prepared := alloydb_ai_nl._prepare_entry(nl_config_id, 'fragment', jsonb_build_object(
        'intent', intent, 'sql', fragment, 'psql', parameterized_fragment, 'pintent', parameterized_intent,
        'manifest', nullif(manifest, ''), 'probe', probe), check_intent);
    INSERT INTO alloydb_ai_nl.g_fragment_store
        (config, table_aliases, manifest, intent, fragment, pintent, pfragment, comment, weight)
    VALUES (nl_config_id, table_aliases, prepared ->> 'manifest', intent, fragment, prepared ->> 'pintent',
            prepared ->> 'psql', coalesce(comment, ''), coalesce(weight, 1));
    RETURN true;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.add_fragment(
    nl_config_id text,
    table_aliases text[],
    intent text,
    fragment text,
    comment text DEFAULT '',
    weight integer DEFAULT 1,
    check_intent boolean DEFAULT true)
RETURNS boolean LANGUAGE sql
AS $$
    SELECT alloydb_ai_nl._add_fragment(nl_config_id, table_aliases, intent, NULL, fragment, NULL, NULL,
                                       comment, weight, check_intent)
$$;

CREATE FUNCTION alloydb_ai_nl.add_fragment(
    nl_config_id text,
    table_aliases text[],
    intent text,
    parameterized_intent text,
    fragment text,
    parameterized_fragment text,
    manifest text DEFAULT '',
    comment text DEFAULT '',
    weight integer DEFAULT 1,
    check_intent boolean DEFAULT true)
RETURNS boolean LANGUAGE sql
AS $$
    SELECT alloydb_ai_nl._add_fragment(nl_config_id, table_aliases, intent, parameterized_intent, fragment,
                                       parameterized_fragment, manifest, comment, weight, check_intent)
$$;

-- Templates from the query log: pg_stat_statements when it is installed (AlloyDB reads
-- google_db_advisor_workload_statements), SELECTs that plan and touch only the scope.
CREATE FUNCTION alloydb_ai_nl.generate_templates(nl_config text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    q text;
    added integer := 0;
    prepared jsonb;
    scope_names text[];
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config);
    IF pg_catalog.to_regclass('pg_stat_statements') IS NULL THEN
        RAISE NOTICE 'no query log to generate templates from'
            USING HINT = 'Install pg_stat_statements (shared_preload_libraries) to generate templates from the queries you run.';
        RETURN 0;
    END IF;
    SELECT array_agg(alloydb_ai_nl._relation_name(s) ORDER BY alloydb_ai_nl._relation_name(s)) INTO scope_names
      FROM alloydb_ai_nl._scope(nl_config) AS s;
    FOR q IN EXECUTE 'SELECT query FROM pg_stat_statements WHERE query ~* ''^\s*select'' AND query !~ ''\$[0-9]'' '
                     'AND query !~* ''alloydb_ai_nl|google_ml|pg_catalog|information_schema'' ORDER BY calls DESC LIMIT 50' LOOP
        CONTINUE WHEN alloydb_ai_nl._explain_error(q) IS NOT NULL;
        CONTINUE WHEN EXISTS (SELECT FROM alloydb_ai_nl.g_template_store AS t WHERE t.config = nl_config AND t.sql = q);
        CONTINUE WHEN EXISTS (SELECT FROM alloydb_ai_nl.g_generated_templates AS t WHERE t.config = nl_config AND t.sql = q);
        prepared := alloydb_ai_nl._ask_engine(nl_config, 'generate_template', jsonb_build_object(
            'sql', q, 'scope', to_jsonb(scope_names), 'schema', alloydb_ai_nl._schema_of(nl_config)));
        CONTINUE WHEN coalesce(prepared ->> 'intent', '') = '';
        INSERT INTO alloydb_ai_nl.g_generated_templates (config, manifest, nl, sql, intent, psql, pintent)
        VALUES (nl_config, prepared ->> 'manifest',
                prepared ->> 'intent', q, prepared ->> 'intent', prepared ->> 'psql', prepared ->> 'pintent');
        added := added + 1;
    END LOOP;
    RETURN added;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.update_generated_template(
    id bigint, manifest text DEFAULT NULL, nl text DEFAULT NULL, sql text DEFAULT NULL,
    intent text DEFAULT NULL, psql text DEFAULT NULL, pintent text DEFAULT NULL,
    comment text DEFAULT NULL, explanation text DEFAULT NULL, weight integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    UPDATE alloydb_ai_nl.g_generated_templates AS g
       SET manifest = coalesce(update_generated_template.manifest, g.manifest),
           nl = coalesce(update_generated_template.nl, g.nl),
           sql = coalesce(update_generated_template.sql, g.sql),
           intent = coalesce(update_generated_template.intent, g.intent),
           psql = coalesce(update_generated_template.psql, g.psql),
           pintent = coalesce(update_generated_template.pintent, g.pintent),
           comment = coalesce(update_generated_template.comment, g.comment),
           explanation = coalesce(update_generated_template.explanation, g.explanation),
           weight = coalesce(update_generated_template.weight, g.weight)
     WHERE g.id = update_generated_template.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'generated template % does not exist', id USING ERRCODE = 'undefined_object',
            HINT = 'See alloydb_ai_nl.generated_templates_view.';
    END IF;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.drop_generated_template(id bigint)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
    DELETE FROM alloydb_ai_nl.g_generated_templates AS g WHERE g.id = drop_generated_template.id;
    RETURN FOUND;
END;
$$;

CREATE FUNCTION alloydb_ai_nl.apply_generated_templates(nl_config text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    applied integer;
BEGIN
    PERFORM alloydb_ai_nl._check_configuration(nl_config);
    INSERT INTO alloydb_ai_nl.g_template_store
        (config, type, manifest, nl, sql, intent, psql, pintent, comment, explanation, weight)
    SELECT g.config, g.type, g.manifest, g.nl, g.sql, g.intent, g.psql, g.pintent, g.comment,
           g.explanation, g.weight
      FROM alloydb_ai_nl.g_generated_templates AS g WHERE g.config = nl_config ORDER BY g.id;
    GET DIAGNOSTICS applied = ROW_COUNT;
    DELETE FROM alloydb_ai_nl.g_generated_templates AS g WHERE g.config = nl_config;
    RETURN applied;
END;
$$;

-- ===========================================================================
-- 6. get_sql, execute_nl_query, get_sql_summary
-- ===========================================================================

-- Everything the engine needs to answer one question, read as the extension's owner (the stores
-- are not readable by PUBLIC); the SQL it answers is checked and run as the caller.
CREATE FUNCTION alloydb_ai_nl._question_context(nl_config text, question text)
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'question', question,
        'general_context', (SELECT coalesce(jsonb_agg(g.context ORDER BY g.id), '[]')
                              FROM alloydb_ai_nl.g_general_context AS g WHERE g.configuration_id = nl_config),
        'templates', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'id', t.id, 'intent', t.intent, 'pintent', t.pintent, 'sql', t.sql, 'psql', t.psql,
                          'manifest', t.manifest, 'explanation', t.explanation, 'weight', t.weight) ORDER BY t.id), '[]')
                        FROM alloydb_ai_nl.g_template_store AS t WHERE t.config = nl_config AND t.enabled),
        'fragments', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'id', f.id, 'intent', f.intent, 'pintent', f.pintent, 'fragment', f.fragment,
                          'pfragment', f.pfragment, 'table_aliases', to_jsonb(f.table_aliases),
                          'manifest', f.manifest) ORDER BY f.id), '[]')
                        FROM alloydb_ai_nl.g_fragment_store AS f WHERE f.config = nl_config AND f.enabled),
        -- Index values named in the question (whole words, any case), or through a synonym.
        'values', (SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object(
                          'phrase', m.phrase, 'value', m.value, 'concept_type', m.concept_type,
                          'columns', m.column_names)), '[]')
                     FROM (SELECT v.value AS phrase, v.value, v.concept_type, v.column_names
                             FROM alloydb_ai_nl.g_value_index AS v
                            WHERE v.config = nl_config AND length(v.value) > 1
                              AND strpos(lower(question), lower(v.value)) > 0
                              AND lower(question) ~ ('(^|\W)' || regexp_replace(lower(v.value), '([.^$*+?()[\]{}|\\])', '\\\1', 'g') || '($|\W)')
                           UNION
                           SELECT s, v.value, v.concept_type, v.column_names
                             FROM alloydb_ai_nl.g_synonym_set AS y, unnest(y.synonyms) AS s,
                                  unnest(y.synonyms) AS other
                             JOIN alloydb_ai_nl.g_value_index AS v ON v.config = nl_config AND lower(v.value) = lower(other)
                            WHERE length(s) > 1 AND strpos(lower(question), lower(s)) > 0
                              AND lower(question) ~ ('(^|\W)' || regexp_replace(lower(s), '([.^$*+?()[\]{}|\\])', '\\\1', 'g') || '($|\W)')
                          ) AS m),
        'value_columns', (SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object(
                          'columns', c.column_names, 'concept_type', c.concept_type)), '[]')
                            FROM alloydb_ai_nl.g_value_index_columns AS c
                           WHERE c.config = nl_config OR c.config IS NULL))
$$;

CREATE FUNCTION alloydb_ai_nl._check_psv_params(param_names text[], param_values text[])
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF param_names IS NULL AND param_values IS NULL THEN
        RETURN;  -- no parameters
    END IF;
    IF param_names IS NULL OR param_values IS NULL
       OR cardinality(param_names) <> cardinality(param_values) THEN
        RAISE EXCEPTION 'Invalid PSV named parameters'
            USING ERRCODE = 'raise_exception',
                  HINT = 'Pass param_names and param_values as two arrays of the same length, or leave both out.';
    END IF;
    -- Two empty arrays (what Google's MCP Toolbox sent for a tool without parameters, until its
    -- PR #2265) are no parameters where parameterized secure views are enabled, as on the
    -- Toolbox's own test instance; without them AlloyDB refuses them so: "AlloyDB AI rejects
    -- empty text-arrays with SQLSTATE P0001 - Invalid PSV named parameters" (a telecom demo run
    -- on AlloyDB for PostgreSQL 17), "If there are no params and psv is not enabled in the
    -- instance, the query execution will fail" (the Toolbox's issue #1970, by its maintainers).
    IF cardinality(param_names) = 0
       AND pg_catalog.to_regprocedure(
               'parameterized_views.execute_parameterized_query(text,text[],text[])') IS NULL THEN
        RAISE EXCEPTION 'Invalid PSV named parameters'
            USING ERRCODE = 'raise_exception',
                  HINT = 'Parameters need the parameterized_views extension (CREATE EXTENSION parameterized_views); for none, leave param_names and param_values out.';
    END IF;
END;
$$;

-- The generation loop: ask the engine, check the answer with EXPLAIN as the caller, and ask again
-- with the error (AlloyDB's feedback loop) up to three times.
CREATE FUNCTION alloydb_ai_nl._generate_sql(nl_config_id text, nl_question text, additional_info jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    context jsonb;
    answer jsonb;
    attempts jsonb := '[]';
    error_msg text;
    retries integer := 0;
    max_retries CONSTANT integer := 3;
    verbose_mode boolean := coalesce((additional_info ->> 'verbose_mode')::boolean, false);
BEGIN
    -- Before 1.0.3 the question came first (the MCP Toolbox before 0.19 still sends it so): when
    -- the arguments look swapped, the error says which one is the configuration.
    IF NOT EXISTS (SELECT FROM alloydb_ai_nl.g_configuration AS c WHERE c.configuration_id = nl_config_id)
       AND EXISTS (SELECT FROM alloydb_ai_nl.g_configuration AS c WHERE c.configuration_id = nl_question) THEN
        PERFORM alloydb_ai_nl.g_check_alloydb_ai_nl_enabled();
        RAISE EXCEPTION 'The configuration % does not exist.', nl_config_id
            USING ERRCODE = 'undefined_object',
                  HINT = format('"%s" is a configuration: the configuration comes first, then the question '
                                '(since alloydb_ai_nl 1.0.3), or name them: nl_config_id => ..., nl_question => ....',
                                nl_question);
    END IF;
    PERFORM alloydb_ai_nl._check_configuration(nl_config_id);
    IF coalesce(btrim(nl_question), '') = '' THEN
        RAISE EXCEPTION 'nl_question must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(nl_question) > 10000 THEN
        RAISE EXCEPTION 'nl_question is too long (% characters; at most 10000)', length(nl_question)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    context := alloydb_ai_nl._question_context(nl_config_id, nl_question)
               || jsonb_build_object('schema', alloydb_ai_nl._schema_of(nl_config_id),
                                     'additional_info', coalesce(additional_info, '{}'));
    LOOP
        answer := alloydb_ai_nl._ask_engine(nl_config_id, 'sql', context || jsonb_build_object('attempts', attempts));
        IF coalesce(answer ->> 'sql', '') = '' THEN
            -- After refused attempts, the last EXPLAIN error says more than "nothing else fits".
            error_msg := coalesce(attempts -> -1 ->> 'error', nullif(answer ->> 'error', ''),
                                  'no SQL was generated');
            EXIT;
        END IF;
        error_msg := alloydb_ai_nl._explain_error(answer ->> 'sql');
        EXIT WHEN error_msg IS NULL;
        attempts := attempts || jsonb_build_array(jsonb_build_object('sql', answer ->> 'sql', 'error', error_msg));
        EXIT WHEN retries >= max_retries - 1;
        retries := retries + 1;
    END LOOP;
    RETURN jsonb_build_object(
        'sql', CASE WHEN error_msg IS NULL THEN answer ->> 'sql' ELSE '' END,
        'prompt', CASE WHEN verbose_mode THEN coalesce(answer ->> 'prompt', '') ELSE '' END,
        'retries', retries,
        'error_msg', coalesce(error_msg, ''),
        'nl_question', nl_question);
END;
$$;

CREATE FUNCTION alloydb_ai_nl.get_sql(
    nl_config_id text,
    nl_question text,
    additional_info json DEFAULT '{}',
    param_names text[] DEFAULT NULL,
    param_values text[] DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result jsonb;
BEGIN
    PERFORM alloydb_ai_nl._check_psv_params(param_names, param_values);
    result := alloydb_ai_nl._generate_sql(nl_config_id, nl_question, additional_info::jsonb);
    -- AlloyDB's key order: sql, prompt, retries, error_msg, nl_question.
    RETURN json_build_object('sql', result ->> 'sql', 'prompt', result ->> 'prompt',
                             'retries', (result ->> 'retries')::int, 'error_msg', result ->> 'error_msg',
                             'nl_question', result ->> 'nl_question');
END;
$$;

-- Sets the parameters of parameterized secure views for this transaction, as
-- parameterized_views.<name>. (The views of the parameterized_views extension read theirs from
-- execute_parameterized_query, which the functions below call when it is installed:
-- _run_with_psv_params.)
CREATE FUNCTION alloydb_ai_nl._set_psv_params(param_names text[], param_values text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    i integer;
BEGIN
    PERFORM alloydb_ai_nl._check_psv_params(param_names, param_values);
    FOR i IN 1 .. coalesce(cardinality(param_names), 0) LOOP
        PERFORM pg_catalog.set_config('parameterized_views.' || param_names[i], param_values[i], true);
    END LOOP;
END;
$$;

-- The rows of sql as JSON, one per row: through parameterized_views.execute_parameterized_query
-- when that extension is installed (read-only, its $@name views given the values), else as they
-- come (the values set by _set_psv_params).
CREATE FUNCTION alloydb_ai_nl._run_with_psv_params(sql text, param_names text[], param_values text[])
RETURNS SETOF json
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF pg_catalog.to_regprocedure(
           'parameterized_views.execute_parameterized_query(text,text[],text[])') IS NOT NULL THEN
        RETURN QUERY EXECUTE 'SELECT json_results FROM parameterized_views.execute_parameterized_query($1, $2, $3)'
            USING sql, coalesce(param_names, '{}'), coalesce(param_values, '{}');
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format('SELECT row_to_json(q) FROM (%s) AS q', sql);
END;
$$;

CREATE FUNCTION alloydb_ai_nl._sql_or_error(nl_config_id text, nl_question text)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result jsonb := alloydb_ai_nl._generate_sql(nl_config_id, nl_question, '{}');
BEGIN
    IF coalesce(result ->> 'sql', '') = '' THEN
        RAISE EXCEPTION 'could not generate SQL for the question: %', result ->> 'error_msg'
            USING ERRCODE = 'raise_exception',
                  HINT = 'Add a template, fragment or context that covers it; alloydb_ai_nl.get_sql shows the details.';
    END IF;
    RETURN regexp_replace(result ->> 'sql', ';\s*$', '');
END;
$$;

CREATE FUNCTION alloydb_ai_nl.execute_nl_query(
    nl_config_id text,
    nl_question text,
    param_names text[] DEFAULT NULL,
    param_values text[] DEFAULT NULL)
RETURNS SETOF json
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM alloydb_ai_nl._set_psv_params(param_names, param_values);
    RETURN QUERY SELECT alloydb_ai_nl._run_with_psv_params(
        alloydb_ai_nl._sql_or_error(nl_config_id, nl_question), param_names, param_values);
END;
$$;

CREATE FUNCTION alloydb_ai_nl.get_sql_summary(
    nl_config_id text,
    nl_question text,
    param_names text[] DEFAULT NULL,
    param_values text[] DEFAULT NULL)
RETURNS json
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    sql text;
    rows json;
    total bigint;
    answer jsonb;
BEGIN
    PERFORM alloydb_ai_nl._set_psv_params(param_names, param_values);
    sql := alloydb_ai_nl._sql_or_error(nl_config_id, nl_question);
    -- json, sent as text: the rows keep their columns' order (jsonb would sort the keys).
    SELECT count(*), coalesce(json_agg(r) FILTER (WHERE n <= 20), '[]')
      INTO total, rows
      FROM (SELECT r, row_number() OVER () AS n
              FROM alloydb_ai_nl._run_with_psv_params(sql, param_names, param_values) AS r) AS s;
    answer := alloydb_ai_nl._ask_engine(nl_config_id, 'summary', jsonb_build_object(
        'question', nl_question, 'sql', sql, 'rows', rows::text, 'row_count', total));
    RETURN json_build_object('answer', answer ->> 'answer');
END;
$$;

-- ===========================================================================
-- 7. Privileges, pg_dump
-- ===========================================================================

-- The stores are the administrator's (they configure what questions can become); anyone may
-- read the views and ask questions. The generated SQL runs with the asker's rights.
REVOKE ALL ON ALL TABLES IN SCHEMA alloydb_ai_nl FROM PUBLIC;
GRANT SELECT ON alloydb_ai_nl.template_store_view, alloydb_ai_nl.fragment_store_view,
                alloydb_ai_nl.generated_schema_context_view, alloydb_ai_nl.value_index_columns,
                alloydb_ai_nl.generated_value_index_columns_view, alloydb_ai_nl.generated_templates_view
   TO PUBLIC;
-- _check_configuration and _ask_engine read g_configuration as the caller; let every caller see
-- which configurations exist (not their stores).
GRANT SELECT ON alloydb_ai_nl.g_configuration, alloydb_ai_nl.g_magic_configuration TO PUBLIC;
GRANT SELECT ON alloydb_ai_nl.g_concept_type, alloydb_ai_nl.concept_types_user_defined,
                alloydb_ai_nl.g_value_index_columns, alloydb_ai_nl.g_configuration_relation,
                alloydb_ai_nl.g_configuration_schema
   TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_configuration', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_configuration_relation', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_configuration_schema', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_general_context', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_generated_schema_context', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_concept_type', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_value_index_columns', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_generated_value_index_columns', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_value_index', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_synonym_set', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_template_store', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_generated_templates', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_fragment_store', '');
-- Their id sequences too, or a restored database would hand out ids that exist.
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_general_context_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_generated_schema_context_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_value_index_columns_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_generated_value_index_columns_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_synonym_set_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_template_store_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_generated_templates_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('alloydb_ai_nl.g_fragment_store_id_seq', '');
