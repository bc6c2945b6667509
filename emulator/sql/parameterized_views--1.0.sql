-- parameterized_views 1.0, emulated on stock PostgreSQL (docs/parameterized-views.md).
--
-- AlloyDB's parameterized secure views: a view names parameters as $@name, and
-- parameterized_views.execute_parameterized_query(query, param_names, param_values) runs an
-- untrusted query with those values, returning each row as JSON (column json_results).
--
-- How the emulator does it:
--   * PostgreSQL's grammar has no $@name. The emulator's proxy turns a CREATE VIEW that uses
--     them into parameterized_views._create_view(head, probe, template, names), which asks
--     PostgreSQL the type each parameter takes where it stands (a PREPARE of the view's query
--     with $1, $2, ... in their places) and creates the view with
--     (SELECT parameterized_views._view_parameter('name'))::<that type> in each place.
--   * The values of a call (a JSON object: name -> value, names case-sensitive as AlloyDB's
--     are) are the one row of a cursor, parameterized_views_values, that the call opens before
--     the query runs and that ends with it. A query cannot close or open a cursor (only
--     statements can), so it cannot change the values its views read, as it could a setting.
--     alloydb_ai_nl's functions run their SQL through execute_parameterized_query.
--   * The query runs as the caller, in a subtransaction made read-only and rolled back when it
--     ends, so it can change nothing (its settings go with it). It must be one query that
--     returns rows.
--
-- SQLSTATEs: 55000 the flag parameterized_views.enabled is off, P0001 bad parameter names or
-- values (AlloyDB's "Invalid PSV named parameters"), 42P02 a view parameter without a value,
-- 42601 a query that is not one query, 25006 a query that writes.

\echo Use "CREATE EXTENSION parameterized_views" to load this file. \quit

CREATE SCHEMA parameterized_views;
GRANT USAGE ON SCHEMA parameterized_views TO PUBLIC;

-- The flag parameterized_views.enabled ("Requires parameterized_views.enabled set to true"):
-- on AlloyDB it loads the extension's library. The emulator treats an unset flag as on (nothing
-- to configure) and honours an explicit off.
CREATE FUNCTION parameterized_views._check_enabled()
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- PostgreSQL's words for false (as google_ml._parse_bool and the proxy's SHOW read them)
    IF lower(btrim(coalesce(pg_catalog.current_setting('parameterized_views.enabled', true), '')))
       IN ('off', 'of', 'f', 'fa', 'fal', 'fals', 'false', 'n', 'no', '0') THEN
        RAISE EXCEPTION 'parameterized views are not enabled'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set the flag parameterized_views.enabled to on (ALTER SYSTEM SET parameterized_views.enabled = on; SELECT pg_reload_conf();).';
    END IF;
END;
$$;

SELECT parameterized_views._check_enabled();

