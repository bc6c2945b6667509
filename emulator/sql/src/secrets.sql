-- Secret Manager secrets: paths only, never values.

-- @version 1.3

CREATE TABLE google_ml.secrets (
    secret_id    text PRIMARY KEY,
    -- projects/P/secrets/S/versions/N|latest; the value itself is never stored.
    secret_path  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz
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


SELECT pg_catalog.pg_extension_config_dump('google_ml.secrets', '');
