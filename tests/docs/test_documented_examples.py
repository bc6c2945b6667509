# mypy: disable-error-code="index,misc"
"""The SQL examples of Google's AlloyDB AI pages, run as printed against the emulator's fakes.

Pages (docs.cloud.google.com/alloydb/docs/ai/...): summarize-content, analyze-sentiment,
evaluate-semantic-queries-ai-operators, accelerate-queries-optimized-functions,
generate-multimodal-embeddings, generate-manage-auto-embeddings-for-tables (its custom batch model
with a JSONB variant too, on a loopback server), the model endpoint
reference, invoke-predictions, model-endpoint-predictions, work-with-embeddings,
model-endpoint-manage-model (its ``model_auth =>`` form is refused, with a HINT),
perform-vector-search (the tutorial), the older work-with-embeddings copy (embeddings through
ml_predict_row; the GRANT lines), the release notes and configure-vertex-ai (version 1.4.2), the older work-with-embeddings page (version 1.2), register-model-endpoint (its third-party
ranking model), run-vector-similarity-search (its uncast embedding() gets a HINT) and
(docs/reference/) model-endpoint-sample-template and supported-ai-models. Placeholders (PROJECT_ID, MODEL_ID, TEXT_CONTENT, ...) are filled in. A few printed
examples are not valid SQL on any PostgreSQL (a trailing comma before ``)``, a missing comma
between named arguments, a psql-only ``DECLARE x REFCURSOR`` outside PL/pgSQL, an INSERT cut off
by a comment): AlloyDB refuses them too, so they run here with that one mistake corrected, and
each says so. The answers come from the built-in fakes, so the tests check shapes and the
documented behaviour (labels, one row per input, NULLs), not a model's judgement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pglast
import psycopg
import pytest

from emulator import extension_build
from tests.support.databases import fresh_database
from tests.support.emulators import Emulator
from tests.support.http_servers import Reply, ScriptedServer, Seen

DB = "documented_examples"
SENTIMENTS = {"positive", "negative", "neutral"}


@pytest.fixture(scope="module")
def dsn(emulator: Emulator) -> str:
    return fresh_database(emulator, DB)


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def each(conn: psycopg.Connection[Any], script: str) -> None:
    """The script's statements one by one (split by PostgreSQL's scanner), as psql runs it."""
    for statement in pglast.split(script, with_parser=False):
        conn.execute(statement)


def rows(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


# -- summarize-content ---------------------------------------------------------------------------

MOVIE_REVIEWS = """
CREATE TABLE IF NOT EXISTS movie_reviews (
    id INT PRIMARY KEY,
    movie_id INT,
    review TEXT
);
DELETE FROM movie_reviews;
INSERT INTO movie_reviews (id, movie_id, review) VALUES
(1, 1, 'The Midnight Echo represents a masterclass in atmospheric tension. The cinematography captures the isolation of the frozen tundra perfectly while the lead actor delivers a superb performance. Although the pacing slows down significantly in the second act, the final twist remains unexpected. This is a truly remarkable experience.'),
(2, 1, 'Neon Velocity delivers high octane action but lacks the narrative depth required to make the stakes feel real. The visual effects are undeniably stunning, creating a vibrant cyberpunk world that pops off the screen. However, the dialogue feels cliched and the secondary characters are thin. This film is a shallow blockbuster.'),
(3, 2, 'Garden of Whispers is a gentle, moving exploration of grief with a poetic screenplay.')
"""  # printed with a trailing comma and "-- more rows are present in this table": one more row


def preview_on(db: psycopg.Connection[Any]) -> None:
    db.execute("CALL google_ml.upgrade_to_preview_version();")
    db.execute("SET google_ml_integration.enable_preview_ai_functions = 'on';")
    # The printed steps are those of 1.5.7, where the preview flag gates these functions; from
    # 1.6.1 on (the default here) the AI query engine's flag does, as the current pages say.
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")


def test_summarize_page(db: psycopg.Connection[Any]) -> None:
    assert rows(db, "SELECT extversion FROM pg_extension WHERE extname = 'google_ml_integration';"
                ) == [(extension_build.DEFAULT_VERSION,)]
    preview_on(db)
    db.execute(MOVIE_REVIEWS)
    single = rows(db, """SELECT ai.summarize(
  prompt => 'TEXT_CONTENT',
  model_id => 'gemini-2.5-flash-lite' -- Optional
);""")
    assert single[0][0]
    summaries = rows(db, "SELECT ai.summarize(review) FROM movie_reviews;")
    assert len(summaries) == 3 and all(s[0] for s in summaries)
    batched = rows(db, """WITH summarized_results AS (
SELECT
  ARRAY_AGG(id ORDER BY id) as ids,
  ai.summarize(
    prompts => array_agg( 'Please summarize this in max 10 words, review : ' || review
      ORDER BY id),
    batch_size => 15) as summaries
FROM movie_reviews
),
correlated_results AS (
    SELECT ids[i] as ID, summaries[i] as summary
    FROM summarized_results,
    generate_series(1, array_length(ids, 1)) AS i
)
SELECT movie_reviews.id, correlated_results.summary as summary
FROM movie_reviews
JOIN correlated_results ON movie_reviews.id = correlated_results.id
ORDER BY movie_reviews.id DESC ;""")
    assert [r[0] for r in batched] == [3, 2, 1] and all(r[1] for r in batched)
    db.execute("""-- Create a table to store the results
CREATE TABLE IF NOT EXISTS review_summaries (
    review_id INT,
    summary_text TEXT
);

DO $$
DECLARE
    -- Use descriptive cursor and variable names
    review_cursor   REFCURSOR;
    result_record   RECORD;
    cursor_response  REFCURSOR;
    id_array        INT[];
    idx             INT := 1;
BEGIN
    -- 1. Open cursor for the input text
    OPEN review_cursor FOR
        SELECT review AS prompt FROM movie_reviews ORDER BY id;

    -- 2. Call the AI summarize function
    cursor_response := ai.summarize(
        prompt       => 'Please summarize the following review in max 10 words: ',
        input_cursor => review_cursor
    );

    -- 3. Map IDs into an array to maintain relational integrity during the loop
    SELECT ARRAY_AGG(id ORDER BY id) INTO id_array FROM movie_reviews;

    -- 4. Iterate through AI results and insert into the results table
    LOOP
        FETCH cursor_response INTO result_record;
        EXIT WHEN NOT FOUND;

        INSERT INTO review_summaries (review_id, summary_text)
        VALUES (id_array[idx], result_record.output);

        idx := idx + 1;
    END LOOP;

    -- 5. Clean up cursors
    CLOSE review_cursor;
    CLOSE cursor_response;
END;
$$;""")
    stored = rows(db, "SELECT * FROM review_summaries ORDER BY review_id;")
    assert [r[0] for r in stored] == [1, 2, 3] and all(r[1] for r in stored)
    grouped = rows(db, "select ai.agg_summarize(review) from movie_reviews group by movie_id;")
    assert len(grouped) == 2 and all(g[0] for g in grouped)
    # A group without text has no summary; the aggregate skips NULLs.
    assert rows(db, "SELECT ai.agg_summarize(NULL::text)") == [(None,)]


# -- analyze-sentiment ---------------------------------------------------------------------------

REVIEWS = """
CREATE TABLE IF NOT EXISTS reviews (
    id INT PRIMARY KEY,
    review_content TEXT
);

INSERT INTO reviews (id, review_content) VALUES
(1, 'This movie is very good'),
(2, 'The actors play the parts well'),
(3, 'I like the music in this film'),
(4, 'The story is easy to follow'),
(5, 'Many people will enjoy this show'),
(6, 'The film is too long'),
(7, 'I do not like the ending'),
(8, 'This movie is very boring'),
(9, 'The story is okay'),
(10, 'Some parts are fine')
ON CONFLICT DO NOTHING;
"""


def test_analyze_sentiment_page(db: psycopg.Connection[Any]) -> None:
    preview_on(db)
    db.execute(REVIEWS)
    assert rows(db, """SELECT ai.analyze_sentiment(
  prompt => 'This movie is very good',
  model_id => 'gemini-2.5-flash-lite' -- Optional. The default value is gemini-2.5-flash-lite.
);""") == [("positive",)]
    labels = rows(db, """--- Row Level sentiment analysis
SELECT ai.analyze_sentiment(review_content) FROM reviews;""")
    assert len(labels) == 10 and {label for (label,) in labels} <= SENTIMENTS
    assert rows(db, """SELECT ai.analyze_sentiment(
  prompts => ARRAY['I love it, great', 'terrible, it broke'],
  batch_size => 10, -- Optional. The default value is 10.
  model_id => 'gemini-2.5-flash-lite' -- Optional. The default value is gemini-2.5-flash-lite.
);""") == [(["positive", "negative"],)]
    batched = rows(db, """WITH sentiment_results AS (
SELECT
  ARRAY_AGG(id ORDER BY id) as ids,
  ai.analyze_sentiment( 
    prompts => array_agg( 'Please analyze the sentiment of this review  : ' || review_content
      ORDER BY id),
    batch_size => 15) as sentiments 
FROM reviews
),
correlated_results AS (
    SELECT ids[i] as id, sentiments[i] as sentiment
    FROM sentiment_results,
    generate_series(1, array_length(ids, 1)) AS i
)
SELECT reviews.id, correlated_results.sentiment as sentiment 
FROM reviews
JOIN correlated_results ON reviews.id = correlated_results.id
ORDER BY reviews.id DESC;""")
    assert [r[0] for r in batched] == list(range(10, 0, -1))
    assert {r[1] for r in batched} <= SENTIMENTS


def test_analyze_sentiment_cursor_in_a_transaction(dsn: str) -> None:
    # The page's cursor example is "conceptual": DECLARE name REFCURSOR and OPEN are PL/pgSQL,
    # not SQL. The same steps in SQL: a cursor declared in a transaction, passed by name.
    with psycopg.connect(dsn) as conn:
        conn.execute("SET google_ml_integration.enable_preview_ai_functions = 'on'")
        conn.execute("SET google_ml_integration.enable_ai_query_engine = on")  # 1.6.1 and later
        conn.execute(REVIEWS)
        conn.execute("DECLARE review_cursor CURSOR FOR SELECT review_content FROM reviews ORDER BY id")
        (name,) = conn.execute("""SELECT ai.analyze_sentiment(
    prompt => 'Analyze the sentiment of the following movie review:',
    input_cursor => 'review_cursor',
    batch_size => 5  -- Optional: Process in batches of 5
)""").fetchone()
        fetched = conn.execute(f'FETCH ALL FROM "{name}"').fetchall()
        assert [r[0] for r in fetched][:2] == ["This movie is very good",
                                               "The actors play the parts well"]
        assert len(fetched) == 10 and {r[1] for r in fetched} <= SENTIMENTS


def test_unclear_sentiment_is_null(db: psycopg.Connection[Any]) -> None:
    # An answer that is not one of the three labels is NULL (LangChain's AlloyDBSentimentTool
    # relies on it). The fakes always answer a label, so this checks the normalisation itself.
    preview_on(db)
    assert rows(db, "SELECT google_ml._ai_normalize('sentiment', 'Mostly upbeat, I think')"
                ) == [(None,)]
    assert rows(db, "SELECT google_ml._ai_normalize('sentiment', ' Positive.')") == [("positive",)]


# -- evaluate-semantic-queries-ai-operators ------------------------------------------------------

RESTAURANTS = """
DROP TABLE IF EXISTS restaurant_reviews, user_reviews, menu_items;
CREATE TABLE restaurant_reviews (id serial PRIMARY KEY, name text, location_city text, review text);
INSERT INTO restaurant_reviews (name, location_city, review) VALUES
  ('Chez Anna', 'Paris', 'I love it, the food is great'),
  ('Chez Anna', 'Paris', 'terrible service, cold food'),
  ('Diner 9', 'Springfield', 'great burgers, I love them');
