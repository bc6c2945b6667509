-- Hybrid search: ai.hybrid_search (vector and text components fused by Reciprocal Rank Fusion)
-- and ai.g_to_tsquery, its default text query parser. Pages:
-- reference/ai/hybrid-search-function-parameters, ai/run-hybrid-vector-similarity-search.
--
-- AlloyDB's documentation names no minimum extension version for these preview functions
-- (released 2026-03); they come with the newest version the emulator offers.

-- @version 1.5.8

-- The "more data-rich" tsquery of AlloyDB's g_to_tsquery: text that is already tsquery syntax
-- is read as such (to_tsquery); plain text matches all its words as a phrase, all of them, or
-- any of them, so ts_rank ranks documents by how much of the query they hold rather than
-- dropping those that lack one word (the emulator's reading of the page; AlloyDB does not
-- document the exact form).
CREATE FUNCTION ai.g_to_tsquery(config regconfig, query text)
RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL SAFE STRICT
AS $$
DECLARE
    words text[];
    any_word tsquery;
BEGIN
    IF query ~ '[&|!()]|<->|<[0-9]+>|:\*' THEN
        RETURN pg_catalog.to_tsquery(config, query);
    END IF;
    SELECT array_agg(DISTINCT lexeme) INTO words
      FROM pg_catalog.unnest(pg_catalog.to_tsvector(config, query)) AS t;
    IF words IS NULL THEN
        RETURN pg_catalog.plainto_tsquery(config, query);  -- only stop words: an empty query
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(w), ' | ')::tsquery INTO any_word
      FROM pg_catalog.unnest(words) AS w;
    IF pg_catalog.array_length(words, 1) = 1 THEN
        RETURN any_word;
    END IF;
    RETURN pg_catalog.phraseto_tsquery(config, query)
        || pg_catalog.plainto_tsquery(config, query) || any_word;
END;
$$;

CREATE FUNCTION ai.g_to_tsquery(query text)
RETURNS tsquery
LANGUAGE sql STABLE PARALLEL SAFE STRICT
AS $$ SELECT ai.g_to_tsquery(pg_catalog.get_current_ts_config(), query) $$;


