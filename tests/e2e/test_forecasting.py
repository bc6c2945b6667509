"""ai.forecast / google_ml.forecast with a TimesFM model, as ai/perform-time-series-forecasting
prints them (placeholders filled in), against the fake TimesFM of emulator/fakes/forecasting.py.
The page's own line breaks are kept.

The live path (the same SQL against a local HTTP server speaking the endpoint's format) is in
tests/e2e/test_model_calls_e2e.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg
import pytest

from tests.support.databases import fresh_database
from tests.support.emulators import Emulator

DB = "forecasting_tests"

# "Register the TimesFM model in AlloyDB", with REGION, PROJECT_ID and ENDPOINT_ID filled in
REGISTER = """CALL google_ml.create_model(
model_id => 'timesfm_v2',
model_qualified_name => 'timesfm_v2',
model_type => 'ts_forecasting',
model_provider => 'google',
model_request_url => 'https://us-central1-aiplatform.googleapis.com/v1/projects/forecast_project/locations/us-central1/endpoints/my-timesfm-endpoint:predict' );"""

# "To confirm that the ai.forecast function works as expected, run the following sample query"
SAMPLE = """SELECT * FROM ai.forecast(
source_query => '
SELECT my_timestamp, my_data_value FROM (
VALUES
(CAST(''2025-01-01'' AS TIMESTAMP), 10.0),
(CAST(''2025-01-02'' AS TIMESTAMP), 12.0),
(CAST(''2025-01-03'' AS TIMESTAMP), 11.0),
(CAST(''2025-01-04'' AS TIMESTAMP), 13.0),
(CAST(''2025-01-05'' AS TIMESTAMP), 15.0),
(CAST(''2025-01-06'' AS TIMESTAMP), 14.0),
(CAST(''2025-01-07'' AS TIMESTAMP), 16.0),
(CAST(''2025-01-08'' AS TIMESTAMP), 18.0),
(CAST(''2025-01-09'' AS TIMESTAMP), 17.0),
(CAST(''2025-01-10'' AS TIMESTAMP), 20.0)
) AS t (my_timestamp, my_data_value)
',
model_id => 'timesfm_v2',
data_col => 'my_data_value',
timestamp_col => 'my_timestamp',
-- The rest of the parameters are the same
horizon => 7,
conf_level => 0.80
);"""

# "Generate forecasts from a source table" / "from a query", MODEL_ID filled in
FROM_TABLE = """SELECT * FROM ai.forecast(
model_id => 'timesfm_v2',
source_table => 'time_series_data',
data_col => 'data_points',
timestamp_col => 'timestamp',
horizon => 2,
conf_level => 0.80
);"""

FROM_QUERY = """SELECT * FROM ai.forecast(
model_id => 'timesfm_v2',
source_query => '(SELECT * FROM time_series_data ORDER BY timestamp LIMIT 1) AS time_series_data',
data_col => 'data_points',
timestamp_col => 'timestamp',
horizon => 2,
conf_level => 0.80
);"""


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    dsn = fresh_database(emulator, DB)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {DB} SET google_ml_integration.enable_forecasting = on")
        conn.execute(REGISTER)
        conn.execute("CREATE TABLE time_series_data (timestamp timestamptz, data_points numeric)")
        conn.execute("INSERT INTO time_series_data SELECT '2025-03-01'::timestamptz + i * "
                     "interval '1 hour', 100 + 2 * i + (i % 3) FROM generate_series(0, 47) i")
    return dsn


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def test_the_version_check_of_the_page_runs(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    (version,) = conn.execute(  # type: ignore[misc]
        "SELECT extversion FROM pg_extension WHERE extname = 'google_ml_integration' ;").fetchone()
    assert tuple(int(p) for p in str(version).split(".")) >= (1, 4, 5)


def test_the_sample_query_forecasts_the_trend(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    cur = conn.execute(SAMPLE)
    assert [c.name for c in cur.description or ()] == [
        "forecast_timestamp", "forecast_value", "confidence_level",
        "prediction_interval_lower_bound", "prediction_interval_upper_bound", "ai_forecast_status"]
    rows = cur.fetchall()
    assert len(rows) == 7
    stamps = [r[0] for r in rows]
    assert stamps[0].replace(tzinfo=None) == datetime(2025, 1, 11)
    assert all(b - a == timedelta(days=1) for a, b in pairwise(stamps))
    values = [r[1] for r in rows]
    assert values == sorted(values) and values[0] > 18  # the history rises by about 1 a day
    assert all(r[2] == pytest.approx(0.8) for r in rows)
    widths = [r[4] - r[3] for r in rows]
    assert all(r[3] < r[1] < r[4] for r in rows)
    assert all(r[5] is None for r in rows)  # no step failed
    assert widths == sorted(widths) and widths[-1] > widths[0]  # wider further ahead


def test_a_higher_confidence_level_widens_the_interval(
    conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    def widths(level: str) -> list[float]:
        rows = conn.execute(SAMPLE.replace("0.80", level)).fetchall()
        return [r[4] - r[3] for r in rows]

    narrow, middle, wide = widths("0.5"), widths("0.8"), widths("0.99")
    assert all(a < b < c for a, b, c in zip(narrow, middle, wide, strict=True))


def test_forecast_from_a_source_table(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    rows = conn.execute(FROM_TABLE).fetchall()
    assert len(rows) == 2
    last = datetime(2025, 3, 2, 23, tzinfo=UTC)
    assert [r[0] for r in rows] == [last + timedelta(hours=1), last + timedelta(hours=2)]
    assert 190 < rows[0][1] < 200  # 100 + 2 * 48, give or take the wobble
    twin = conn.execute(FROM_TABLE.replace("ai . forecast", "google_ml.forecast")).fetchall()
    assert twin == rows


def test_the_documented_query_form_and_its_one_row(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    # The page's source_query example limits the history to one row, and the parameter
    # reference says the data column "must contain more than one value".
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="more than one value"):
        conn.execute(FROM_QUERY)
    rows = conn.execute(FROM_QUERY.replace("LIMIT 1", "LIMIT 10")).fetchall()
    assert len(rows) == 2
    # a query ending with a semicolon reads the same
    with_semicolon = SAMPLE.replace("my_data_value)\n'", "my_data_value);\n'")
    assert with_semicolon != SAMPLE
    assert conn.execute(with_semicolon).fetchall() == conn.execute(SAMPLE).fetchall()


@pytest.mark.parametrize(("change", "error", "fragment"), [
    (("horizon => 7", "horizon => 129"), psycopg.errors.InvalidParameterValue, "from 1 to 128"),
    (("horizon => 7", "horizon => 0"), psycopg.errors.InvalidParameterValue, "from 1 to 128"),
    (("0.80", "1"), psycopg.errors.InvalidParameterValue, "between 0 and 1"),
    (("model_id => 'timesfm_v2'", "model_id => 'text-embedding-005'"),
     psycopg.errors.InvalidParameterValue, "not a ts_forecasting model"),
    (("model_id => 'timesfm_v2'", "model_id => 'no_such_model'"),
     psycopg.errors.RaiseException, "Model does not exist for model_id: no_such_model"),
    (("data_col => 'my_data_value'", "data_col => 'no_such_col'"),
     psycopg.errors.UndefinedColumn, "no_such_col"),
    (("source_query =>", "source_table => 'x', source_query =>"),
     psycopg.errors.InvalidParameterValue, "exactly one"),
])
def test_bad_input_is_refused_clearly(
    conn: psycopg.Connection[tuple[Any, ...]], change: tuple[str, str], error: type[Exception],
    fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        conn.execute(SAMPLE.replace(*change))


def test_the_flag_gates_forecasting(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    conn.execute("SET google_ml_integration.enable_forecasting = off")
    with pytest.raises(psycopg.errors.RaiseException, match="enable_forecasting"):
        conn.execute(SAMPLE)


def test_forecasts_are_deterministic(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    assert conn.execute(SAMPLE).fetchall() == conn.execute(SAMPLE).fetchall()


# langchain-google-alloydb-pg's live tests of google_ml.forecast (AlloyDBEngine.aforecast against
# an AlloyDB instance): an unknown model is P0001 "Model does not exist for model_id: <id>", the
# id as given; the model is checked first, then the source and its columns are read (names as
# given, quoted), and only then the model's type.
def test_forecast_checks_in_alloydbs_order(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    conn.execute('CREATE SCHEMA IF NOT EXISTS "Fc_Sch"')
    conn.execute('CREATE TABLE IF NOT EXISTS "Fc_Sch"."MiXed" AS SELECT timestamp \'2026-01-01\' '
                 '+ i * interval \'1 day\' AS "Ts", (i % 7)::float8 AS "Val" '
                 "FROM generate_series(0, 29) AS i")
    call = ("SELECT * FROM google_ml.forecast(model_id => %s, source_table => %s, "
            "data_col => %s, timestamp_col => %s, horizon => 3, conf_level => 0.8)")
    padded = "  langchain_missing_model_x  "
    for source in ['"Fc_Sch"."MiXed"', '"Fc_Sch"."no_such_table"']:  # the source is not read yet
        with pytest.raises(psycopg.errors.RaiseException) as info:
            conn.execute(call, [padded, source, "Val", "Ts"])
        assert info.value.diag.message_primary == f"Model does not exist for model_id: {padded}"
        assert info.value.diag.sqlstate == "P0001"
    # a registered model of another type: the source is read first, its own errors unchanged
    other = "text-embedding-005"
    for source, data, stamp, error in [
        ('"MiXed"', "Val", "Ts", psycopg.errors.UndefinedTable),  # not on the search_path
        ('"Fc_Sch"."MiXed_x"', "Val", "Ts", psycopg.errors.UndefinedTable),
        ('"Fc_Sch"."MiXed"', "val", "Ts", psycopg.errors.UndefinedColumn),  # case kept
        ('"Fc_Sch"."MiXed"', "Val", " Ts ", psycopg.errors.UndefinedColumn),  # not stripped
    ]:
        with pytest.raises(error, match="does not exist"):
            conn.execute(call, [other, source, data, stamp])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a ts_forecasting") as read:
        conn.execute(call, [other, '"Fc_Sch"."MiXed"', "Val", "Ts"])
    assert "MiXed" not in str(read.value)
    # ... and the same through a query, and through ai.forecast
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a ts_forecasting"):
        conn.execute("SELECT * FROM ai.forecast(model_id => %s, source_query => %s, data_col => 'Val', "
                     "timestamp_col => 'Ts', horizon => 3, conf_level => 0.8)",
                     [other, 'SELECT "Ts", "Val" FROM "Fc_Sch"."MiXed"'])
    rows = conn.execute(call, ["timesfm_v2", '"Fc_Sch"."MiXed"', "Val", "Ts"]).fetchall()
    assert len(rows) == 3 and all(len(r) == 6 and r[5] is None for r in rows)
    assert all(r[0].replace(tzinfo=None) > datetime(2026, 1, 30) for r in rows)