-- param_names / param_values: two arrays of one length (both empty for no parameters, as
-- Google's MCP Toolbox sends them), names as AlloyDB allows them (a letter or underscore, then
-- letters, digits, underscores; no $), each once.
CREATE FUNCTION parameterized_views._check_parameters(param_names text[], param_values text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    bad text;
BEGIN
    IF param_names IS NULL OR param_values IS NULL
       OR cardinality(param_names) <> cardinality(param_values) THEN
        RAISE EXCEPTION 'Invalid PSV named parameters'
            USING ERRCODE = 'raise_exception',
                  HINT = 'Pass param_names and param_values as two arrays of the same length (ARRAY[]::text[] twice for none).';
    END IF;
    SELECT n INTO bad FROM unnest(param_names) AS n
     WHERE n IS NULL OR n !~ '^[[:alpha:]_][[:alnum:]_]*$' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'Invalid PSV named parameters'
            USING ERRCODE = 'raise_exception',
                  DETAIL = format('%s is not a view parameter name.', coalesce(quote_literal(bad), 'NULL')),
                  HINT = 'A name starts with a letter or an underscore, followed by letters, digits or underscores, as in $@app_end_userid (without the $@).';
    END IF;
    SELECT n INTO bad FROM unnest(param_names) AS n GROUP BY n HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'Invalid PSV named parameters'
            USING ERRCODE = 'raise_exception',
                  DETAIL = format('%s is named twice.', quote_literal(bad)),
                  HINT = 'Name each view parameter once.';
    END IF;
END;
$$;

-- The value of $@name in the query being run: what a view stores in each parameter's place
-- (inside a scalar subquery, so it is read once per query).
CREATE FUNCTION parameterized_views._view_parameter(name text)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    call_values refcursor := 'parameterized_views_values';
    vals jsonb;
BEGIN
    BEGIN
        FETCH ABSOLUTE 1 FROM call_values INTO vals;
    EXCEPTION WHEN invalid_cursor_name THEN
        vals := NULL;  -- not inside execute_parameterized_query
    END;
    IF vals IS NULL OR NOT vals ? name THEN
        RAISE EXCEPTION 'no value for the view parameter $@%', name
            USING ERRCODE = 'undefined_parameter',
                  HINT = 'Query parameterized secure views with parameterized_views.execute_parameterized_query(query => ..., param_names => ARRAY[...], param_values => ARRAY[...]), naming every parameter the views use.';
    END IF;
    RETURN vals ->> name;
END;
$$;

-- The values of param_names / param_values as the call's cursor holds them.
CREATE FUNCTION parameterized_views._values(param_names text[], param_values text[])
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce(jsonb_object_agg(n, v), '{}'::jsonb)
      FROM unnest(param_names, param_values) AS p(n, v)
$$;

-- The query without what may follow its one statement: whitespace, semicolons, comments (as a
-- statement's parse ignores them: "SELECT ...; -- done" is one query). Tried only when the
-- query as written fails to parse: this reading does not know string literals ('--' in one).
CREATE FUNCTION parameterized_views._without_trailer(query text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    body text := query;
    before text;
BEGIN
    LOOP
        before := body;
        body := regexp_replace(body, '\s+$', '');
        body := regexp_replace(body, ';$', '');
        body := regexp_replace(body, '--[^\n]*$', '');
        body := regexp_replace(body, '/\*([^*]|\*+[^*/])*\*+/$', '');
        EXIT WHEN body = before;
    END LOOP;
    RETURN body;
END;
$$;

CREATE FUNCTION parameterized_views.execute_parameterized_query(
    query text,
    param_names text[],
    param_values text[])
RETURNS TABLE (json_results json)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    vals jsonb;
    call_values refcursor := 'parameterized_views_values';
    bodies text[];
    body text;
    cur refcursor;
    row_json json;
    results json[];
    done boolean := false;
    first_error text;
BEGIN
    PERFORM parameterized_views._check_enabled();
    PERFORM parameterized_views._check_parameters(param_names, param_values);
    IF query IS NULL OR btrim(query) = '' THEN
        RAISE EXCEPTION 'the query to run is empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    vals := parameterized_views._values(param_names, param_values);
    -- One query that returns rows: a trailing semicolon is dropped and the query becomes a
    -- subquery, which no other statement (DML, utility, a second statement) can be. Should that
    -- not parse, the query without what trails its statement (semicolons, comments) is tried.
    bodies := ARRAY[regexp_replace(query, ';\s*$', '')];
    IF parameterized_views._without_trailer(query) <> bodies[1] THEN
        bodies := bodies || parameterized_views._without_trailer(query);
    END IF;
    FOREACH body IN ARRAY bodies LOOP
        results := '{}';
        BEGIN
            PERFORM pg_catalog.set_config('transaction_read_only', 'on', true);
            -- (a second call inside the query finds the name taken: 42P03)
            OPEN call_values SCROLL FOR SELECT vals;
            OPEN cur FOR EXECUTE 'SELECT pg_catalog.row_to_json(psv_query.*) FROM (' || body
                                 || E'\n) AS psv_query';
            LOOP
                FETCH cur INTO row_json;
                EXIT WHEN NOT FOUND;
                results := results || row_json;
            END LOOP;
            CLOSE cur;
            -- Roll the subtransaction back: read-only mode and the values' cursor end with the
            -- query (an error ends them too).
            RAISE EXCEPTION USING ERRCODE = 'PVEND';
        EXCEPTION
            WHEN SQLSTATE 'PVEND' THEN done := true;
            WHEN syntax_error THEN first_error := coalesce(first_error, SQLERRM);
        END;
        EXIT WHEN done;
    END LOOP;
    IF NOT done THEN
        -- PostgreSQL's message (for the query as written), with what the function takes
        RAISE EXCEPTION '%', first_error
            USING ERRCODE = 'syntax_error',
                  HINT = 'execute_parameterized_query runs one read-only query (SELECT, WITH ... SELECT, VALUES), without other statements.';
    END IF;
    RETURN QUERY SELECT unnest(results);
END;
$$;

-- CREATE VIEW with $@name parameters, as the proxy hands it over:
--   head      the statement up to its query ("CREATE VIEW v WITH (security_barrier) AS ")
--   probe     the query with $1, $2, ... for the parameters (numbered as in names)
--   template  the query for format(): % doubled, %1$s, %2$s, ... for the parameters
--   names     the parameters' names, as written (case-sensitive)
CREATE FUNCTION parameterized_views._create_view(head text, probe text, template text, names text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    probe_name constant text := 'parameterized_views_type_probe';
    types text[];
    places text[] := '{}';
    position int;
    i int;
BEGIN
    PERFORM parameterized_views._check_enabled();
    IF EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE name = probe_name) THEN
        EXECUTE format('DEALLOCATE %I', probe_name);
    END IF;
    BEGIN
        EXECUTE format('PREPARE %I AS %s', probe_name, probe);
    EXCEPTION WHEN indeterminate_datatype THEN
        position := substring(SQLERRM FROM 'parameter \$([0-9]+)')::int;
        RAISE EXCEPTION 'could not determine data type of view parameter $@%', names[position]
            USING ERRCODE = 'indeterminate_datatype',
                  HINT = 'Cast it where the view uses it, as in $@name::text.';
    END;
    -- The type by its catalog name, without a type modifier: character, as format_type
    -- writes bpchar, would be character(1) in a cast.
    SELECT array_agg(format('%I.%I', n.nspname, ty.typname) ORDER BY u.o) INTO types
      FROM pg_catalog.pg_prepared_statements AS p,
           unnest(p.parameter_types::oid[]) WITH ORDINALITY AS u(t, o)
           JOIN pg_catalog.pg_type AS ty ON ty.oid = u.t
           JOIN pg_catalog.pg_namespace AS n ON n.oid = ty.typnamespace
     WHERE p.name = probe_name;
    EXECUTE format('DEALLOCATE %I', probe_name);
    FOR i IN 1 .. cardinality(names) LOOP
        -- named "?column?" as a $n is, should the parameter stand alone in a select list
        places := places || format('(SELECT parameterized_views._view_parameter(%L) AS "?column?")::%s',
                                   names[i], types[i]);
    END LOOP;
    EXECUTE head || format(template, VARIADIC places);
END;
$$;
