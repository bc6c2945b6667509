-- The schemas and enum types every other file builds on.

-- @version 1.2

CREATE SCHEMA google_ml;
COMMENT ON SCHEMA google_ml IS
    'AlloyDB AI: model endpoint management, predictions, secrets';

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


GRANT USAGE ON SCHEMA google_ml TO PUBLIC;

-- @version 1.3

-- The ai schema comes with model endpoint management's ai.* mirrors (ai.create_model,
-- ai.embedding, ai.predict_row).

CREATE SCHEMA ai;
COMMENT ON SCHEMA ai IS
    'AlloyDB AI: AI functions (mirrors google_ml)';

GRANT USAGE ON SCHEMA ai TO PUBLIC;
