-- The google_ml_integration.* flags: defaults, parsing, and the checks that gate functions.

-- @version 1.2

-- The google_ml_integration.* settings: name (without prefix), default (as pg_settings shows
-- it), type (bool or string), description, from emulator/flags.py (their one home: the proxy
-- answers SHOW from it in a database without the extension). On AlloyDB they are instance
-- flags, present whatever the extension's version, so every version lists them all.
CREATE FUNCTION google_ml._flag_defaults()
RETURNS TABLE (name text, default_value text, vartype text, description text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES
        {{FLAG_DEFAULTS}}
$$;

-- The value of a string setting google_ml_integration.<name>: the setting when it is set and
-- not empty, its default otherwise.
CREATE FUNCTION google_ml._setting(name text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        nullif(btrim(pg_catalog.current_setting('google_ml_integration.' || name, true)), ''),
        (SELECT d.default_value FROM google_ml._flag_defaults() AS d WHERE d.name = _setting.name))
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
        (SELECT google_ml._parse_bool(d.default_value) FROM google_ml._flag_defaults() AS d
          WHERE d.name = _flag.name),
        false)
$$;


-- P0001 unless google_ml_integration.<flag> is on (AlloyDB raises P0001 here).
CREATE FUNCTION google_ml._require_flag(flag text, what text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    IF NOT google_ml._flag(flag) THEN
        RAISE EXCEPTION '% is disabled: google_ml_integration.% is off', what, flag
            USING ERRCODE = 'raise_exception',
                  HINT = format('SET google_ml_integration.%s = on; (or ALTER DATABASE/ROLE ... SET, '
                                'or ALTER SYSTEM SET ... and SELECT pg_reload_conf();)', flag);
    END IF;
END;
$$;


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

-- @version 1.3

-- CALL google_ml.check_model_support(): what AlloyDB's documented transform functions call
-- first; 55000 when model support is off.
CREATE PROCEDURE google_ml.check_model_support()
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM google_ml._require_model_support();
END;
$$;

-- CALL google_ml.upgrade_to_preview_version(): what AlloyDB's pages have users call to reach a
-- version with the preview functions. Here every offered version is public, so it updates the
-- extension to the newest one (ALTER EXTENSION google_ml_integration UPDATE), which has them.
CREATE PROCEDURE google_ml.upgrade_to_preview_version()
LANGUAGE plpgsql
AS $$
DECLARE
    installed  text;
    newest     text;
BEGIN
    SELECT e.extversion, a.default_version INTO installed, newest
      FROM pg_catalog.pg_extension AS e
      JOIN pg_catalog.pg_available_extensions AS a ON a.name = e.extname
     WHERE e.extname = 'google_ml_integration';
    IF installed IS NULL THEN
        -- The proxy's stand-in on a server without the extension's files: only the proxy has
        -- the update scripts, so the client runs the update through it.
        IF pg_catalog.to_regproc('google_ml._stand_in_version') IS NOT NULL THEN
            EXECUTE 'SELECT google_ml._stand_in_version()' INTO installed;
        END IF;
        RAISE NOTICE 'google_ml_integration (the emulator''s stand-in) is at version %',
                     coalesce(installed, 'unknown')
            USING HINT = 'Run ALTER EXTENSION google_ml_integration UPDATE; through the emulator '
                         'to reach the newest version.';
    ELSIF installed = newest THEN
        RAISE NOTICE 'google_ml_integration is already at version %, which includes the preview functions', installed;
    ELSE
        ALTER EXTENSION google_ml_integration UPDATE;
        RAISE NOTICE 'google_ml_integration updated from version % to %', installed, newest;
    END IF;
END;
$$;
