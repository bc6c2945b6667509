-- Secret Manager secrets: paths only, never values.

-- @version 1.3

CREATE TABLE google_ml.secrets (
    secret_id    text PRIMARY KEY,
    -- projects/P/secrets/S/versions/N|latest; the value itself is never stored.
    secret_path  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz,
    -- The role that registered it (the emulator's): who may use, change or drop it, with the
    -- roles that have its rights and superusers (google_ml._may_use_secret).
    owner        name NOT NULL DEFAULT CURRENT_USER
);

COMMENT ON TABLE google_ml.secrets IS
    'Secret Manager paths registered with google_ml.create_sm_secret (paths only, never values).';


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


-- Who may use a secret. A secret's value goes to the URL of every model that names it, and
-- the documented GRANT ... ON ALL TABLES IN SCHEMA google_ml lets a role register models and
-- secrets; so naming a secret in a model, changing it and dropping it are for its owner (the
-- role that registered it), the roles that have the owner's rights (GRANT owner TO role), and
-- superusers. Checked by triggers, so that DML on the tables obeys the same rule.
CREATE FUNCTION google_ml._may_use_secret(owner name)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = CURRENT_USER), false)
        OR (EXISTS (SELECT 1 FROM pg_roles AS r WHERE r.rolname = _may_use_secret.owner)
            AND pg_has_role(CURRENT_USER, _may_use_secret.owner, 'USAGE'))
$$;

-- What to do about a secret the current role may not use: its owner's rights, granted; or, for
-- a secret a superuser registered, the secret given to a group role that is granted.
CREATE FUNCTION google_ml._secret_use_hint(secret_id text, owner name)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = _secret_use_hint.owner), false)
        THEN format('A superuser can give the secret to a group role (UPDATE google_ml.secrets SET owner = '
                    '''GROUP_ROLE'' WHERE secret_id = %L;) and GRANT GROUP_ROLE TO %I; or register a '
                    'secret of your own with CALL google_ml.create_sm_secret(...).',
                    _secret_use_hint.secret_id, CURRENT_USER)
        ELSE format('Its owner can run GRANT %I TO %I; or register a secret of your own with '
                    'CALL google_ml.create_sm_secret(...).', _secret_use_hint.owner, CURRENT_USER)
    END
$$;

-- 42501 unless the current role may use secret_id (a secret that does not exist is refused
-- too: a role that may not use it could otherwise name it before its owner registers it).
CREATE FUNCTION google_ml._require_secret_use(secret_id text, model_id text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner name;
BEGIN
    SELECT s.owner INTO owner FROM google_ml.secrets AS s WHERE s.secret_id = _require_secret_use.secret_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model_auth_id: secret "%" does not exist', secret_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it first with CALL google_ml.create_sm_secret(secret_id => ..., secret_path => ...).';
    END IF;
    IF NOT google_ml._may_use_secret(owner) THEN
        RAISE EXCEPTION 'permission denied to use secret "%" in model "%"', secret_id, model_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Secret "%s" belongs to role "%s"; role "%s" may not use it.',
                                  secret_id, owner, CURRENT_USER),
                  HINT = google_ml._secret_use_hint(secret_id, owner);
    END IF;
END;
$$;

-- The rule on google_ml.secrets itself: a row's owner is the role that inserts it (a superuser
-- may name another); only those who may use a secret change or drop it, and nobody but a
-- superuser changes its owner; a role may not register a secret's Secret Manager path (any
-- version of it) that is already registered under a secret it may not use.
CREATE FUNCTION google_ml._guard_secret()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    superuser boolean := coalesce(
        (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = CURRENT_USER), false);
    taken record;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND NOT google_ml._may_use_secret(OLD.owner) THEN
        RAISE EXCEPTION 'permission denied to change secret "%"', OLD.secret_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Secret "%s" belongs to role "%s".', OLD.secret_id, OLD.owner),
                  HINT = google_ml._secret_use_hint(OLD.secret_id, OLD.owner);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT' AND NOT superuser THEN
        NEW.owner := CURRENT_USER;
    ELSIF TG_OP = 'UPDATE' AND NEW.owner IS DISTINCT FROM OLD.owner AND NOT superuser THEN
        RAISE EXCEPTION 'permission denied to change the owner of secret "%"', OLD.secret_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT superuser THEN
        SELECT s.secret_id, s.owner INTO taken FROM google_ml.secrets AS s
         WHERE s.secret_id <> NEW.secret_id
           AND split_part(s.secret_path, '/versions/', 1) = split_part(NEW.secret_path, '/versions/', 1)
           AND NOT google_ml._may_use_secret(s.owner)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'permission denied to use secret path "%"', NEW.secret_path
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('It is the path of secret "%s", which belongs to role "%s".',
                                      taken.secret_id, taken.owner),
                      HINT = google_ml._secret_use_hint(taken.secret_id, taken.owner);
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER guard_secret
    BEFORE INSERT OR UPDATE OR DELETE ON google_ml.secrets
    FOR EACH ROW EXECUTE FUNCTION google_ml._guard_secret();


SELECT pg_catalog.pg_extension_config_dump('google_ml.secrets', '');
