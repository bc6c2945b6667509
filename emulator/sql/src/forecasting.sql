-- Time-series forecasting: ai.forecast / google_ml.forecast with a model of type
-- ts_forecasting, such as TimesFM deployed to a Vertex AI endpoint. Page:
-- ai/perform-time-series-forecasting ("version 1.4.5 or later"); parameters in
-- reference/model-endpoint. The flag google_ml_integration.enable_forecasting gates it.
--
-- The request is what the TimesFM serving container on a Vertex AI endpoint takes,
-- {"instances": [{"input": [...history...], "horizon": H}]}, and its answer
-- {"predictions": [{"point_forecast": [...], "p10": [...], ..., "p90": [...]}]} gives the
-- forecast and the deciles that the interval for conf_level is read from.

-- @version 1.4.5

-- The standard normal quantile for p in (0, 1) (Abramowitz and Stegun 26.2.23, error below
-- 4.5e-4): extends the deciles a model answers to the bounds of conf_level above 0.8.
CREATE FUNCTION google_ml._normal_quantile(p double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE WHEN p = 0.5 THEN 0 ELSE sign(p - 0.5) * (t - (2.515517 + 0.802853 * t + 0.010328 * t * t)
               / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t)) END
      FROM (SELECT sqrt(-2 * ln(least(p, 1 - p))) AS t) AS s
$$;

