-- Time-series forecasting: ai.forecast / google_ml.forecast with ts_forecasting models.

-- @version 1.4.5

SELECT 1;