-- A qualified name from a JSON field, each part quoted (format %I): 'documents',
-- 'public.documents', '"My Table"'. Raises 22023 naming the field.
CREATE FUNCTION google_ml._hybrid_name(value text, what text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    parts text[];
BEGIN
    IF value IS NULL OR btrim(value) = '' THEN
        RAISE EXCEPTION '% is required', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.strpos(value, '.') = 0 AND pg_catalog.strpos(value, '"') = 0 THEN
        RETURN pg_catalog.format('%I', value);
    END IF;
    BEGIN
        parts := pg_catalog.parse_ident(value);
    EXCEPTION WHEN invalid_parameter_value OR syntax_error THEN
        RAISE EXCEPTION '% is not a valid name: %', what, value
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a name, optionally schema-qualified (schema.name).';
    END;
    RETURN (SELECT pg_catalog.string_agg(pg_catalog.format('%I', p), '.')
              FROM pg_catalog.unnest(parts) AS p);
END;
$$;


-- An operator from a JSON field ('<=>', 'public.<=>'): characters of an operator name only,
-- written OPERATOR(schema.op) when qualified.
CREATE FUNCTION google_ml._hybrid_operator(value text, what text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    m text[];
BEGIN
    m := pg_catalog.regexp_match(coalesce(value, ''),
                                 '^\s*(?:("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*\.\s*)?([-+*/<>=~!@#%^&|`?]+)\s*$');
    IF m IS NULL THEN
        RAISE EXCEPTION '% is not an operator: %', what, coalesce(value, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a distance operator such as ''<=>'' (cosine), ''<->'' (L2) or '
                         '''<#>'' (inner product), optionally schema-qualified (''public.<=>'').';
    END IF;
    IF m[1] IS NULL THEN
        RETURN m[2];
    END IF;
    RETURN pg_catalog.format('OPERATOR(%s.%s)', google_ml._hybrid_name(m[1], what), m[2]);
END;
$$;


-- One search component as a query answering (key text, rank bigint), best first. Ranks are
-- 1, 2, 3, ... (ties broken by the key, so a result never depends on the plan).
CREATE FUNCTION google_ml._hybrid_component_sql(input jsonb, pos int)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    what text := pg_catalog.format('search_inputs[%s]', pos);
    data_type text := input->>'data_type';
    allowed text[];
    unknown text;
    tbl text;
    key_col text;
    lim bigint;
    filter text := '';
    col text;
    col_type regtype;
    document text;
    ranking text;
    parser text;
    query_text text;
BEGIN
    IF pg_catalog.jsonb_typeof(input) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION '% must be a JSON object', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF data_type = 'vector' THEN
        allowed := ARRAY['data_type', 'table_name', 'key_column', 'vec_column', 'distance_operator',
                         'query_vector', 'limit', 'weight', 'filter_condition'];
    ELSIF data_type = 'text' THEN
        allowed := ARRAY['data_type', 'table_name', 'key_column', 'text_column', 'query_text_input',
                         'limit', 'weight', 'ranking_function', 'query_parser', 'filter_condition'];
    ELSE
        RAISE EXCEPTION '%.data_type must be ''vector'' or ''text'', not %', what,
                coalesce(pg_catalog.quote_literal(data_type), 'missing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO unknown FROM pg_catalog.jsonb_object_keys(input) AS k
     WHERE k <> ALL (allowed) LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION '%: unknown field "%" for a % component', what, unknown, data_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fields: ' || pg_catalog.array_to_string(allowed, ', ') || '.';
    END IF;
    tbl := google_ml._hybrid_name(input->>'table_name', what || '.table_name');
    key_col := google_ml._hybrid_name(input->>'key_column', what || '.key_column');
    IF pg_catalog.jsonb_typeof(input->'limit') IS DISTINCT FROM 'number'
       AND (pg_catalog.jsonb_typeof(input->'limit') IS DISTINCT FROM 'string'
            OR (input->>'limit') !~ '^\s*[0-9]+\s*$') THEN
        RAISE EXCEPTION '%.limit is required: a positive integer', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        lim := (input->>'limit')::numeric::bigint;
    EXCEPTION WHEN OTHERS THEN
        lim := NULL;
    END;
    IF lim IS NULL OR lim < 1 OR (input->>'limit')::numeric <> lim THEN
        RAISE EXCEPTION '%.limit must be a positive integer, not %', what, input->>'limit'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(btrim(input->>'filter_condition'), '') <> '' THEN
        filter := pg_catalog.format(' WHERE (%s)', input->>'filter_condition');
    END IF;

    IF data_type = 'vector' THEN
        col := google_ml._hybrid_name(input->>'vec_column', what || '.vec_column');
        IF coalesce(btrim(input->>'query_vector'), '') = '' THEN
            RAISE EXCEPTION '%.query_vector is required', what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'An SQL expression that gives the vector, such as '
                             '''ai.embedding(''''text-embedding-005'''', ''''query'''')::vector''.';
        END IF;
        document := pg_catalog.format('%s %s (%s)', col,
            google_ml._hybrid_operator(input->>'distance_operator', what || '.distance_operator'),
            input->>'query_vector');
        RETURN pg_catalog.format(
            -- the inner ORDER BY is the vector index's: nothing may be added to it
            'SELECT key, pg_catalog.row_number() OVER (ORDER BY distance, key) AS rank '
            'FROM (SELECT (%1$s)::text AS key, %2$s AS distance '
            'FROM %3$s%4$s ORDER BY %2$s LIMIT %5$s) AS nearest',
            key_col, document, tbl, filter, lim);
    END IF;

    col := google_ml._hybrid_name(input->>'text_column', what || '.text_column');
    query_text := input->>'query_text_input';
    IF query_text IS NULL THEN
        RAISE EXCEPTION '%.query_text_input is required', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a tsvector column is searched as it is; a text column through to_tsvector
    BEGIN
        SELECT a.atttypid::regtype INTO col_type FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = tbl::regclass AND a.attname = (input->>'text_column')
           AND NOT a.attisdropped;
    EXCEPTION WHEN undefined_table OR invalid_name OR syntax_error THEN
        col_type := NULL;  -- the query itself will say what is wrong
    END;
    document := CASE WHEN col_type IS NULL OR col_type = 'tsvector'::regtype THEN col
                     ELSE pg_catalog.format('pg_catalog.to_tsvector(%s)', col) END;
    parser := coalesce(nullif(btrim(input->>'query_parser'), ''), 'ai.g_to_tsquery');
    IF parser !~ '^\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(\s*\.\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))?\s*$' THEN
        RAISE EXCEPTION '%.query_parser is not a function name: %', what, parser
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ai.g_to_tsquery (the default), plainto_tsquery, to_tsquery or '
                         'websearch_to_tsquery.';
    END IF;
    parser := pg_catalog.format('%s(%L)', google_ml._hybrid_name(parser, what || '.query_parser'),
                                query_text);
    ranking := coalesce(nullif(btrim(input->>'ranking_function'), ''), 'ts_rank');
    IF ranking ~ '^\s*[-+*/<>=~!@#%^&|`?]+\s*$'
       OR ranking ~ '^\s*[A-Za-z_"][^.]*\.\s*[-+*/<>=~!@#%^&|`?]+\s*$' THEN
        -- a RUM index's distance operator ('<=>'): smaller is better
        ranking := pg_catalog.format('%s %s %s', document,
            google_ml._hybrid_operator(ranking, what || '.ranking_function'), parser);
        RETURN pg_catalog.format(
            'SELECT (%1$s)::text AS key, pg_catalog.row_number() OVER (ORDER BY %2$s, %1$s) AS rank '
            'FROM %3$s WHERE %4$s @@ %5$s%6$s ORDER BY %2$s, %1$s LIMIT %7$s',
            key_col, ranking, tbl, document, parser,
            CASE WHEN filter = '' THEN '' ELSE ' AND' || substr(filter, 7) END, lim);
    END IF;
    IF ranking !~ '^\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(\s*\.\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))?\s*$' THEN
        RAISE EXCEPTION '%.ranking_function is not a function name or operator: %', what, ranking
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''ts_rank'' (the default, for GIN indexes), ''ts_rank_cd'', or '
                         '''<=>'' for a RUM index.';
    END IF;
    ranking := pg_catalog.format('%s(%s, %s)',
        google_ml._hybrid_name(ranking, what || '.ranking_function'), document, parser);
    RETURN pg_catalog.format(
        'SELECT (%1$s)::text AS key, pg_catalog.row_number() OVER (ORDER BY %2$s DESC, %1$s) AS rank '
        'FROM %3$s WHERE %4$s @@ %5$s%6$s ORDER BY %2$s DESC, %1$s LIMIT %7$s',
        key_col, ranking, tbl, document, parser,
        CASE WHEN filter = '' THEN '' ELSE ' AND' || substr(filter, 7) END, lim);
END;
$$;


-- A vector component's limit is met even past an HNSW scan's ef_search candidates: pgvector
-- (0.8 and later) continues the scan with hnsw/ivfflat.iterative_scan = relaxed_order, and the
-- component ranks its rows by distance again, so the relaxed order does not matter. Set for the
-- rest of the transaction only where this pgvector has the settings (a function-level SET
-- would make CREATE EXTENSION fail with an older pgvector, which reserves the prefixes); called
-- with NULL it sets them and returns the values to restore, called with those it restores them.
CREATE FUNCTION google_ml._hybrid_iterative_scans(restore text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    names text[] := ARRAY['hnsw.iterative_scan', 'ivfflat.iterative_scan'];
    saved text[] := '{}';
    k int;
BEGIN
    IF restore IS NULL AND pg_catalog.to_regtype('vector') IS NOT NULL THEN
        -- reading a vector loads pgvector, which declares its settings
        EXECUTE pg_catalog.format('SELECT %L::%s', '[1]', pg_catalog.to_regtype('vector'));
    END IF;
    FOR k IN 1 .. 2 LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_settings WHERE name = names[k]) THEN
            saved := saved || NULL::text;
            CONTINUE;
        END IF;
        saved := saved || pg_catalog.current_setting(names[k]);
        IF restore IS NULL THEN
            PERFORM pg_catalog.set_config(names[k], 'relaxed_order', true);
        ELSIF restore[k] IS NOT NULL THEN
            PERFORM pg_catalog.set_config(names[k], restore[k], true);
        END IF;
    END LOOP;
    RETURN saved;
END;
$$;


-- Reciprocal Rank Fusion: an item's score is the sum over the components that found it of
-- weight / (60 + rank). Weights not given share evenly what the given ones leave of 1.
-- SECURITY INVOKER (the default): every expression the caller gives (query_vector,
-- filter_condition) and every table runs with the caller's rights.
--
-- AlloyDB documents one function, `id_type anyelement DEFAULT NULL::text`. PostgreSQL cannot
-- take a polymorphic result type from a default, so a call without id_type would need a column
-- definition list; the emulator has two functions instead: this one, where id_type is given, and
-- the one below, for calls without it (text ids). Every documented call resolves as on AlloyDB.
CREATE FUNCTION ai.hybrid_search(
    search_inputs jsonb[],
    id_type anyelement,
    include_json_output boolean DEFAULT false,
    fusion_algorithm text DEFAULT 'RRF')
RETURNS TABLE (id anyelement, score double precision, detail_json jsonb)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    n int := coalesce(pg_catalog.array_length(search_inputs, 1), 0);
    weights float8[] := '{}';
    given float8 := 0;
    missing int := 0;
    w float8;
    i int;
    started timestamptz;
    keys text[];
    ranks bigint[];
    elapsed int;
    hits jsonb := '[]';
    saved_scans text[];
BEGIN
    PERFORM google_ml._require_flag('enable_preview_ai_functions',
                                    'ai.hybrid_search (a preview function)');
    saved_scans := google_ml._hybrid_iterative_scans(NULL);
    IF upper(coalesce(fusion_algorithm, '')) <> 'RRF' THEN
        RAISE EXCEPTION 'fusion_algorithm % is not supported', coalesce(pg_catalog.quote_literal(fusion_algorithm), 'NULL')
            USING ERRCODE = 'feature_not_supported', HINT = 'The only supported value is ''RRF''.';
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'search_inputs must hold at least one search component'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. n LOOP
        IF search_inputs[i] ? 'weight' THEN
            IF pg_catalog.jsonb_typeof(search_inputs[i]->'weight') <> 'number' THEN
                RAISE EXCEPTION 'search_inputs[%].weight must be a number from 0.0 to 1.0', i
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            w := (search_inputs[i]->>'weight')::float8;
            IF w < 0 OR w > 1 THEN
                RAISE EXCEPTION 'search_inputs[%].weight must be from 0.0 to 1.0, not %', i, w
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            given := given + w;
        ELSE
            w := NULL;
            missing := missing + 1;
        END IF;
        weights := weights || w;
    END LOOP;
    FOR i IN 1 .. n LOOP
        IF weights[i] IS NULL THEN
            weights[i] := CASE WHEN missing = n THEN 1.0 / n
                               ELSE greatest(1.0 - given, 0) / missing END;
        END IF;
    END LOOP;

    FOR i IN 1 .. n LOOP
        started := pg_catalog.clock_timestamp();
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.array_agg(key ORDER BY rank, ord), '
            'pg_catalog.array_agg(rank ORDER BY rank, ord) '
            'FROM (SELECT key, rank, row_number() OVER () AS ord FROM (%s) AS c) AS c',
            google_ml._hybrid_component_sql(search_inputs[i], i))
            INTO keys, ranks;
        elapsed := round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000);
        hits := hits || coalesce((
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'key', k, 'component', i, 'rank', r, 'weight', weights[i],
                       'data_type', search_inputs[i]->>'data_type', 'execute_time_ms', elapsed))
              FROM unnest(keys, ranks) AS u(k, r)), '[]');
    END LOOP;

    RETURN QUERY EXECUTE pg_catalog.format(
        'WITH hits AS ('
        '  SELECT h->>''key'' AS key, (h->>''component'')::int AS component,'
        '         (h->>''rank'')::bigint AS rank, (h->>''weight'')::float8 AS weight,'
        '         h->>''data_type'' AS data_type, (h->>''execute_time_ms'')::int AS ms,'
        '         1.0 / (60 + (h->>''rank'')::numeric) AS component_score'
        '    FROM pg_catalog.jsonb_array_elements($1) AS h),'
        ' fused AS ('
        '  SELECT key, sum(weight * component_score::float8) AS score,'
        '         pg_catalog.jsonb_object_agg(''component_'' || component, pg_catalog.jsonb_build_object('
        '             ''rank'', rank, ''weight'', weight, ''data_type'', data_type,'
        '             ''component_score'', component_score, ''execute_time_ms'', ms)) AS calculation'
        '    FROM hits GROUP BY key)'
        ' SELECT key::%s, score,'
        '        CASE WHEN $2 THEN pg_catalog.jsonb_build_object(''item_id'', key,'
        '             ''calculation'', calculation, ''final_score'', score) END'
        '   FROM fused ORDER BY score DESC, key',
        pg_catalog.pg_typeof(id_type))
        USING hits, coalesce(include_json_output, false);
    PERFORM google_ml._hybrid_iterative_scans(saved_scans);
END;
$$;


CREATE FUNCTION ai.hybrid_search(
    search_inputs jsonb[],
    include_json_output boolean DEFAULT false,
    fusion_algorithm text DEFAULT 'RRF')
RETURNS TABLE (id text, score double precision, detail_json jsonb)
LANGUAGE sql VOLATILE
AS $$
    SELECT * FROM ai.hybrid_search(search_inputs, NULL::text, include_json_output, fusion_algorithm)
$$;
