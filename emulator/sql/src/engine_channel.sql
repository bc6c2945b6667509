-- The callback channel to the emulator engine (docs/internals.md).

-- @version 1.2

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
    result  jsonb;
BEGIN
    IF request ->> 'op' = 'invoke_batch' THEN
        -- One aggregate, not a jsonb concatenation per item (which copies the array each time).
        SELECT coalesce(jsonb_agg(google_ml._authorized_request(e.r) ORDER BY e.i), '[]')
          INTO result
          FROM jsonb_array_elements(request -> 'requests') WITH ORDINALITY AS e (r, i);
        IF jsonb_typeof(request -> 'store') = 'object' THEN
            -- A warm-up the engine stores itself: under this statement's key, never one the
            -- caller names (emulator/engine/warm_copy.py).
            request := jsonb_set(request, '{store,key}', to_jsonb(google_ml._statement_key()));
        END IF;
        RETURN jsonb_set(request, '{requests}', result);
    END IF;
    IF request ->> 'op' IN ('stream_next', 'stream_drop', 'stream_wait', 'warmup_fell_back',
                            'warmup_row_missed') THEN
        RETURN request;  -- the rest of a streamed invoke_batch, authorized when it started
    END IF;
    SELECT * INTO m FROM google_ml.models AS x WHERE x.id = request ->> 'model_id';
    IF request ? 'vertex_path' AND m.request_url IS DISTINCT FROM request ->> 'vertex_path' THEN
        -- An unregistered Vertex AI path whose shortened id is also a registered id: the path
        -- wins (it only ever leads to Vertex AI, with the service agent's credentials).
        m := NULL;
    END IF;
    IF m.id IS NULL THEN
        m := google_ml._vertex_model(coalesce(request ->> 'vertex_path', request ->> 'model_id'),
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


-- Hands one request (docs/internals.md) to the engine and returns its answer as text
-- (large batched answers stay text: json, not jsonb, is cheap to walk once). One named
-- connection per backend, kept open; reconnects once if it was lost. Engine errors arrive
-- as PostgreSQL errors with the engine's SQLSTATE.
--
-- Interruptible model calls. dblink's synchronous call cannot be interrupted: on a cancel it
-- drains the connection, so the statement ended only when the model answered. Its asynchronous
-- pair (send, then get the result) waits interruptibly on PostgreSQL 17 and later, so a
-- pg_cancel_backend() from any session, a client's cancel and statement_timeout all end the
-- statement at once. The connection, with the call still pending on it, is then closed, and the
-- engine abandons the call when it sees it close. After any other error the connection is
-- drained (its end-of-results) so the next call finds it idle.

CREATE FUNCTION google_ml._dblink_send_query(text, text)
RETURNS int
AS '$libdir/dblink', 'dblink_send_query'
LANGUAGE C STRICT;

CREATE FUNCTION google_ml._dblink_get_result(text)
RETURNS SETOF record
AS '$libdir/dblink', 'dblink_get_result'
LANGUAGE C STRICT;

REVOKE ALL ON FUNCTION google_ml._dblink_send_query(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink_get_result(text) FROM PUBLIC;

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
    target text;
    retried boolean := false;
BEGIN
    request := google_ml._authorized_request(request);
    -- On PostgreSQL 16 and older the wait cannot be interrupted: the engine keeps the
    -- statement_timeout too, answering 57014 when this much time is left.
    timeout_ms := extract(epoch FROM pg_catalog.current_setting('statement_timeout')::interval) * 1000;
    IF timeout_ms > 0 THEN
        request := request || jsonb_build_object('deadline_ms', greatest(0, timeout_ms
            - extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000));
    END IF;
    target := CASE
        WHEN worker_connection = ANY (open_connections) THEN worker_connection
        WHEN connection_name = ANY (open_connections) THEN connection_name
        -- First call of this process: a new connection, named for what the process is.
        ELSE google_ml._engine_connect(connection_name)
    END;
    IF target = worker_connection THEN
        -- A parallel worker: no subtransactions allowed (so no retry, no clean-up), and it is
        -- short-lived; the synchronous call.
        SELECT t.r INTO response
          FROM google_ml._dblink(worker_connection, request::text) AS t (r text);
    ELSE
        LOOP
            BEGIN
                IF google_ml._dblink_send_query(connection_name, request::text) <> 1 THEN
                    RAISE EXCEPTION 'the connection to the emulator engine is lost'
                        USING ERRCODE = 'connection_failure';
                END IF;
                SELECT t.r INTO response
                  FROM google_ml._dblink_get_result(connection_name) AS t (r text);
                PERFORM FROM google_ml._dblink_get_result(connection_name) AS t (r text);
                EXIT;
            EXCEPTION
                WHEN query_canceled THEN
                    -- Cancelled or timed out while the engine works: close the connection
                    -- (the engine abandons the call), report the cancel.
                    PERFORM google_ml._dblink_disconnect(connection_name);
                    RAISE;
                WHEN connection_failure THEN
                    -- 08006: the connection broke (engine restarted, proxy gone). Once more.
                    IF retried THEN
                        RAISE;
                    END IF;
                    retried := true;
                    PERFORM google_ml._engine_connect(connection_name);
                WHEN OTHERS THEN
                    -- The engine's error for this call: read the end of its results.
                    PERFORM FROM google_ml._dblink_get_result(connection_name) AS t (r text);
                    RAISE;
            END;
        END LOOP;
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


-- Functions and procedures are executable by PUBLIC by default; the dblink
-- entry points and the engine plumbing are not.
REVOKE ALL ON FUNCTION google_ml._dblink_connect(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink_disconnect(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._dblink_get_connections() FROM PUBLIC;
REVOKE ALL ON FUNCTION google_ml._engine_connect(text) FROM PUBLIC;
REVOKE ALL ON TABLE google_ml._engine_endpoint FROM PUBLIC;
-- _call_engine stays executable: every model call of every user goes through it.

-- A GRANT on the schema's objects wholesale (the documented GRANT SELECT, INSERT, UPDATE,
-- DELETE ON ALL TABLES IN SCHEMA google_ml; deploy scripts' GRANT EXECUTE ON ALL FUNCTIONS IN
-- SCHEMA google_ml) would also reach the machinery kept from PUBLIC above and in later files:
-- the dblink channel to the engine (which skips _authorized_request's checks), the endpoint,
-- the warm-up cache, the auto-embedding configurations. On AlloyDB such a grant hands out
-- nothing of the kind. So after every GRANT, the extension's own objects whose name starts with
-- an underscore and that PUBLIC may not use go back to their owner alone.
CREATE FUNCTION google_ml._keep_machinery_private()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    granted record;
BEGIN
    FOR granted IN
        SELECT 'FUNCTION ' || p.oid::regprocedure::text AS object, a.grantee
          FROM pg_depend AS d
          JOIN pg_proc AS p ON p.oid = d.objid
         CROSS JOIN LATERAL aclexplode(p.proacl) AS a
         WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
           AND d.refclassid = 'pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_extension AS e
                              WHERE e.extname = 'google_ml_integration')
           AND starts_with(p.proname, '_') AND a.grantee <> p.proowner
           AND NOT EXISTS (SELECT FROM aclexplode(p.proacl) AS x WHERE x.grantee = 0)
        UNION
        SELECT 'TABLE ' || c.oid::regclass::text, a.grantee
          FROM pg_depend AS d
          JOIN pg_class AS c ON c.oid = d.objid
         CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
           AND d.refclassid = 'pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_extension AS e
                              WHERE e.extname = 'google_ml_integration')
           AND starts_with(c.relname, '_') AND a.grantee <> c.relowner
           AND NOT EXISTS (SELECT FROM aclexplode(c.relacl) AS x WHERE x.grantee = 0)
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %I', granted.object,
                       pg_get_userbyid(granted.grantee));
    END LOOP;
END;
$$;

CREATE EVENT TRIGGER google_ml_keep_machinery_private ON ddl_command_end
    WHEN TAG IN ('GRANT')
    EXECUTE FUNCTION google_ml._keep_machinery_private();
