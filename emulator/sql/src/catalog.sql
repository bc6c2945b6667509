-- Catalog fidelity: what stock PostgreSQL shows differently from AlloyDB (pg_settings).

-- @version 1.2

-- A flag's value as pg_settings shows it: on/off for a bool, the text for a string.
CREATE FUNCTION google_ml._setting_text(name text, vartype text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN vartype = 'bool'
                THEN CASE WHEN google_ml._flag(name) THEN 'on' ELSE 'off' END
                ELSE google_ml._setting(name) END
$$;

-- One pg_settings-shaped row per google_ml_integration.* flag. Same column names
-- and types as pg_catalog.pg_settings, in order, so the proxy can splice
-- google_ml.pg_settings_with_flags into a query that reads pg_settings.
CREATE VIEW google_ml._settings
WITH (security_invoker = true)
AS
SELECT
    'google_ml_integration.' || d.name                          AS name,
    google_ml._setting_text(d.name, d.vartype)                  AS setting,
    NULL::text                                                  AS unit,
    'Customized Options'::text                                  AS category,
    d.description                                               AS short_desc,
    NULL::text                                                  AS extra_desc,
    'user'::text                                                AS context,
    d.vartype                                                   AS vartype,
    CASE WHEN raw.value IS NULL THEN 'default' ELSE 'session' END AS source,
    NULL::text                                                  AS min_val,
    NULL::text                                                  AS max_val,
    NULL::text[]                                                AS enumvals,
    d.default_value                                             AS boot_val,
    google_ml._setting_text(d.name, d.vartype)                  AS reset_val,
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


-- The settings views read only pg_settings and current_setting(), so anyone may.
GRANT SELECT ON google_ml._settings TO PUBLIC;
GRANT SELECT ON google_ml.pg_settings_with_flags TO PUBLIC;
