-- alloydb_ai_emulator 1.0: the call inspector from SQL (docs/inspector.md).
-- The emulator keeps the recent model calls in memory (serve --inspector-port); these objects
-- ask it for them over the callback channel of google_ml_integration (docs/internals.md).
-- The emulator answers only with the calls made in the caller's database by the caller's
-- login role (it knows both from the session the backend serves), whatever the request says.

\echo Use "CREATE EXTENSION alloydb_ai_emulator" to load this file. \quit

CREATE SCHEMA alloydb_ai_emulator;

-- One request to the emulator on a connection of its own (not the model calls' one, whose
-- asynchronous state must not be disturbed), closed afterwards.
CREATE FUNCTION alloydb_ai_emulator._ask(request text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    connection_name CONSTANT text := 'alloydb_ai_emulator_inspector';
    response text;
BEGIN
    PERFORM google_ml._engine_connect(connection_name);
    BEGIN
        SELECT t.r INTO response FROM google_ml._dblink(connection_name, request) AS t (r text);
    EXCEPTION WHEN OTHERS THEN
        PERFORM google_ml._dblink_disconnect(connection_name);
        RAISE;
    END;
    PERFORM google_ml._dblink_disconnect(connection_name);
    RETURN response;
END;
$$;

REVOKE ALL ON FUNCTION alloydb_ai_emulator._ask(text) FROM PUBLIC;

CREATE FUNCTION alloydb_ai_emulator.calls_json()
RETURNS jsonb
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT alloydb_ai_emulator._ask('{"op": "inspector_calls"}')::jsonb
$$;

COMMENT ON FUNCTION alloydb_ai_emulator.calls_json() IS
    'The recent model calls of this database and role, newest first, as the inspector''s JSON.';

CREATE VIEW alloydb_ai_emulator.calls AS
SELECT (c ->> 'id')::bigint                 AS id,
       (c ->> 'time')::timestamptz          AS call_time,
       c ->> 'database'                     AS database,
       c ->> 'role'                         AS role,
       (c ->> 'backend_pid')::int           AS backend_pid,
       c ->> 'model_id'                     AS model_id,
       c ->> 'provider'                     AS provider,
       c ->> 'url'                          AS url,
       c ->> 'route'                        AS route,
       (c ->> 'status')::int                AS http_status,
       c ->> 'sqlstate'                     AS sqlstate,
       c ->> 'error'                        AS error,
       (c ->> 'latency_ms')::double precision AS latency_ms,
       (c ->> 'cache_hit')::boolean         AS cache_hit,
       (c ->> 'batch_size')::int            AS batch_size,
       (c ->> 'in_batch')::int              AS in_batch,
       (c ->> 'retries')::int               AS retries,
       c -> 'request_headers'               AS request_headers,
       c ->> 'request_body'                 AS request_body,
       (c ->> 'request_truncated')::boolean AS request_truncated,
       c ->> 'response_body'                AS response_body,
       (c ->> 'response_truncated')::boolean AS response_truncated
  FROM jsonb_array_elements(alloydb_ai_emulator.calls_json()) AS c;

COMMENT ON VIEW alloydb_ai_emulator.calls IS
    'Recent model calls of this database and role, newest first (serve --inspector-port).';

CREATE FUNCTION alloydb_ai_emulator.clear_calls()
RETURNS bigint
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT alloydb_ai_emulator._ask('{"op": "inspector_clear"}')::bigint
$$;

COMMENT ON FUNCTION alloydb_ai_emulator.clear_calls() IS
    'Forgets the recorded calls of this database and role; answers how many went.';

GRANT USAGE ON SCHEMA alloydb_ai_emulator TO PUBLIC;
GRANT SELECT ON alloydb_ai_emulator.calls TO PUBLIC;