CREATE TABLE user_reviews (id serial PRIMARY KEY, review text, review_text text);
INSERT INTO user_reviews (review, review_text) VALUES
  ('The pasta was excellent', 'The pasta was excellent'),
  ('The soup was cold', 'The soup was cold');
CREATE TABLE menu_items (item_name text);
INSERT INTO menu_items VALUES ('pasta'), ('soup');
"""


def test_ai_functions_page(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration . enable_ai_query_engine = on ;")
    db.execute(RESTAURANTS)
    for printed in (
        """SELECT r . name , r . location_city
FROM restaurant_reviews r
WHERE
AI . IF ( r . location_city || ' has a population OF more than 100,000 AND the following is a positive review; Review: ' || r . review )
GROUP BY r . name , r . location_city
HAVING COUNT ( * ) > 500 ;""",
        """SELECT r . name , r . location_city
FROM restaurant_reviews r
WHERE
AI . IF ( r . location_city || ' has a population of more than 100,000 AND the following is a positive review; Review: ' || r . review , model_id = > 'gemini-2.5-flash-lite' )
GROUP BY r . name , r . location_city
HAVING COUNT ( * ) > 500 ;""".replace("= >", "=>"),
    ):
        assert rows(db, printed) == []  # no restaurant has 500 reviews here
    counted = rows(db, """SELECT item_name , COUNT ( * )
FROM menu_items JOIN user_reviews
ON ai . if (
prompt = > 'Does the following user review talk about the menu item mentioned ? review: ' || user_reviews . review_text || ' menu item: ' || item_name )
GROUP BY item_name ;""".replace("= >", "=>"))
    assert all(count >= 1 for _, count in counted)
    summaries = rows(db, """SELECT
ai . generate (
prompt = > 'Summarize the review in 20 words or less. Review: ' || review ) AS review_summary
FROM user_reviews ;""".replace("= >", "=>"))
    assert len(summaries) == 2 and all(s[0] for s in summaries)
    top = rows(db, """SELECT review AS top20