-- The q-quantile (0 < q < 1) of one forecast step from the model's deciles p10..p90
-- (deciles[1..9]): linear between deciles, a normal tail outside them. NULL without deciles.
CREATE FUNCTION google_ml._forecast_quantile(deciles double precision[], q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    -- rounded: (1 - 0.8) / 2 is 0.0999... in floating point, and must read p10
    pos double precision := round((q * 10)::numeric, 9)::double precision;
    lo int;
    sigma double precision;
BEGIN
    IF deciles IS NULL OR pg_catalog.array_length(deciles, 1) <> 9 OR pg_catalog.array_position(deciles, NULL) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF pos >= 1 AND pos <= 9 THEN
        lo := least(floor(pos)::int, 8);
        RETURN deciles[lo] + (deciles[lo + 1] - deciles[lo]) * (pos - lo);
    END IF;
    -- outside p10..p90: the normal distribution with the deciles' median and p10-p90 spread
    sigma := (deciles[9] - deciles[1]) / (2 * 1.2815515655446004);
    RETURN deciles[5] + google_ml._normal_quantile(q) * sigma;
END;
$$;


-- The time series (timestamp, value) of a table or a query, oldest first, with the caller's
-- rights. source_query may be a query or a FROM item, as the documentation shows both:
-- 'SELECT ...' and '(SELECT ... LIMIT 1) AS time_series_data'.
CREATE FUNCTION google_ml._forecast_history(
    source_table text, source_query text, data_col text, timestamp_col text,
    OUT points timestamptz[], OUT vals double precision[])
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    source text;
    pick text := 'SELECT pg_catalog.array_agg(t ORDER BY t), pg_catalog.array_agg(v ORDER BY t) '
                 'FROM (SELECT (%1$I)::timestamptz AS t, (%2$I)::double precision AS v FROM %3$s) AS s '
                 'WHERE t IS NOT NULL AND v IS NOT NULL';
BEGIN
    IF source_table IS NOT NULL THEN
        source := source_table::regclass::text;  -- parses and checks the name; 42P01 if none
        EXECUTE pg_catalog.format(pick, timestamp_col, data_col, source) INTO points, vals;
        RETURN;
    END IF;
    source := pg_catalog.rtrim(source_query, E' \t\r\n;');  -- a query may end with ';'
    BEGIN
        EXECUTE pg_catalog.format(pick, timestamp_col, data_col,
                                  '(' || source || ') AS source_query')
            INTO points, vals;
    EXCEPTION WHEN syntax_error THEN
        -- not a query on its own: a FROM item such as '(SELECT ...) AS name'
        EXECUTE pg_catalog.format(pick, timestamp_col, data_col, source) INTO points, vals;
    END;
END;
$$;


CREATE FUNCTION google_ml.forecast(
    model_id text DEFAULT NULL,
    source_table text DEFAULT NULL,
    source_query text DEFAULT NULL,
    data_col text DEFAULT NULL,
    timestamp_col text DEFAULT NULL,
    horizon integer DEFAULT NULL,
    conf_level double precision DEFAULT NULL)
RETURNS TABLE (
    forecast_timestamp timestamptz,
    forecast_value double precision,
    confidence_level double precision,
    prediction_interval_lower_bound double precision,
    prediction_interval_upper_bound double precision,
    ai_forecast_status text)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    m google_ml.models;
    history record;
    n int;
    step double precision;
    response jsonb;
    prediction jsonb;
    point jsonb;
    h int;
    deciles double precision[];
BEGIN
    PERFORM google_ml._require_model_support();
    PERFORM google_ml._require_flag('enable_forecasting', 'ai.forecast');
    IF model_id IS NULL THEN
        RAISE EXCEPTION 'model_id is required: the id of a registered ts_forecasting model'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (source_table IS NULL) = (source_query IS NULL) THEN
        RAISE EXCEPTION 'give either source_table or source_query (exactly one)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF data_col IS NULL OR timestamp_col IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN data_col IS NULL THEN 'data_col' ELSE 'timestamp_col' END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon IS NULL OR horizon < 1 OR horizon > 128 THEN
        RAISE EXCEPTION 'horizon must be from 1 to 128, not %', coalesce(horizon::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF conf_level IS NULL OR conf_level <= 0 OR conf_level >= 1 THEN
        RAISE EXCEPTION 'conf_level must be between 0 and 1 (exclusive), not %',
                coalesce(conf_level::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- AlloyDB's order, as LangChain's live tests of google_ml.forecast pin it: the model must
    -- exist (P0001, its own words), then the source and its columns are read (PostgreSQL's
    -- 42P01 / 42703), and only then is the model's type checked.
    m := google_ml._model_for_call(model_id);
    IF m.id IS NULL THEN
        RAISE EXCEPTION 'Model does not exist for model_id: %', model_id
            USING ERRCODE = 'raise_exception',
                  HINT = 'Register it with CALL google_ml.create_model(..., model_type => ''ts_forecasting''), '
                         'or list models with SELECT * FROM google_ml.model_info_view.';
    END IF;
    SELECT * INTO history
      FROM google_ml._forecast_history(source_table, source_query, data_col, timestamp_col);
    IF m.model_type IS DISTINCT FROM 'ts_forecasting' THEN
        RAISE EXCEPTION 'model "%" is a % model, not a ts_forecasting model', model_id, m.model_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Register the forecasting model with model_type => ''ts_forecasting''.';
    END IF;
    n := coalesce(pg_catalog.array_length(history.vals, 1), 0);
    IF n < 2 THEN
        RAISE EXCEPTION 'data_col "%" must contain more than one value to forecast from (found %)',
                data_col, n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the forecast's time step: the median interval between consecutive time points
    SELECT pg_catalog.percentile_disc(0.5) WITHIN GROUP (ORDER BY d) INTO step
      FROM (SELECT extract(epoch FROM history.points[i] - history.points[i - 1]) AS d
              FROM pg_catalog.generate_series(2, n) AS i) AS gaps
     WHERE d > 0;
    IF step IS NULL THEN
        RAISE EXCEPTION 'timestamp_col "%" must hold more than one distinct time point', timestamp_col
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    response := google_ml._predict(m, pg_catalog.json_build_object(
        'instances', pg_catalog.json_build_array(pg_catalog.json_build_object(
            'input', pg_catalog.to_json(history.vals), 'horizon', horizon))))::jsonb;
    prediction := response #> '{predictions,0}';
    IF pg_catalog.jsonb_typeof(prediction -> 'point_forecast') IS DISTINCT FROM 'array'
       OR pg_catalog.jsonb_array_length(prediction -> 'point_forecast') < horizon THEN
        RAISE EXCEPTION 'model "%" did not answer a forecast of % points', model_id, horizon
            USING ERRCODE = 'external_routine_exception',
                  DETAIL = 'Expected {"predictions": [{"point_forecast": [...], "p10": [...], ..., "p90": [...]}]}; got: '
                           || left(response::text, 300);
    END IF;
    FOR h IN 1 .. horizon LOOP
        point := prediction -> 'point_forecast' -> (h - 1);
        SELECT pg_catalog.array_agg((prediction -> ('p' || d * 10) ->> (h - 1))::double precision ORDER BY d)
          INTO deciles FROM pg_catalog.generate_series(1, 9) AS d;
        forecast_timestamp := history.points[n] + pg_catalog.make_interval(secs => step * h);
        forecast_value := (point #>> '{}')::double precision;
        confidence_level := conf_level;
        prediction_interval_lower_bound := google_ml._forecast_quantile(deciles, (1 - conf_level) / 2);
        prediction_interval_upper_bound := google_ml._forecast_quantile(deciles, (1 + conf_level) / 2);
        ai_forecast_status := NULL;  -- the step was forecast (no page documents the column's values)
        RETURN NEXT;
    END LOOP;
END;
$$;

CREATE FUNCTION ai.forecast(
    model_id text DEFAULT NULL,
    source_table text DEFAULT NULL,
    source_query text DEFAULT NULL,
    data_col text DEFAULT NULL,
    timestamp_col text DEFAULT NULL,
    horizon integer DEFAULT NULL,
    conf_level double precision DEFAULT NULL)
RETURNS TABLE (
    forecast_timestamp timestamptz,
    forecast_value double precision,
    confidence_level double precision,
    prediction_interval_lower_bound double precision,
    prediction_interval_upper_bound double precision,
    ai_forecast_status text)
LANGUAGE sql VOLATILE
AS $$
    SELECT * FROM google_ml.forecast(model_id, source_table, source_query, data_col,
                                     timestamp_col, horizon, conf_level)
$$;