FROM user_reviews
ORDER BY ai . rank (
'Score the following review according to these rules:
(1) Score OF 8 to 10 IF the review says the food IS excellent.
(2) 4 to 7 IF the review says the food is ok.
(3) 1 to 3 IF the review says the food is not good. Here is the review:' || review ) DESC
LIMIT 20 ;""")
    assert len(top) == 2


def test_ai_functions_page_array_examples(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute(RESTAURANTS)
    db.execute("ALTER TABLE restaurant_reviews ADD COLUMN city text")
    db.execute("UPDATE restaurant_reviews SET city = location_city")
    # "Perform filtering using array-based functions": printed with its first line doubled
    # ("WITH initial_arrays AS ( WITH initial_arrays AS (") and no comma after the prompts
    # argument; HAVING COUNT(*) > 10 finds nothing among three reviews, so the test asks > 0.
    filtered = rows(db, """WITH initial_arrays AS (
SELECT
ARRAY_AGG ( r . id ORDER BY r . id ) AS review_ids ,
-- Assuming ai.if takes an array of prompts and returns a boolean array
ai . if (
prompts => ARRAY_AGG ( 'Is the review positive: ' || r . review ORDER BY r . id ),
model_id => 'gemini-2.5-flash-lite' ,
batch_size => 20
) AS truth_values
FROM restaurant_reviews r
),
reviews AS (
SELECT
initial_arrays . review_ids [ i ] AS review_id ,
initial_arrays . truth_values [ i ] AS truth_value
FROM
initial_arrays ,
generate_series ( 1 , array_length ( initial_arrays . review_ids , 1 )) AS i
)
SELECT rest_review . city , rest_review . name
FROM restaurant_reviews rest_review JOIN reviews review ON rest_review . id = review . review_id
WHERE review . truth_value = 't'
GROUP BY rest_review . city , rest_review . name
HAVING COUNT ( * ) > 0 ;""")
    assert set(filtered) <= {("Paris", "Chez Anna"), ("Springfield", "Diner 9")}
    # "Perform text generation using array-based functions": printed with a trailing comma
    # after model_id.
    summaries = rows(db, """SELECT
UNNEST (
ai . generate (
prompts => ARRAY_AGG ( 'Summarize the review in 20 words or less. Review: ' || review ),
model_id => 'gemini-2.5-flash-lite'
)
) AS review_summary
FROM user_reviews ;""")
    assert len(summaries) == 2 and all(s[0] for s in summaries)
    # "Perform scoring using array-based functions": the prompts positionally (printed with a
    # trailing comma after them). Its signature line shows (prompts, model_id); the functions'
    # second parameter is batch_size, as the sentiment page's named call and a real instance's
    # CREATE OR REPLACE of them show, so a model goes by name.
    scores = rows(db, """SELECT
UNNEST (
ai . rank (
ARRAY_AGG ( 'Score the following review according to these rules:
(1) Score OF 8 to 10 IF the review says the food IS excellent.
(2) 4 to 7 IF the review says the food is ok.
(3) 1 to 3 IF the review says the food is not good. Here is the review:' || review )
)
) as review_scores
FROM user_reviews ;""")
    assert len(scores) == 2 and all(isinstance(s[0], float) for s in scores)
    assert rows(db, "SELECT ai.rank(ARRAY['Score 1 to 10: great food'], "
                    "model_id => 'gemini-2.5-flash-lite') IS NOT NULL") == [(True,)]


def test_ai_functions_page_cursor_examples_read_input_and_output(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute(RESTAURANTS)
    db.execute("DROP TABLE IF EXISTS filtered_results, summary_results, scored_results")
    db.execute("""CREATE TABLE filtered_results ( input text , result bool );
DO $$
DECLARE
prompt_cursor REFCURSOR ;
result_cursor REFCURSOR ;
rec RECORD ;
BEGIN
-- 1. Open a cursor for the input data
OPEN prompt_cursor FOR
SELECT r . location_city || ' has a population of > 100,000 and is a positive review; Review: ' || r . review
FROM restaurant_reviews r ;
-- 2. Call the array-based function using the input cursor
result_cursor : = ai . if (
'Is the given statement true? ' ,
prompt_cursor ,
model_id = > 'gemini-2.5-flash-lite'
);
-- 3. Fetch results from the output cursor and store them
LOOP
FETCH result_cursor INTO rec ;
EXIT WHEN NOT FOUND ;
INSERT INTO filtered_results VALUES ( rec . input , rec . output );
END LOOP ;
CLOSE result_cursor ;
END $$ ;""".replace(": =", ":=").replace("= >", "=>"))
    stored = rows(db, "SELECT input, result FROM filtered_results")
    assert len(stored) == 3 and all(isinstance(r[1], bool) for r in stored)
    # Printed with a trailing comma after prompt_cursor (a syntax error everywhere).
    db.execute("""CREATE TABLE summary_results ( summary text );
DO $$
DECLARE
prompt_cursor REFCURSOR ;
summary_cursor REFCURSOR ;
rec RECORD ;
BEGIN
OPEN prompt_cursor FOR SELECT review_text FROM user_reviews ORDER BY id ;
summary_cursor := ai . generate (
'Summarize the review in 20 words or less. Review:' ,
prompt_cursor
);
LOOP
FETCH summary_cursor INTO rec ;
EXIT WHEN NOT FOUND ;
INSERT INTO summary_results VALUES ( rec . output );
END LOOP ;
CLOSE summary_cursor ;
END $$ ;""")
    assert rows(db, "SELECT count(summary) FROM summary_results") == [(2,)]
    db.execute("""CREATE TABLE scored_results ( input text , score real );
DO $$
DECLARE
prompt_cursor REFCURSOR ;
score_cursor REFCURSOR ;
rec RECORD ;
BEGIN
OPEN prompt_cursor FOR SELECT review FROM user_reviews ORDER BY id ;
score_cursor := ai . rank (
'Score the following review: (1) 8-10 if excellent, (2) 4-7 if ok, (3) 1-3 if not good. Review:' ,
prompt_cursor
);
LOOP
FETCH score_cursor INTO rec ;
EXIT WHEN NOT FOUND ;
INSERT INTO scored_results VALUES ( rec . input , rec . output );
END LOOP ;
CLOSE score_cursor ;
END $$ ;""")
    assert rows(db, "SELECT count(score) FROM scored_results") == [(2,)]


def test_ai_functions_page_registered_gemini_models(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute("DELETE FROM google_ml.models WHERE id IN "
               "('gemini-2.5-flash-lite-global', 'gemini-3-preview-model')")
    db.execute("""CALL
google_ml . create_model (
model_id = > 'gemini-2.5-flash-lite-global' ,
model_type = > 'llm' ,
model_provider = > 'google' ,
model_qualified_name = > 'gemini-2.5-flash-lite' ,
model_request_url = > 'https://aiplatform.googleapis.com/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-flash-lite:generateContent' ,
model_auth_type = > 'alloydb_service_agent_iam'
);""".replace("= >", "=>"))
    db.execute("""CALL
google_ml . create_model (
model_id = > 'gemini-3-preview-model' ,
model_request_url = > 'https://aiplatform.googleapis.com/v1/projects/my-project/locations/global/publishers/google/models/gemini-3-pro-preview:generateContent' ,
model_qualified_name = > 'gemini-3-pro-preview' ,
model_provider = > 'google' ,
model_type = > 'llm' ,
model_auth_type = > 'alloydb_service_agent_iam'
);""".replace("= >", "=>"))
    (answer,) = db.execute("SELECT ai . generate ( prompt = > 'What is AlloyDB?' , "
                           "model_id = > 'gemini-3-preview-model' );".replace("= >", "=>")
                           ).fetchone()
    assert "What is AlloyDB?" in answer


def test_default_llm_model_flag_picks_the_model(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute("SET google_ml_integration.default_llm_model = 'gemini-1.5-pro:generateContent'")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is a generic model"):
        db.execute("SELECT ai.generate('Say hello')")  # not an llm model: the flag was read
    db.execute("RESET google_ml_integration.default_llm_model")
    assert rows(db, "SELECT ai.generate('Say hello')")[0][0].startswith(
        "Fake answer from gemini-2.5-flash-lite")


# -- accelerate-queries-optimized-functions (ai.if(prompt, embedding), 1.5.8) --------------------

def test_optimized_functions_page(dsn: str) -> None:
    warnings: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as db:
        db.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        db.execute("SET google_ml_integration.enable_ai_query_engine = on")
        db.execute("DROP TABLE IF EXISTS restaurant_reviews CASCADE")
        db.execute("""CREATE TABLE restaurant_reviews (
    id SERIAL,
    name VARCHAR(64),
    city VARCHAR(64),
    review TEXT,
    review_embedding VECTOR(768)
);""")
        db.execute("""INSERT INTO restaurant_reviews (name, city, review)
                      SELECT 'place ' || (i % 3), 'city', CASE WHEN i % 2 = 0
                             THEN 'I love it, great food' ELSE 'terrible, cold food' END
                        FROM generate_series(1, 12) AS i""")
        db.execute("UPDATE restaurant_reviews SET review_embedding = "
                   "embedding('text-embedding-005', review)::vector")
        db.execute("""PREPARE positive_reviews_query AS
SELECT r.name, r.city
FROM restaurant_reviews r
WHERE ai.if('Is the following a positive review? Review: ' || r.review, r.review_embedding)
GROUP BY r.name, r.city
HAVING COUNT(*) > 500;""")
        assert db.execute("EXECUTE positive_reviews_query;").fetchall() == []
        # Without the flag, AlloyDB falls back to the LLM and says so (a real instance's words),
        # once per statement.
        assert warnings == [
            "Cost Optimized AI Function is unavailable. Expect reduced performance."]
        counted = db.execute(
            "SELECT count(*) FROM restaurant_reviews r WHERE ai.if("
            "'Is the following a positive review? Review: ' || r.review, r.review_embedding)"
        ).fetchone()
        assert counted == (6,)  # the LLM's answer for every row
        warnings.clear()
        db.execute("SET google_ml_integration.enable_cost_optimized_ai_functions = on")
        assert db.execute("EXECUTE positive_reviews_query;").fetchall() == []
        assert warnings == []
        db.execute(f"ALTER DATABASE {DB} SET google_ml_integration.runtime_accuracy_check = off;")
        db.execute(f"ALTER DATABASE {DB} RESET google_ml_integration.runtime_accuracy_check")
        # The two forms of ai.if stay apart: a model id is text, an embedding an array.
        assert db.execute("SELECT ai.if('Is this positive? I love it', 'gemini-2.5-flash-lite')"
                          ).fetchone() == (True,)


def test_optimized_functions_page_flags(db: psycopg.Connection[Any]) -> None:
    """The current accelerate-queries-optimized-functions page: "By default, the
    google_ml_integration.proxy_models_enable_llm_fallback flag, which controls remote LLM
    fallback, is enabled (on)", and accuracy checks are configured "using the
    google_ml_integration.proxy_models_enable_accuracy_check flag, which is set to off by
    default". Like every google_ml_integration flag they answer SHOW and are in pg_settings."""
    assert rows(db, "SHOW google_ml_integration.proxy_models_enable_llm_fallback") == [("on",)]
    assert rows(db, "SHOW google_ml_integration.proxy_models_enable_accuracy_check") == [("off",)]
    assert rows(db, "SELECT name, setting, vartype FROM pg_settings WHERE name LIKE "
                    "'google_ml_integration.proxy_models_%' ORDER BY name") == [
        ("google_ml_integration.proxy_models_enable_accuracy_check", "off", "bool"),
        ("google_ml_integration.proxy_models_enable_llm_fallback", "on", "bool")]
    db.execute("SET google_ml_integration.proxy_models_enable_accuracy_check = on")
    try:
        assert rows(db, "SHOW google_ml_integration.proxy_models_enable_accuracy_check") == [("on",)]
    finally:
        db.execute("RESET google_ml_integration.proxy_models_enable_accuracy_check")


# -- generate-multimodal-embeddings and the model endpoint reference ------------------------------

def test_multimodal_page(db: psycopg.Connection[Any]) -> None:
    (text_vec,) = db.execute("""SELECT
ai . text_embedding (
model_id = > 'multimodalembedding@001' ,
content = > 'a red bicycle' );""".replace("= >", "=>")).fetchone()
    assert len(text_vec) == 1408
    # Printed as mimetype = > MIMETYPE ' ); (a stray quote); the default is image/jpeg.
    (image_vec, default_vec) = db.execute("""SELECT
ai . image_embedding (
model_id = > 'multimodalembedding@001' ,
image = > 'gs://my-bucket/embeddings/flowers.jpeg' ,
mimetype = > 'image/jpeg' ),
google_ml.image_embedding('multimodalembedding@001', 'gs://my-bucket/embeddings/flowers.jpeg')
""".replace("= >", "=>")).fetchone()
    assert image_vec == default_vec and len(image_vec) == 1408
    (video,) = db.execute("""SELECT
ai . video_embedding (
model_id = > 'multimodalembedding@001' ,
video = > 'gs://my-bucket/embeddings/supermarket-video.mp4' );""".replace("= >", "=>")
                          ).fetchone()
    assert len(video) == 1 and len(video[0]) == 1408  # a two-dimensional array
    (segments, dims, first) = db.execute("""SELECT array_length(v, 1), array_length(v, 2), v[1][5]
FROM (SELECT ai . video_embedding (
model_id => 'multimodalembedding@001' ,
video => 'gs://my-bucket/embeddings/supermarket-video.mp4' ,
start_offset_seconds => 0 ,
end_offset_seconds => 64 ,
interval_seconds => 16 ) AS v) AS s""").fetchone()
    assert (segments, dims) == (4, 1408) and isinstance(first, float)
    assert db.execute("SELECT google_ml.video_embedding('multimodalembedding@001', "
                      "'gs://b/v.mp4', 0, 32, 16) = ai.video_embedding("
                      "'multimodalembedding@001', 'gs://b/v.mp4', 0, 32, 16)").fetchone() == (True,)
    assert db.execute("SELECT google_ml.text_embedding('multimodalembedding@001', 'a red bicycle')"
                      ).fetchone() == (text_vec,)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="offsets"):
        db.execute("SELECT ai.video_embedding('multimodalembedding@001', 'gs://b/v.mp4', 30, 10)")


def test_model_endpoint_reference_list_model(db: psycopg.Connection[Any]) -> None:
    (record,) = db.execute("SELECT google_ml . list_model ( 'text-embedding-005' );"
                           ).fetchone()
    assert record[0] == "text-embedding-005"


def test_check_model_support_in_a_documented_transform_function(db: psycopg.Connection[Any]) -> None:
    db.execute("""CREATE OR REPLACE FUNCTION gte_text_embedding_input_transform(
    model_id character varying,
    input_text text)
    RETURNS json
    LANGUAGE 'plpgsql'
    COST 100
    VOLATILE PARALLEL UNSAFE
AS $BODY$
#variable_conflict use_variable
DECLARE
transformed_input JSON;
BEGIN
CALL google_ml.check_model_support();
SELECT json_build_object('inputs', json_build_array(input_text))::JSON INTO transformed_input;
RETURN transformed_input;
END;
$BODY$;""")
    assert rows(db, "SELECT gte_text_embedding_input_transform('m', 'hello')::text"
                ) == [('{"inputs" : ["hello"]}',)]
    db.execute("SET google_ml_integration.enable_model_support = off")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        db.execute("SELECT gte_text_embedding_input_transform('m', 'hello')")
    db.execute("RESET google_ml_integration.enable_model_support")


# -- generate-manage-auto-embeddings-for-tables ---------------------------------------------------

def test_auto_embeddings_page(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_faster_embedding_generation = on")
    db.execute("DROP TABLE IF EXISTS user_reviews CASCADE")
    db.execute("CREATE TABLE user_reviews (id serial PRIMARY KEY, content text)")
    db.execute("INSERT INTO user_reviews (content) SELECT 'review ' || i FROM generate_series(1, 30) i")
    db.execute("ALTER TABLE user_reviews ADD COLUMN IF NOT EXISTS content_embeddings vector ( 768 ) "
               "DEFAULT NULL ;")
    db.execute("""CALL ai . initialize_embeddings (
model_id = > 'text-embedding-005' ,
table_name = > 'user_reviews' ,
content_column = > 'content' ,
embedding_column = > 'content_embeddings' ,
batch_size = > 50
);""".replace("= >", "=>"))
    assert rows(db, "SELECT count(content_embeddings) FROM user_reviews") == [(30,)]
    progress = rows(db, """SELECT
table_name ,
content_column ,
embedding_column ,
model_id ,
percent_progress ,
status ,
elapsed_time ,
rows_processed ,
partition_root
FROM
ai . embedding_progress_view ;""")
    mine = [p for p in progress if p[0] == "user_reviews"]
    assert mine and mine[0][4] == 100 and mine[0][5] == "success" and mine[0][7] == 30
    # manual mode (the default): a refresh embeds only new and changed rows
    db.execute("INSERT INTO user_reviews (content) VALUES ('a new review')")
    db.execute("UPDATE user_reviews SET content = 'changed' WHERE id = 1")
    db.execute("""CALL ai . refresh_embeddings (
table_name = > 'user_reviews' ,
embedding_column = > 'content_embeddings' ,
batch_size = > 50 -- Optional override
);""".replace("= >", "=>"))
    assert rows(db, "SELECT rows_processed FROM ai.embedding_progress_view "
                    "WHERE table_name = 'user_reviews'") == [(2,)]
    assert rows(db, "SELECT count(*) FROM user_reviews WHERE content_embeddings = "
                    "embedding('text-embedding-005', content)::vector") == [(31,)]
    db.execute("""CALL
ai . drop_embedding_config (
table_name = > 'user_reviews' ,
embedding_column = > 'content_embeddings' );""".replace("= >", "=>"))
    assert rows(db, "SELECT count(*) FROM ai.embedding_progress_view "
                    "WHERE table_name = 'user_reviews'") == [(0,)]
    # transactional mode: kept in sync by a trigger, so a refresh is refused
    db.execute("""CALL
ai . initialize_embeddings (
model_id = > 'text-embedding-005' ,
table_name = > 'user_reviews' ,
content_column = > 'content' ,
embedding_column = > 'content_embeddings' ,
batch_size = > 10 ,
incremental_refresh_mode = > 'transactional'
);""".replace("= >", "=>"))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="transactional"):
        db.execute("CALL ai.refresh_embeddings('user_reviews', 'content_embeddings')")
    # The note's clean-up form names the table alone.
    db.execute("CALL ai.drop_embedding_config(table_name =>'user_reviews');")
    # Older pages call manual mode 'none'; the google_ml schema has every procedure too.
    db.execute("CALL google_ml.initialize_embeddings('text-embedding-005', 'user_reviews', "
               "'content', 'content_embeddings', 10, 'none')")
    db.execute("CALL google_ml.refresh_embeddings('user_reviews', 'content_embeddings')")
    db.execute("CALL google_ml.drop_embedding_config('user_reviews')")
    assert rows(db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'user_reviews'::regclass "
                    "AND attname LIKE 'google\\_ml\\_track\\_stale\\_%' AND NOT attisdropped") == [(0,)]


def _acme_reply(seen: Seen) -> Reply:
    """The page's acme endpoint (its wire format is not printed): one 3-number vector per text."""
    inputs = seen.json()["inputs"]
    return Reply(200, {"embeddings": [[len(t) / 10, 0.5, -1.0] for t in inputs]})


def test_auto_embeddings_page_custom_model_with_batch_support(db: psycopg.Connection[Any]) -> None:
    # "Use a custom embedding model with batch support" and "Use JSONB optimization with custom
    # models": the page prints the signatures only, so the bodies here speak a small JSON format.
    db.execute("SET google_ml_integration.enable_faster_embedding_generation = on")
    db.execute("SET google_ml_integration.allow_http_endpoints = on")
    db.execute("""
CREATE OR REPLACE FUNCTION acme_text_input_transform ( model_id TEXT , input TEXT ) RETURNS JSON
LANGUAGE sql AS $$ SELECT json_build_object('inputs', json_build_array(input)) $$;
CREATE OR REPLACE FUNCTION acme_text_output_transform ( model_id TEXT , model_output JSON ) RETURNS real []
LANGUAGE sql AS $$ SELECT ARRAY(SELECT json_array_elements_text(model_output->'embeddings'->0))::real[] $$;
CREATE OR REPLACE FUNCTION acme_generate_headers ( model_id TEXT , input TEXT ) RETURNS JSON
LANGUAGE sql AS $$ SELECT '{"x-acme-key": "local"}'::json $$;
CREATE OR REPLACE FUNCTION acme_text_batch_input_transform ( model_id TEXT , input TEXT []) RETURNS JSON
LANGUAGE sql AS $$ SELECT json_build_object('inputs', to_json(input)) $$;
CREATE OR REPLACE FUNCTION acme_text_batch_output_transform ( model_id TEXT , model_output JSON ) RETURNS real [][]
LANGUAGE sql AS $$ SELECT array_agg(ARRAY(SELECT json_array_elements_text(e))::real[] ORDER BY i)
                     FROM json_array_elements(model_output->'embeddings') WITH ORDINALITY AS x (e, i) $$;
-- the JSONB variant of the batch output transform, same name
CREATE OR REPLACE FUNCTION acme_text_batch_output_transform ( model_id TEXT , model_output JSONB ) RETURNS real [][]
LANGUAGE sql AS $$ SELECT array_agg(ARRAY(SELECT jsonb_array_elements_text(e))::real[] ORDER BY i)
                     FROM jsonb_array_elements(model_output->'embeddings') WITH ORDINALITY AS x (e, i) $$;
CREATE OR REPLACE FUNCTION google_ml . vertexai_text_embedding_batch_input_transform_with_768_dims ( model_id VARCHAR ( 100 ), input_list TEXT [])
RETURNS JSON
LANGUAGE SQL
AS $$
SELECT pg_catalog . json_build_object (
'instances' ,
pg_catalog . json_agg ( pg_catalog . json_build_object ( 'content' , content )),
'parameters' ,
pg_catalog . json_build_object ( 'outputDimensionality' , 768 )
) FROM unnest ( input_list ) AS content ;
$$ ;""")
    assert rows(db, "SELECT google_ml.vertexai_text_embedding_batch_input_transform_with_768_dims("
                    "'m', ARRAY['a', 'b'])::jsonb -> 'parameters'") == [({"outputDimensionality": 768},)]
    with ScriptedServer(_acme_reply) as acme:
        db.execute("DELETE FROM google_ml.models WHERE id = 'custom-embedding-model'")
        db.execute("""CALL
ai . create_model (
model_id => 'custom-embedding-model' ,
model_request_url => %s ,
model_type => 'text_embedding' ,
model_in_transform_fn => 'acme_text_input_transform' ,
model_out_transform_fn => 'acme_text_output_transform' ,
generate_headers_fn => 'acme_generate_headers' ,
model_batch_in_transform_fn => 'acme_text_batch_input_transform' ,
model_batch_out_transform_fn => 'acme_text_batch_output_transform'
);""", (f"{acme.url}/models/text/embeddings/v1",))  # the page's https://acme.com/... on loopback
        db.execute("DROP TABLE IF EXISTS acme_reviews")
        db.execute("CREATE TABLE acme_reviews (id int PRIMARY KEY, content text, "
                   "content_embeddings vector(3) DEFAULT NULL)")
        db.execute("INSERT INTO acme_reviews SELECT i, 'review ' || i FROM generate_series(1, 25) i")
        db.execute("""CALL
ai . initialize_embeddings (
model_id => 'custom-embedding-model' ,
table_name => 'acme_reviews' ,
content_column => 'content' ,
embedding_column => 'content_embeddings' ,
batch_size => 10
);""")
        assert [len(r.json()["inputs"]) for r in acme.requests] == [10, 10, 5]
        assert all(r.headers["x-acme-key"] == "local" for r in acme.requests)
        assert rows(db, "SELECT count(*) FROM acme_reviews WHERE content_embeddings = "
                        "ARRAY[length(content) / 10.0, 0.5, -1]::vector") == [(25,)]
        db.execute("CALL ai.drop_embedding_config('acme_reviews', 'content_embeddings')")


def test_auto_embeddings_page_partitions(db: psycopg.Connection[Any]) -> None:
    db.execute("SET google_ml_integration.enable_faster_embedding_generation = on")
    db.execute("DROP TABLE IF EXISTS documents, documents_misc, documents_eu_germany CASCADE")
    db.execute("""CREATE TABLE documents (id int, region text, country text, content text,
                                          content_embeddings vector(768)) PARTITION BY LIST (region);
                  CREATE TABLE documents_eu PARTITION OF documents FOR VALUES IN ('eu')
                      PARTITION BY LIST (country);
                  CREATE TABLE documents_eu_france PARTITION OF documents_eu FOR VALUES IN ('france');
                  CREATE TABLE documents_us PARTITION OF documents FOR VALUES IN ('us');
                  INSERT INTO documents VALUES (1, 'eu', 'france', 'bonjour', NULL),
                                               (2, 'us', 'us', 'hello', NULL);""")
    # Printed with model_id => 'text-embeddings-005', a model that does not exist.
    db.execute("""CALL ai . initialize_embeddings (
model_id => 'text-embedding-005' ,
table_name => 'documents' , -- This is the root partitioned table
content_column => 'content' ,
embedding_column => 'content_embeddings'
);""")
    assert rows(db, "SELECT count(content_embeddings) FROM documents") == [(2,)]
    db.execute("""CALL ai . refresh_embeddings (
table_name => 'documents' , -- This is the root partitioned table
embedding_column => 'content_embeddings'
);""")
    db.execute("""CALL ai . refresh_embeddings (
table_name => 'documents_eu' ,
embedding_column => 'content_embeddings'
);""")
    db.execute("""-- Add a new partition
CREATE TABLE documents_africa PARTITION OF documents
FOR VALUES IN ( 'africa' );""")
    db.execute("INSERT INTO documents VALUES (3, 'africa', 'kenya', 'jambo', NULL)")
    db.execute("""-- Refresh embeddings for the new partition
CALL ai . refresh_embeddings (
table_name => 'documents_africa' ,
embedding_column => 'content_embeddings'
);""")
    db.execute("CREATE TABLE documents_misc (id int, region text, country text, content text, "
               "content_embeddings vector(768))")
    db.execute("INSERT INTO documents_misc VALUES (4, 'asia', 'japan', 'konnichiwa', NULL)")
    # Each block's statements one by one, as psql sends a pasted block: a Query of several
    # statements is one transaction block, where the procedures cannot commit (2D000, as on
    # AlloyDB, whose procedures commit internally).
    each(db, """-- Prepare the table to be attached
CALL ai . embedding_prepare_partition (
parent_table => 'documents' ,
child_table => 'documents_misc'
);
-- Attach the partition
ALTER TABLE documents ATTACH partition documents_misc DEFAULT ;
-- Refresh embeddings for the newly attached partition
CALL ai . refresh_embeddings (
table_name => 'documents_misc' ,
embedding_column => 'content_embeddings'
);""")
    db.execute("CREATE TABLE documents_eu_germany (id int, region text, country text, "
               "content text, content_embeddings vector(768))")
    db.execute("INSERT INTO documents_eu_germany VALUES (5, 'eu', 'germany', 'hallo', NULL)")
    each(db, """-- Prepare a sub-partition for a non-root parent table
CALL ai . embedding_prepare_partition (
parent_table => 'documents_eu' , -- An existing partition
child_table => 'documents_eu_germany'
);
-- Attach the new sub-partition
ALTER TABLE documents_eu ATTACH PARTITION documents_eu_germany
FOR VALUES IN ( 'germany' );
-- Refresh embeddings for the new sub-partition
CALL ai . refresh_embeddings (
table_name => 'documents_eu_germany' ,
embedding_column => 'content_embeddings'
);""")
    assert rows(db, "SELECT count(*) FROM documents WHERE content_embeddings = "
                    "embedding('text-embedding-005', content)::vector") == [(5,)]
    assert rows(db, "SELECT partition_root FROM ai.embedding_progress_view "
                    "WHERE table_name = 'documents'") == [("documents",)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="partition"):
        db.execute("CALL ai.initialize_embeddings('text-embedding-005', 'documents_us', "
                   "'content', 'content_embeddings')")
    db.execute("CALL ai.drop_embedding_config('documents', 'content_embeddings')")


# -- invoke-predictions ----------------------------------------------------------------------------

def test_invoke_predictions_page(db: psycopg.Connection[Any]) -> None:
    body = '{"contents": [{"role": "user", "parts": [{"text": "What is AlloyDB?"}]}]}'
    db.execute("DO $$ BEGIN CREATE ROLE documented_user; "
               "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    db.execute("GRANT EXECUTE ON FUNCTION ml_predict_row TO documented_user;")
    for endpoint in (("projects/my-project/locations/us-central1/publishers/google/models/"
                     "gemini-1.5-pro:generateContent"),
                     "publishers/google/models/gemini-1.5-pro:generateContent"):
        (answer,) = db.execute("SELECT ml_predict_row(%s, %s);", (endpoint, body)).fetchone()
        assert "What is AlloyDB?" in answer["candidates"][0]["content"]["parts"][0]["text"]
    # The syntax lines with MODEL_ID as the page's example, gemini-pro (no verb: generateContent)
    for path in ("projects/my-project/locations/us-central1/publishers/google/models/gemini-pro",
                 "publishers/google/models/gemini-pro"):
        (answer,) = db.execute("SELECT ml_predict_row(%s, %s);", (path, body)).fetchone()
        assert "What is AlloyDB?" in answer["candidates"][0]["content"]["parts"][0]["text"]
    # "Use a Vertex AI model endpoint": an endpoint's :predict answer
    (endpoint_answer,) = db.execute(
        "SELECT ml_predict_row('projects/my-project/locations/us-central1/endpoints/1234567890', "
        "'{ \"instances\": [{\"feature\": 1}] }');").fetchone()
    assert len(endpoint_answer["predictions"]) == 1
    db.execute("REVOKE EXECUTE ON FUNCTION ml_predict_row FROM documented_user")


def test_embeddings_through_ml_predict_row_as_the_older_embeddings_page_suggests(
        db: psycopg.Connection[Any]) -> None:
    """https://cloud.google.com/alloydb/docs/ai/work-with-embeddings (older copy): "To work around
    this regional restriction, you can instead invoke predictions, post-processing the JSON output
    into vectors." An embedding model's path without a verb, with a predict body, is a :predict
    call (not generateContent, which would refuse the body)."""
    for path in ("publishers/google/models/text-embedding-005",
                 "projects/my-project/locations/us-central1/publishers/google/models/text-embedding-005"):
        (values,) = db.execute(
            "SELECT ARRAY(SELECT json_array_elements_text(ml_predict_row(%s, "
            "'{\"instances\": [{\"content\": \"AlloyDB is a managed, cloud-hosted SQL database "
            "service.\"}]}') -> 'predictions' -> 0 -> 'embeddings' -> 'values'))::real[]",
            (path,)).fetchone()
        assert values == db.execute(
            "SELECT embedding('text-embedding-005', "
            "'AlloyDB is a managed, cloud-hosted SQL database service.')").fetchone()[0]


def test_embedding_with_model_endpoint_management_off_as_the_older_embeddings_page_sets_it(
        db: psycopg.Connection[Any]) -> None:
    """https://cloud.google.com/alloydb/docs/ai/work-with-embeddings (older copies, and AlloyDB
    Omni's current one), "Required database extension": "Set the
    google_ml_integration.enable_model_support database flag to off", then
    ``SELECT embedding('MODEL_IDVERSION_TAG', 'TEXT')``. embedding() and ml_predict_row() predate
    model endpoint management and answer without it (Vertex AI models by name or path); the
    google_ml functions and a registered id still need the flag (55000)."""
    content = "AlloyDB is a managed, cloud-hosted SQL database service."
    (with_flag,) = db.execute("SELECT embedding('text-embedding-005', %s)", (content,)).fetchone()
    db.execute("SET google_ml_integration.enable_model_support = off")
    try:
        for model in ("text-embedding-005", "textembedding-gecko@003",
                      "publishers/google/models/text-embedding-005"):
            (values,) = db.execute("SELECT embedding(%s, %s);", (model, content)).fetchone()
            assert len(values) == 768
        assert db.execute("SELECT embedding('text-embedding-005', %s)",
                          (content,)).fetchone() == (with_flag,)
        (answer,) = db.execute(
            "SELECT ml_predict_row('publishers/google/models/text-embedding-005', "
            "'{\"instances\": [{\"content\": \"x\"}]}')").fetchone()
        assert len(answer["predictions"][0]["embeddings"]["values"]) == 768
        for sql in ("SELECT google_ml.embedding('text-embedding-005', 'x')",
                    "SELECT ml_predict_row('gemini-1.5-pro:generateContent', '{}')"):
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                               match="enable_model_support"):
                db.execute(sql)
    finally:
        db.execute("RESET google_ml_integration.enable_model_support")


def test_grant_lines_of_the_embedding_and_prediction_pages(db: psycopg.Connection[Any]) -> None:
    """The pages grant by bare function name: https://cloud.google.com/alloydb/docs/ai/work-with-embeddings
    (``GRANT EXECUTE ON FUNCTION embedding``) and https://cloud.google.com/alloydb/docs/vertex-ai/invoke-predictions
    (``google_ml.predict_row``). A bare name works only while the function has one signature:
    an overload would turn these into 42725 "function name ... is not unique"."""
    db.execute("DO $$ BEGIN CREATE ROLE documented_user; "
               "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    for statement in ("GRANT EXECUTE ON FUNCTION embedding TO documented_user;",
                      "GRANT EXECUTE ON FUNCTION google_ml.predict_row TO documented_user;",
                      "GRANT EXECUTE ON FUNCTION google_ml.embedding TO documented_user;"):
        db.execute(statement)
        db.execute(statement.replace("GRANT", "REVOKE").replace(" TO ", " FROM "))


# -- rank-rerank-search-results-rag ---------------------------------------------------------------

VACATION_DOCUMENTS = [
    "Luxury resorts in South Korea",
    "Family vacation packages for Vietnam: Ha Long Bay and Hoi An",
    "Budget-friendly beaches in Thailand perfect for families",
    "A backpacker guide to solo travel in India",
]


def test_rank_search_results_page(db: psycopg.Connection[Any]) -> None:
    # "Before you begin" (the AlloyDB Omni version of the page): 1.5.2 or later.
    db.execute("""CREATE EXTENSION IF NOT EXISTS google_ml_integration;
      ALTER EXTENSION google_ml_integration UPDATE;""")
    (version,) = db.execute("SELECT extversion FROM pg_extension "
                            "WHERE extname = 'google_ml_integration';").fetchone()
    assert tuple(map(int, version.split("."))) >= (1, 5, 2)
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    # "Model registration for ranking isn't required for Vertex AI models. You can use the
    # Vertex AI model name as the model_id, which is shown in the following example."
    ranked = rows(db, """SELECT index, score
FROM
  ai.rank(
    model_id => 'semantic-ranker-default-003',
    search_string => 'Affordable family-friendly vacation spots in Southeast Asia?',
    documents =>
ARRAY[
  'Luxury resorts in South Korea',
  'Family vacation packages for Vietnam: Ha Long Bay and Hoi An',
  'Budget-friendly beaches in Thailand perfect for families',
  'A backpacker guide to solo travel in India'])""")
    assert sorted(index for index, _ in ranked) == [1, 2, 3, 4]  # 1-based positions
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    # The same example with the page's other documents (its earlier version and translations).
    (best, _), *_ = rows(db, """SELECT index, score
FROM
  ai.rank(
    model_id => 'semantic-ranker-default-003',
    search_string => 'AlloyDB is a PostgreSQL compatible AI database that is ready for production.',
    documents =>
ARRAY[
  'Alloys are made from combination of metals',
  'The best enterprise-ready PostgreSQL database.',
  'You can feel the heat in Alloy apartments.']);""")
    assert best == 2
    # The syntax block, placeholders filled in: called in the select list, a record per document.
    records = rows(db, """SELECT
  ai.rank(
    model_id => 'semantic-ranker-default-003',
    search_string => 'SEARCH_STRING',
    documents => ARRAY['DOCUMENT_1', 'DOCUMENT_2', 'DOCUMENT_3']);""")
    assert len(records) == 3
    # Other Vertex AI ranking models by name, without registration, as the page says;
    # a name that is not one is still unknown.
    assert len(rows(db, "SELECT * FROM ai.rank(model_id => 'semantic-ranker-fast-004', "
                        "search_string => 'beaches', documents => ARRAY['Luxury resorts', "
                        "'Budget-friendly beaches', 'Ski huts'], top_n => 2)")) == 2
    assert rows(db, "SELECT count(*) FROM google_ml.models WHERE id = 'semantic-ranker-fast-004'"
                ) == [(0,)]  # nothing was registered on the way
    with pytest.raises(psycopg.errors.UndefinedObject, match="does not exist"):
        db.execute("SELECT * FROM ai.rank('semantic-ranker-fast-004 ', 'q', ARRAY['a'])")
    with pytest.raises(psycopg.errors.UndefinedObject, match="does not exist"):
        db.execute("SELECT * FROM ai.rank('my-reranker', 'q', ARRAY['a'])")


def test_rank_search_results_page_reranks_a_vector_search(db: psycopg.Connection[Any]) -> None:
    """The page's rerank-after-vector-search example: a vector search for 'personal fitness
    equipment' gives the candidates, ai.rank keeps the best 5 (top_n) and they come back in the
    ranker's order. Table and column names as on the page; rows made up."""
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute("DROP TABLE IF EXISTS product")
    db.execute("CREATE TABLE product (id int PRIMARY KEY, description text, embedding vector(768))")
    db.execute("""INSERT INTO product (id, description)
                  SELECT i, (ARRAY['personal fitness equipment: dumbbells', 'kitchen knife set',
                                   'yoga mat for personal fitness', 'garden hose',
                                   'treadmill, home fitness equipment', 'office chair',
                                   'resistance bands', 'fitness tracker watch'])[i]
                    FROM generate_series(1, 8) AS i""")
    db.execute("UPDATE product SET embedding = "
               "google_ml.embedding('text-embedding-005', description)::vector")
    reranked = rows(db, """WITH initial_ranking AS (
  SELECT id, description, ROW_NUMBER() OVER () AS ref_number
  FROM product
  ORDER BY
    embedding <=> google_ml.embedding(
      'text-embedding-005', 'personal fitness equipment')::vector
  LIMIT 10
), reranked_results AS (
  SELECT index, score
  FROM ai.rank(
    model_id => 'semantic-ranker-default-003',
    search_string => 'personal fitness equipment',
    documents => (SELECT ARRAY_AGG(description ORDER BY ref_number) FROM initial_ranking),
    top_n => 5)
)
SELECT id, description
FROM initial_ranking, reranked_results
WHERE initial_ranking.ref_number = reranked_results.index
ORDER BY reranked_results.score DESC;""")
    assert len(reranked) == 5
    assert "fitness equipment" in reranked[0][1]


# -- register-model-endpoint: "Register a third-party ranking model" (Cohere) ---------------------

COHERE_TRANSFORMS = """CREATE OR REPLACE FUNCTION cohere_rerank_input_transform(
    model_id VARCHAR(100),
    search_string TEXT,
    documents TEXT[],
    top_n INT DEFAULT NULL
)
RETURNS JSON
LANGUAGE plpgsql
AS $$
#variable_conflict use_variable
DECLARE
  transformed_input JSONB;
BEGIN
  -- Basic Input Validation
  IF search_string IS NULL OR search_string = '' THEN
    RAISE EXCEPTION 'Invalid input: search_string cannot be NULL or empty.';
  END IF;

  IF documents IS NULL OR array_length(documents, 1) IS NULL OR array_length(documents, 1) = 0 THEN
    RAISE EXCEPTION 'Invalid input: documents array cannot be NULL or empty.';
  END IF;

  IF top_n IS NOT NULL AND top_n < 0 THEN
    RAISE EXCEPTION 'Invalid input: top_n must be greater than or equal to zero. Provided value: %', top_n;
  END IF;

  -- Construct the base JSON payload for Cohere Rerank API
  transformed_input := jsonb_build_object(
    'model', google_ml.model_qualified_name_of(model_id),
    'query', search_string,
    'documents', to_jsonb(documents), -- Convert TEXT[] directly to JSON array
    'return_documents', false -- Explicitly set to false (optional, as its default)
  );

  -- Add top_n to the payload only if it's provided and valid
  IF top_n IS NOT NULL THEN
     transformed_input := transformed_input || jsonb_build_object('top_n', top_n);
  END IF;

  -- Return the final JSON payload
  RETURN transformed_input::JSON;

END;
$$;

CREATE OR REPLACE FUNCTION cohere_rerank_output_transform(
    model_id VARCHAR(100),
    response_json JSON
)
RETURNS TABLE (index INT, score REAL)
LANGUAGE plpgsql
AS $$
DECLARE
  result_item JSONB;
  response_jsonb JSONB;
  cohere_index INT; -- 0-based index from Cohere response
BEGIN
  -- Validate response_json
  IF response_json IS NULL THEN
    RAISE EXCEPTION 'Invalid model response: response cannot be NULL.';
  END IF;

  -- Convert JSON to JSONB for easier processing
  response_jsonb := response_json::JSONB;

  -- Check top-level structure
  IF jsonb_typeof(response_jsonb) != 'object' THEN
    RAISE EXCEPTION 'Invalid model response: response must be a JSON object. Found: %', jsonb_typeof(response_jsonb);
  END IF;

  -- Check for the 'results' array
  IF response_jsonb->'results' IS NULL OR jsonb_typeof(response_jsonb->'results') != 'array' THEN
    -- Check for potential Cohere error structure
    IF response_jsonb->'message' IS NOT NULL THEN
       RAISE EXCEPTION 'Cohere API Error: %', response_jsonb->>'message';
    ELSE
       RAISE EXCEPTION 'Invalid model response: response does not contain a valid "results" array.';
    END IF;
  END IF;

  -- Loop through the 'results' array (JSONB array indices are 0-based)
  FOR i IN 0..jsonb_array_length(response_jsonb->'results') - 1 LOOP
    result_item := response_jsonb->'results'->i;

    -- Validate individual result item structure
    IF result_item IS NULL OR jsonb_typeof(result_item) != 'object' THEN
      RAISE WARNING 'Skipping invalid result item at array index %.', i;
      CONTINUE;
    END IF;

    IF result_item->'index' IS NULL OR jsonb_typeof(result_item->'index') != 'number' THEN
       RAISE WARNING 'Missing or invalid "index" field in result item at array index %.', i;
       CONTINUE;
    END IF;

    IF result_item->'relevance_score' IS NULL OR jsonb_typeof(result_item->'relevance_score') != 'number' THEN
       RAISE WARNING 'Missing or invalid "relevance_score" field in result item at array index %.', i;
       CONTINUE;
    END IF;

    -- Extract values
    BEGIN
      cohere_index := (result_item->>'index')::INT;
      -- Assign values to the output table columns
      -- Cohere returns 0-based index, map it to 1-based for consistency
      -- with input document array position
      index := cohere_index + 1;
      score := (result_item->>'relevance_score')::REAL;
      RETURN NEXT; -- Return the current row
    EXCEPTION WHEN others THEN
      RAISE WARNING 'Error processing result item at array index %: %', i, SQLERRM;
      CONTINUE; -- Skip this item and continue with the next
    END;
  END LOOP;

  RETURN; -- End of function
END;
$$;"""


def _cohere_reply(seen: Seen) -> Reply:
    body = seen.json()
    ranked = sorted(range(len(body["documents"])), key=lambda i: "beach" not in body["documents"][i])
    return Reply(200, {"id": "r1", "results": [{"index": i, "relevance_score": 0.9 - 0.3 * n}
                                               for n, i in enumerate(ranked[:body.get("top_n")])]})


def test_register_page_third_party_ranking_model(db: psycopg.Connection[Any]) -> None:
    """https://docs.cloud.google.com/alloydb/docs/ai/register-model-endpoint, "Register a
    third-party ranking model": Cohere's transforms and registration as printed (placeholders
    filled in). A reranking model's input transform takes (model_id, search_string, documents,
    top_n) and its output transform RETURNS TABLE (index INT, score REAL). The calls go to a
    loopback server that answers as Cohere does (the registration as printed names a secret,
    which the shared test emulator cannot read, so the called model is the same one without it)."""
    db.execute(COHERE_TRANSFORMS)
    db.execute("""CALL
  google_ml.create_sm_secret(
    'cohere_secret',
    'projects/123456789/secrets/cohere_secret/versions/latest');""")
    db.execute("DELETE FROM google_ml.models WHERE id IN ('cohere-reranker', 'cohere-local')")
    db.execute("""CALL
  google_ml.create_model(
    model_id => 'cohere-reranker',
    model_type => 'reranking',
    model_provider => 'custom',
    model_request_url => 'https://api.cohere.com/v2/rerank',
    model_qualified_name => 'rerank-v3.5',
    model_auth_type => 'secret_manager',
    model_auth_id => 'cohere_secret',
    model_in_transform_fn => 'cohere_rerank_input_transform',
    model_out_transform_fn => 'cohere_rerank_output_transform'
  );""")
    assert rows(db, "SELECT model_type::text, input_transform_fn, output_transform_fn "
                    "FROM google_ml.model_info_view WHERE model_id = 'cohere-reranker'") == [
        ("reranking", "public.cohere_rerank_input_transform", "public.cohere_rerank_output_transform")]
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute("SET google_ml_integration.allow_http_endpoints = on")
    with ScriptedServer(_cohere_reply) as cohere:
        db.execute("CALL google_ml.create_model(model_id => 'cohere-local', model_type => 'reranking', "
                   "model_provider => 'custom', model_request_url => %s, model_qualified_name => "
                   "'rerank-v3.5', model_in_transform_fn => 'cohere_rerank_input_transform', "
                   "model_out_transform_fn => 'cohere_rerank_output_transform')",
                   (f"{cohere.url}/v2/rerank",))
        ranked = rows(db, """SELECT index, score FROM ai.rank(
    model_id => 'cohere-local',
    search_string => 'Affordable family-friendly vacation spots in Southeast Asia?',
    documents => ARRAY['Luxury resorts in South Korea',
                       'Budget-friendly beaches in Thailand perfect for families',
                       'A backpacker guide to solo travel in India'],
    top_n => 2)""")
        assert [index for index, _ in ranked] == [2, 1]  # Cohere's 0-based index, made 1-based
        assert [round(score, 2) for _, score in ranked] == [0.9, 0.6]
        assert cohere.requests[-1].json() == {
            "model": "rerank-v3.5",
            "query": "Affordable family-friendly vacation spots in Southeast Asia?",
            "documents": ["Luxury resorts in South Korea",
                          "Budget-friendly beaches in Thailand perfect for families",
                          "A backpacker guide to solo travel in India"],
            "return_documents": False, "top_n": 2}
    db.execute("DELETE FROM google_ml.models WHERE id IN ('cohere-reranker', 'cohere-local')")
    db.execute("CALL google_ml.drop_sm_secret('cohere_secret')")


def test_a_vertex_ai_ranking_model_can_be_registered(db: psycopg.Connection[Any]) -> None:
    """Registering a Vertex AI ranking model by its qualified name (built-in support, the
    model type the reference lists) takes the built-in reranking output transform."""
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute("DELETE FROM google_ml.models WHERE id = 'my-ranker'")
    db.execute("CALL google_ml.create_model(model_id => 'my-ranker', model_provider => 'google', "
               "model_type => 'reranking', model_qualified_name => 'semantic-ranker-512@latest')")
    assert rows(db, "SELECT output_transform_fn FROM google_ml.model_info_view "
                    "WHERE model_id = 'my-ranker'") == [("google_ml.vertexai_reranking_output_transform",)]
    assert len(rows(db, "SELECT * FROM ai.rank('my-ranker', 'beaches', "
                        "ARRAY['Luxury resorts', 'Budget-friendly beaches'])")) == 2
    db.execute("CALL google_ml.drop_model('my-ranker')")


# -- model-endpoint-predictions (google_ml.predict_row on registered models) ----------------------

TPCH_BODY = """{ "contents": [ { "role": "user", "parts": [ { "text": "For TPCH database schema as mentioned here https://www.tpc.org/TPC_Documents_Current_Versions/pdf/TPC-H_v3.0.1.pdf , generate a SQL query to find all supplier names which are located in the India nation." } ] } ] }"""


def test_model_endpoint_predictions_page(db: psycopg.Connection[Any]) -> None:
    # AlloyDB's page calls a registered generic 'gemini-pro'; registered as the register page does.
    db.execute("""CALL google_ml.create_model(model_id => 'gemini-pro', model_request_url =>
        'https://us-central1-aiplatform.googleapis.com/v1/projects/PROJECT_ID/locations/us-central1/publishers/google/models/gemini-pro:generateContent',
        model_provider => 'google', model_auth_type => 'alloydb_service_agent_iam')""")
    pro = rows(db, """SELECT
    json_array_elements(
    google_ml.predict_row(
        model_id => 'gemini-pro',
        request_body => '{
    "contents": [
        {
            "role": "user",
            "parts": [
                {
                    "text": "For TPCH database schema as mentioned here https://www.tpc.org/TPC_Documents_Current_Versions/pdf/TPC-H_v3.0.1.pdf , generate a SQL query to find all supplier names which are located in the India nation."
                }
            ]
        }
    ]
    }'))-> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 -> 'text';""")
    assert len(pro) == 1 and "TPCH" in pro[0][0]
    # The Omni page's form: the pre-registered streaming model answers a JSON array of chunks.
    stream = rows(db, """SELECT
json_array_elements( google_ml.predict_row( model_id => 'gemini-1.5-pro:streamGenerateContent',
request_body => '""" + TPCH_BODY + """'))-> 'candidates' -> 0 -> 'content' -> 'parts' -> 0 -> 'text';""")
    assert len(stream) >= 1 and all(isinstance(chunk, str) for (chunk,) in stream)
    db.execute("CALL google_ml.create_sm_secret(secret_id => 'documented_key', "
               "secret_path => 'projects/PROJECT_ID/secrets/SECRET_MANAGER_SECRET_ID/versions/1')")
    db.execute("""CALL google_ml.create_model(model_id => 'facebook/bart-large-mnli',
        model_provider => 'hugging_face', model_qualified_name => 'facebook/bart-large-mnli',
        model_auth_type => 'secret_manager', model_auth_id => 'documented_key')""")
    (classified,) = db.execute("""SELECT
google_ml.predict_row(
model_id => 'facebook/bart-large-mnli',
request_body =>
'{
"inputs": "Hi, I recently bought a device from your company but it is not working as advertised and I would like to get reimbursed!",
"parameters": {"candidate_labels": ["refund", "legal", "faq"]}
}'
);""").fetchone()
    # zero-shot classification answers with the candidate labels, as Hugging Face does
    assert sorted(item["label"] for item in classified) == ["faq", "legal", "refund"]
    db.execute("""CALL google_ml.create_model(model_id => 'anthropic-opus',
        model_provider => 'anthropic', model_auth_type => 'secret_manager',
        model_auth_id => 'documented_key',
        generate_headers_fn => 'google_ml.anthropic_claude_header_gen_fn')""")
    (claude,) = db.execute("""SELECT
google_ml.predict_row('anthropic-opus', '{
"model": "claude-3-opus-20240229",
"max_tokens": 1024,
"messages": [
{"role": "user", "content": "Hello, world"}
]
}');""").fetchone()
    assert claude["type"] == "message" and claude["model"] == "claude-3-opus-20240229"
    assert "Hello, world" in claude["content"][0]["text"]
    for model in ("gemini-pro", "facebook/bart-large-mnli", "anthropic-opus"):
        db.execute("CALL google_ml.drop_model(%s)", (model,))
    db.execute("CALL google_ml.drop_sm_secret('documented_key')")


# -- work-with-embeddings (public.embedding and google_ml.embedding) ------------------------------

def test_work_with_embeddings_page(db: psycopg.Connection[Any]) -> None:
    content = "AlloyDB is a managed, cloud-hosted SQL database service"
    (named,) = db.execute(f"""SELECT
  google_ml.embedding(
    model_id => 'text-embedding-005',
    content => '{content}');""").fetchone()
    (public,) = db.execute(f"SELECT embedding('text-embedding-005', '{content}');").fetchone()
    assert len(named) == 768 and named == public
    (gemini,) = db.execute(f"SELECT embedding('gemini-embedding-001', '{content}');").fetchone()
    assert len(gemini) == 3072  # the page's model: gemini-embedding-001 answers 3072 dimensions
    db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    assert rows(db, f"SELECT vector_dims(google_ml.embedding('text-embedding-005', '{content}')"
                    "::vector)") == [(768,)]


# -- model-endpoint-sample-template (Google rows of the template table) ---------------------------

def test_model_endpoint_sample_templates_page(db: psycopg.Connection[Any]) -> None:
    vertex = ("https://us-central1-aiplatform.googleapis.com/v1/projects/PROJECT_ID/locations/"
              "us-central1/publishers/google/models/")
    db.execute(f"""CALL google_ml.create_model(
model_id => 'UNIQUE_EMB_MODEL_ID',
model_request_url => '{vertex}text-embedding-005:predict',
model_provider => 'google',
model_type => 'text_embedding',
model_auth_type => 'alloydb_service_agent_iam');""")
    db.execute(f"""CALL google_ml.create_model(
model_id => 'UNIQUE_GEN_MODEL_ID',
model_request_url => '{vertex}gemini-2.0-flash-001:generateContent',
model_provider => 'google',
model_type => 'generic',
model_auth_type => 'alloydb_service_agent_iam'
);""")
    assert rows(db, "SELECT model_id, model_provider::text, model_type::text, model_auth_type::text "
                    "FROM google_ml.model_info_view WHERE model_id LIKE 'UNIQUE_%' ORDER BY 1") == [
        ("UNIQUE_EMB_MODEL_ID", "google", "text_embedding", "alloydb_service_agent_iam"),
        ("UNIQUE_GEN_MODEL_ID", "google", "generic", "alloydb_service_agent_iam")]
    (vec,) = db.execute("SELECT google_ml.embedding('UNIQUE_EMB_MODEL_ID', 'hello')").fetchone()
    assert len(vec) == 768
    (answer,) = db.execute("SELECT google_ml.predict_row('UNIQUE_GEN_MODEL_ID', "
                           "'{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"hi\"}]}]}')"
                           ).fetchone()
    assert answer[0]["candidates"][0]["content"]["parts"][0]["text"]
    db.execute("CALL google_ml.drop_model('UNIQUE_EMB_MODEL_ID')")
    db.execute("CALL google_ml.drop_model('UNIQUE_GEN_MODEL_ID')")
    # The custom text_embedding row (Secret Manager auth): its secret and input transform as
    # printed; then a registration with the reference page's parameters.
    db.execute("""CALL google_ml.create_sm_secret(
secret_id => 'UNIQUE_CUSTOM_SECRET_ID',
secret_path => 'projects/PROJECT_ID/secrets/SECRET_NAME/versions/VERSION_NUMBER');""")
    db.execute("""CREATE OR REPLACE FUNCTION custom_text_embedding_input_transform(model_id VARCHAR(100), input_text TEXT)
RETURNS JSON
LANGUAGE plpgsql
AS $$
#variable_conflict use_variable
DECLARE
  transformed_input JSON;
BEGIN
  -- Lookup model details, if required, using model_id through convenience functions
  -- Transform input_text into JSON format required by the model.
  SELECT json_build_object('input_text_key', json_build_array(input_text))::JSON INTO transformed_input;
  RETURN transformed_input;
END;
$$;""")
    db.execute("""CREATE OR REPLACE FUNCTION custom_text_embedding_output_transform(
  model_id VARCHAR(100), response_json JSON)
RETURNS REAL[]
LANGUAGE plpgsql
AS $$
DECLARE
  transformed_output REAL[];
BEGIN
  SELECT ARRAY(SELECT json_array_elements_text(response_json->0)) INTO transformed_output;
  RETURN transformed_output;
END;
$$;""")  # the printed body is cut off after its comments; this one is the register page's
    assert rows(db, "SELECT custom_text_embedding_input_transform('m', 'hi')::text") == [
        ('{"input_text_key" : ["hi"]}',)]
    db.execute("""CALL google_ml.create_model(
model_id => 'UNIQUE_CUSTOM_EMB_MODEL_ID',
model_request_url => 'https://embeddings.example.com/v1/embed',
model_provider => 'custom',
model_type => 'text_embedding',
model_auth_type => 'secret_manager',
model_auth_id => 'UNIQUE_CUSTOM_SECRET_ID',
model_in_transform_fn => 'custom_text_embedding_input_transform',
model_out_transform_fn => 'custom_text_embedding_output_transform');""")
    assert rows(db, "SELECT input_transform_fn, output_transform_fn, model_auth_id "
                    "FROM google_ml.model_info_view WHERE model_id = 'UNIQUE_CUSTOM_EMB_MODEL_ID'"
                ) == [("public.custom_text_embedding_input_transform",
                       "public.custom_text_embedding_output_transform", "UNIQUE_CUSTOM_SECRET_ID")]
    db.execute("CALL google_ml.drop_model('UNIQUE_CUSTOM_EMB_MODEL_ID')")
    db.execute("CALL google_ml.drop_sm_secret('UNIQUE_CUSTOM_SECRET_ID')")


# -- model-endpoint-manage-model (alter, list, drop; secrets) -------------------------------------

def test_manage_models_and_secrets_page(db: psycopg.Connection[Any]) -> None:
    db.execute("CALL google_ml.create_sm_secret('managed_key', "
               "'projects/PROJECT_ID/secrets/SECRET_MANAGER_SECRET_ID/versions/1')")
    db.execute("CALL google_ml.create_model(model_id => 'managed-model', model_provider => "
               "'open_ai', model_type => 'text_embedding', model_qualified_name => "
               "'text-embedding-3-small', model_auth_type => 'secret_manager', "
               "model_auth_id => 'managed_key')")
    # Printed with `model_auth => 'AUTH_ID'`; the parameter is model_auth_id, as on the
    # reference and register pages (the printed name matches no parameter).
    db.execute("""CALL
google_ml.alter_model(
  model_id => 'managed-model',
  model_request_url => 'https://api.openai.com/v1/embeddings',
  model_provider => 'open_ai',
  model_type => 'text_embedding',
  model_qualified_name => 'text-embedding-3-large',
  model_auth_type => 'secret_manager',
  model_auth_id => 'managed_key',
  generate_headers_fn => NULL,
  model_in_transform_fn => 'google_ml.openai_text_embedding_input_transform',
  model_out_transform_fn => 'google_ml.openai_text_embedding_output_transform');""")
    (record,) = db.execute("SELECT google_ml.list_model('managed-model');").fetchone()
    assert record[0] == "managed-model" and "text-embedding-3-large" in record
    assert len(db.execute("SELECT google_ml.embedding('managed-model', 'x')").fetchone()[0]) == 3072
    db.execute("""CALL
google_ml.alter_sm_secret(
  secret_id => 'managed_key',
  secret_path => 'projects/PROJECT_ID/secrets/SECRET_MANAGER_SECRET_ID/versions/2');""")
    assert rows(db, "SELECT secret_path FROM google_ml.secrets WHERE secret_id = 'managed_key'") == [
        ("projects/PROJECT_ID/secrets/SECRET_MANAGER_SECRET_ID/versions/2",)]
    db.execute("CALL google_ml.drop_model('managed-model');")
    assert rows(db, "SELECT count(*) FROM google_ml.model_info_view "
                    "WHERE model_id = 'managed-model'") == [(0,)]
    db.execute("CALL google_ml.drop_sm_secret('managed_key');")
    with pytest.raises(psycopg.errors.UndefinedObject, match="managed-model"):
        db.execute("CALL google_ml.drop_model('managed-model')")


MANAGE_MODEL_PAGE_ALTER = """CALL
    google_ml.alter_model(
      model_id => 'MODEL_ID',
      model_request_url => 'REQUEST_URL',
      model_provider => 'PROVIDER_ID',
      model_type => 'MODEL_TYPE',
      model_qualified_name => 'MODEL_QUALIFIED_NAME',
      model_auth_type => 'AUTH_TYPE',
      model_auth => 'AUTH_ID',
      generate_headers_fn => 'GEN_HEADER_FUNCTION',
      model_in_transform_fn => 'INPUT_TRANSFORM_FUNCTION',
      model_out_transform_fn => 'OUTPUT_TRANSFORM_FUNCTION');"""


def test_manage_model_pages_model_auth_is_refused_with_a_hint(db: psycopg.Connection[Any]) -> None:
    """https://cloud.google.com/alloydb/docs/ai/model-endpoint-manage-model prints
    ``model_auth =>`` (so does the older docs/reference/model-endpoint-reference for
    create_model); the procedures' parameter is model_auth_id. PostgreSQL's 42883 stays (no
    such parameter: AlloyDB refuses it too); the proxy's HINT names the right parameter."""
    with pytest.raises(psycopg.errors.UndefinedFunction) as caught:
        db.execute(MANAGE_MODEL_PAGE_ALTER)
    diag = caught.value.diag
    assert diag.sqlstate == "42883"
    assert diag.message_primary is not None
    assert diag.message_primary.startswith("procedure google_ml.alter_model(model_id => unknown")
    assert diag.message_hint is not None and "model_auth_id" in diag.message_hint
    assert "type casts" not in diag.message_hint  # PostgreSQL's own would mislead here
    # The reference page's create_model, the same way; the session goes on.
    with pytest.raises(psycopg.errors.UndefinedFunction) as created:
        db.execute(MANAGE_MODEL_PAGE_ALTER.replace("alter_model", "create_model"))
    assert created.value.diag.message_hint is not None
    assert "google_ml.create_model" in created.value.diag.message_hint
    assert rows(db, "SELECT count(*) FROM google_ml.models WHERE id = 'MODEL_ID'") == [(0,)]


# -- run-vector-similarity-search ------------------------------------------------------------------
# https://docs.cloud.google.com/alloydb/docs/ai/run-vector-similarity-search (2026-05-15): "Because
# embedding() returns a real array, you must explicitly cast the embedding() call to vector", then
# an example without the cast. PostgreSQL refuses it (pgvector's real[] -> vector cast is an
# assignment cast), as AlloyDB must; the proxy's HINT says what to write.


def test_run_vector_similarity_search_page(db: psycopg.Connection[Any]) -> None:
    db.execute("CREATE EXTENSION IF NOT EXISTS vector;")
    db.execute("DROP TABLE IF EXISTS similarity_items")
    db.execute("CREATE TABLE similarity_items (id int, complaints text, emb vector(768))")
    db.execute("INSERT INTO similarity_items VALUES "
               "(1, 'It was the wrong color', embedding('text-embedding-005', 'wrong color')), "
               "(2, 'Arrived late', embedding('text-embedding-005', 'late delivery'))")
    # With vector input, as printed (the vector spelled out).
    vec = rows(db, "SELECT embedding('text-embedding-005', 'wrong color')::vector::text")[0][0]
    got = rows(db, f"SELECT id FROM similarity_items ORDER BY emb <=> '{vec}' LIMIT 1")
    assert got == [(1,)]
    # With text input, as printed: refused, with a HINT naming the cast.
    printed = ("SELECT * FROM similarity_items\n    ORDER BY emb::vector\n"
               "    <=> google_ml.embedding('text-embedding-005', 'It was the wrong color')\n"
               "    LIMIT 1")
    with pytest.raises(psycopg.errors.UndefinedFunction) as caught:
        db.execute(printed)
    diag = caught.value.diag
    assert diag.message_primary == "operator does not exist: vector <=> real[]"
    assert diag.message_hint is not None and "::vector" in diag.message_hint
    assert "google_ml.embedding() returns real[]" in diag.message_hint
    assert diag.statement_position == str(printed.index("<=>") + 1)
    # As the page's own sentence says: cast the call.
    fixed = printed.replace("wrong color')", "wrong color')::vector")
    assert [r[0] for r in rows(db, fixed)] == [1]
    # A statement that fails elsewhere keeps PostgreSQL's own HINT.
    with pytest.raises(psycopg.errors.UndefinedFunction) as other:
        db.execute("SELECT emb <=> 1 FROM similarity_items")
    assert other.value.diag.message_hint is not None
    assert "::vector" not in other.value.diag.message_hint
    db.execute("DROP TABLE similarity_items")


# -- perform-vector-search (tutorial) --------------------------------------------------------------
# https://docs.cloud.google.com/alloydb/docs/ai/perform-vector-search: the tutorial's statements as
# printed, in order (the columnar-engine part needs gcloud and AlloyDB's columnar engine).

VECTOR_SEARCH_TUTORIAL_TABLES = """
CREATE TABLE product (
  id INT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  description TEXT,
  category VARCHAR(255),
  color VARCHAR(255),
  embedding vector(768) GENERATED ALWAYS AS (embedding('text-embedding-005', description)) STORED
);
CREATE TABLE product_inventory (
  id INT PRIMARY KEY,
  product_id INT REFERENCES product(id),
  inventory INT,
  price DECIMAL(10,2)
);
INSERT INTO product (id, name, description, category, color) VALUES
(1, 'Stuffed Elephant', 'Soft plush elephant with floppy ears.', 'Plush Toys', 'Gray'),
(2, 'Remote Control Airplane', 'Easy-to-fly remote control airplane.', 'Vehicles', 'Red'),
(3, 'Wooden Train Set', 'Classic wooden train set with tracks and trains.', 'Vehicles', 'Multicolor'),
(4, 'Kids Tool Set', 'Toy tool set with realistic tools.', 'Pretend Play', 'Multicolor'),
(5, 'Play Food Set', 'Set of realistic play food items.', 'Pretend Play', 'Multicolor'),
(6, 'Magnetic Tiles', 'Set of colorful magnetic tiles for building.', 'Construction Toys', 'Multicolor'),
(7, 'Kids Microscope', 'Microscope for kids with different magnification levels.', 'Educational Toys', 'White'),
(8, 'Telescope for Kids', 'Telescope designed for kids to explore the night sky.', 'Educational Toys', 'Blue'),
(9, 'Coding Robot', 'Robot that teaches kids basic coding concepts.', 'Educational Toys', 'White'),
(10, 'Kids Camera', 'Durable camera for kids to take pictures and videos.', 'Electronics', 'Pink'),
(11, 'Walkie Talkies', 'Set of walkie talkies for kids to communicate.', 'Electronics', 'Blue'),
(12, 'Karaoke Machine', 'Karaoke machine with built-in microphone and speaker.', 'Electronics', 'Black'),
(13, 'Kids Drum Set', 'Drum set designed for kids with adjustable height.', 'Musical Instruments', 'Blue'),
(14, 'Kids Guitar', 'Acoustic guitar for kids with nylon strings.', 'Musical Instruments', 'Brown'),
(15, 'Kids Keyboard', 'Electronic keyboard with different instrument sounds.', 'Musical Instruments', 'Black'),
(16, 'Art Easel', 'Double-sided art easel with chalkboard and whiteboard.', 'Arts & Crafts', 'White'),
(17, 'Finger Paints', 'Set of non-toxic finger paints for kids.', 'Arts & Crafts', 'Multicolor'),
(18, 'Modeling Clay', 'Set of colorful modeling clay.', 'Arts & Crafts', 'Multicolor'),
(19, 'Watercolor Paint Set', 'Watercolor paint set with brushes and palette.', 'Arts & Crafts', 'Multicolor'),
(20, 'Beading Kit', 'Kit for making bracelets and necklaces with beads.', 'Arts & Crafts', 'Multicolor'),
(21, '3D Puzzle', '3D puzzle of a famous landmark.', 'Puzzles', 'Multicolor'),
(22, 'Race Car Track Set', 'Race car track set with cars and accessories.', 'Vehicles', 'Multicolor'),
(23, 'RC Monster Truck', 'Remote control monster truck with oversized tires.', 'Vehicles', 'Green'),
(24, 'Train Track Expansion Set', 'Expansion set for wooden train tracks.', 'Vehicles', 'Multicolor');
INSERT INTO product_inventory (id, product_id, inventory, price) VALUES
(1, 1, 9, 13.09), (2, 2, 40, 79.82), (3, 3, 34, 52.49), (4, 4, 9, 12.03), (5, 5, 36, 71.29),
(6, 6, 10, 51.49), (7, 7, 7, 37.35), (8, 8, 6, 10.87), (9, 9, 7, 42.47), (10, 10, 3, 24.35),
(11, 11, 4, 10.20), (12, 12, 47, 74.57), (13, 13, 5, 28.54), (14, 14, 11, 25.58),
(15, 15, 21, 69.84), (16, 16, 6, 47.73), (17, 17, 26, 81.00), (18, 18, 11, 91.60),
(19, 19, 8, 78.53), (20, 20, 43, 84.33), (21, 21, 46, 90.01), (22, 22, 6, 49.82),
(23, 23, 37, 50.20), (24, 24, 27, 99.27);
"""

MUSIC_SEARCH = """SELECT * FROM product
ORDER BY embedding <=> embedding('text-embedding-005', 'music')::vector
LIMIT 3;"""


def test_perform_vector_search_tutorial(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS product_inventory, product")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector;")
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_scann;")
        conn.execute(VECTOR_SEARCH_TUTORIAL_TABLES)
        # the generated column holds each description's embedding
        assert rows(conn, "SELECT count(*) FROM product WHERE embedding = "
                          "embedding('text-embedding-005', description)::vector") == [(24,)]
        knn = [row[0] for row in rows(conn, MUSIC_SEARCH)]
        assert len(knn) == 3
        conn.execute("""CREATE INDEX product_index ON product
USING scann (embedding cosine)
WITH (num_leaves = 5);""")
        # AlloyDB Studio runs a tab's statements in one transaction: SET LOCAL applies
        with conn.transaction():
            conn.execute("SET LOCAL scann.num_leaves_to_search = 2;")
            assert [row[0] for row in rows(conn, MUSIC_SEARCH)] == knn
        with conn.transaction():
            conn.execute("SET LOCAL scann.num_leaves_to_search = 2;")
            joined = rows(conn, """SELECT * FROM product p
JOIN product_inventory pi ON p.id = pi.product_id
WHERE pi.price < 80.00
ORDER BY embedding <=> embedding('text-embedding-005', 'music')::vector
LIMIT 3;""")
        assert len(joined) == 3 and all(row[-1] < 80 for row in joined)
        conn.execute("DROP TABLE product_inventory, product")


# -- version 1.4.2 (release notes 2024-11-07, configure-vertex-ai) ------------------------------


def test_version_1_4_2_as_the_release_notes_and_scripts_ask_for_it(emulator: Emulator) -> None:
    """https://docs.cloud.google.com/alloydb/docs/release-notes (2024-11-07): "upgrade the
    google_ml_integration extension version 1.3 to the latest version, 1.4.2", and
    https://docs.cloud.google.com/alloydb/docs/ai/configure-vertex-ai (2026-04-10): "Verify the
    google_ml_integration extension version 1.4.2 or later is installed". Public set-up scripts
    ask for it by number (``CREATE EXTENSION IF NOT EXISTS google_ml_integration with version
    '1.4.2'``, then ``CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl cascade``). 1.4.2 brings the
    pre-registered generic Gemini models; forecasting (1.4.5) and the AI functions (1.5.2) come
    later."""
    dsn = fresh_database(emulator, "version_1_4_2")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS google_ml_integration;")
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration with version '1.4.2';")
        conn.execute("CREATE EXTENSION IF NOT EXISTS alloydb_ai_nl cascade;")
        assert rows(conn, "SELECT extversion FROM pg_extension "
                          "WHERE extname = 'google_ml_integration' ;") == [("1.4.2",)]
        models = {row[0] for row in rows(conn, "SELECT model_id FROM google_ml.model_info_view")}
        assert {"text-embedding-005", "gemini-1.5-pro:generateContent"} <= models
        assert "gemini-2.5-flash-lite" not in models  # the AI functions' default: 1.5.2
        assert rows(conn, "SELECT to_regprocedure('ai.if(text,varchar)') IS NULL, "
                          "to_regproc('ai.forecast') IS NULL") == [(True, True)]
        assert len(rows(conn, "SELECT embedding('text-embedding-005', 'AlloyDB AI')")[0][0]) == 768
        conn.execute("DROP EXTENSION google_ml_integration CASCADE;")
        # the release note's path: from 1.3 to 1.4.2, then on to the newest
        conn.execute("CREATE EXTENSION google_ml_integration VERSION '1.3';")
        conn.execute("ALTER EXTENSION google_ml_integration UPDATE TO '1.4.2';")
        assert rows(conn, "SELECT count(*) FROM google_ml.model_info_view "
                          "WHERE model_id = 'gemini-1.5-pro:generateContent'") == [(1,)]
        conn.execute("ALTER EXTENSION google_ml_integration UPDATE;")
        assert rows(conn, "SELECT extversion FROM pg_extension "
                          "WHERE extname = 'google_ml_integration'") == [(extension_build.DEFAULT_VERSION,)]


def test_version_1_2_as_the_older_embeddings_page_and_scripts_ask_for_it(
        emulator: Emulator) -> None:
    """https://cloud.google.com/alloydb/docs/ai/work-with-embeddings (older copy), "Required
    database extension": "Ensure that the google_ml_integration extension, version 1.2 or later,
    installed on your AlloyDB database. ``CREATE EXTENSION google_ml_integration VERSION
    '1.2';``", then ``GRANT EXECUTE ON FUNCTION embedding TO USER_NAME;`` and
    ``SELECT embedding('textembedding-gecko@003', 'TEXT')``. A public Django migration runs the
    same two statements (``CREATE EXTENSION IF NOT EXISTS google_ml_integration VERSION '1.2';``).
    Model endpoint management "requires that the google_ml_integration version 1.3 extension is
    installed" (the register-model page): 1.2 has no create_model."""
    dsn = fresh_database(emulator, "version_1_2")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS google_ml_integration;")
        conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration VERSION '1.2';")
        conn.execute("DO $$ BEGIN CREATE ROLE documented_user_1_2; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute("GRANT EXECUTE ON FUNCTION embedding TO documented_user_1_2;")
        (values,) = conn.execute(
            "SELECT embedding('textembedding-gecko@003', "
            "'AlloyDB is a managed, cloud-hosted SQL database service.');").fetchone()
        assert len(values) == 768
        # a whole table at once: the warm-up (the emulator's machinery) is there in 1.2 too
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, complaints text, "
                     "complaint_embedding real[])")
        conn.execute("INSERT INTO items VALUES (1, 'wrong color'), (2, 'arrived broken'), "
                     "(3, 'wrong color')")
        conn.execute("SET track_functions = 'pl'")
        conn.execute("UPDATE items SET complaint_embedding = "
                     "embedding('textembedding-gecko@003', complaints);")
        conn.execute("SELECT pg_stat_force_next_flush()")
        assert rows(conn, "SELECT count(DISTINCT complaint_embedding), "
                          "count(complaint_embedding) FROM items") == [(2, 3)]
        calls = dict(rows(conn, "SELECT funcname, calls FROM pg_stat_user_functions "
                                "WHERE schemaname = 'google_ml' "
                                "AND funcname IN ('_warm', '_embed_per_row')"))
        assert calls.get("_warm", 0) >= 1 and calls.get("_embed_per_row", 0) == 0, calls
        (answer,) = conn.execute(
            "SELECT ml_predict_row('publishers/google/models/text-embedding-005', "
            "'{\"instances\": [{\"content\": \"x\"}]}')").fetchone()
        assert len(answer["predictions"][0]["embeddings"]["values"]) == 768
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("CALL google_ml.create_model(model_id => 'm', model_provider => 'custom', "
                         "model_request_url => 'https://example.test/v1')")
        conn.execute("ALTER EXTENSION google_ml_integration UPDATE;")
        assert rows(conn, "SELECT extversion FROM pg_extension "
                          "WHERE extname = 'google_ml_integration'") == [
            (extension_build.DEFAULT_VERSION,)]
        assert rows(conn, "SELECT count(*) FROM google_ml.model_info_view "
                          "WHERE model_id = 'textembedding-gecko@003'") == [(1,)]
        conn.execute("REVOKE EXECUTE ON FUNCTION embedding FROM documented_user_1_2;")
        conn.execute("DROP ROLE documented_user_1_2")


# -- reference/supported-ai-models ---------------------------------------------------------------

# "Models with built-in support": (provider, model type, qualified name, the dimension of its
# embeddings, or None for a generic model). Registering one by its qualified name gets its request
# URL and transforms filled in (reference/model-endpoint: "Built-in support simplifies
# registration and usage by automatically configuring default transform functions and inferring
# correct request URLs").
BUILT_IN_SUPPORT = [
    ("google", "text_embedding", "text-embedding-004", 768),
    ("google", "text_embedding", "text-embedding-005", 768),
    ("google", "text_embedding", "text-embedding-preview-0815", 768),
    ("google", "text_embedding", "text-multilingual-embedding-002", 768),
    ("google", "text_embedding", "text-embedding-large-exp-03-07", 3072),
    ("google", "multimodal_embedding", "multimodalembedding@001", 1408),
    ("google", "reranking", "semantic-ranker-default-003", None),
    ("open_ai", "text_embedding", "text-embedding-ada-002", 1536),
    ("open_ai", "text_embedding", "text-embedding-3-small", 1536),
    ("open_ai", "text_embedding", "text-embedding-3-large", 3072),
    ("anthropic", "generic", "claude-3-opus-20240229", None),
    ("anthropic", "generic", "claude-3-sonnet-20240229", None),
    ("anthropic", "generic", "claude-3-haiku-20240307", None),
]


def test_supported_ai_models_page(db: psycopg.Connection[Any]) -> None:
    """Each model the page lists with built-in support registers by its qualified name alone
    (plus the auth its provider needs) and answers; the page's pre-registered Vertex AI models
    (generic gemini-1.5-pro:streamGenerateContent, gemini-1.5-pro:generateContent and
    gemini-1.0-pro:generateContent from 1.4.2, text-embedding gemini-embedding-001 from 1.3) are
    there without registration."""
    db.execute("SET google_ml_integration.enable_ai_query_engine = on")
    db.execute("CALL google_ml.create_sm_secret(secret_id => 'supported_key', secret_path => "
               "'projects/PROJECT_ID/secrets/SECRET_ID/versions/1')")
    for provider, model_type, name, dimension in BUILT_IN_SUPPORT:
        auth = ("model_auth_type => 'alloydb_service_agent_iam'" if provider == "google" else
                "model_auth_type => 'secret_manager', model_auth_id => 'supported_key'")
        model_id = f"supported-{name}"
        db.execute(f"CALL google_ml.create_model(model_id => '{model_id}', model_provider => "
                   f"'{provider}', model_type => '{model_type}', model_qualified_name => "
                   f"'{name}', {auth})")
        (url, transform) = db.execute(
            "SELECT model_request_url, input_transform_fn FROM google_ml.model_info_view "
            "WHERE model_id = %s", (model_id,)).fetchone()
        assert (url is None) == (model_type == "reranking"), (name, url)
        assert (transform is not None) == model_type.endswith("embedding"), (name, transform)
        if model_type == "text_embedding":
            (vector,) = db.execute("SELECT google_ml.embedding(%s, 'AlloyDB')",
                                   (model_id,)).fetchone()
            assert len(vector) == dimension, name
        elif model_type == "multimodal_embedding":
            (vector,) = db.execute("SELECT ai.text_embedding(model_id => %s, content => 'AlloyDB')",
                                   (model_id,)).fetchone()
            assert len(vector) == dimension, name
        elif model_type == "reranking":
            assert len(rows(db, f"SELECT index, score FROM ai.rank(model_id => '{model_id}', "
                                "search_string => 'q', documents => ARRAY['a', 'q'])")) == 2
        else:
            body = {"model": name, "max_tokens": 64,
                    "messages": [{"role": "user", "content": "Hello, world"}]}
            (answer,) = db.execute("SELECT google_ml.predict_row(%s, %s::json)",
                                   (model_id, json.dumps(body))).fetchone()
            assert answer["content"][0]["type"] == "text", name
    preregistered = {model_id for (model_id,) in rows(db, "SELECT model_id FROM "
                                                          "google_ml.model_info_view")}
    assert {"gemini-1.5-pro:streamGenerateContent", "gemini-1.5-pro:generateContent",
            "gemini-1.0-pro:generateContent", "gemini-embedding-001"} <= preregistered
