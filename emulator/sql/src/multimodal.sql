-- Multimodal embeddings (AlloyDB 1.5.2):
--   ai.text_embedding(model_id, content)            -> predictions[0].textEmbedding
--   ai.image_embedding(model_id, image, mimetype)   -> predictions[0].imageEmbedding
--   ai.video_embedding(model_id, video, offsets)    -> predictions[0].videoEmbeddings[*].embedding
--
-- One Vertex AI :predict request per call, {"instances":[{"text"|"image"|"video": ...}]}, to a
-- registered multimodal_embedding model or to a Vertex AI model named directly
-- (multimodalembedding@001). An image is a Cloud Storage URI (gs://...) or base64 bytes.

-- @version 1.5.2

-- The model a multimodal call names: registered, or a Vertex AI model by name or path.
CREATE FUNCTION google_ml._multimodal_model(model_id text, fn text)
RETURNS google_ml.models
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    m google_ml.models := google_ml._model_for_call(model_id);
BEGIN
    IF m.id IS NULL THEN
        m := google_ml._vertex_model(model_id, 'multimodal_embedding');
    END IF;
    IF m.id IS NULL THEN
        m := google_ml._registered_model(model_id);  -- raises 42704 naming it
    END IF;
    IF m.model_type <> 'multimodal_embedding' THEN
        RAISE EXCEPTION 'model "%" is a % model; % needs a multimodal_embedding model',
                        model_id, m.model_type, fn
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use multimodalembedding@001, or register a model with model_type => ''multimodal_embedding''.';
    END IF;
    IF m.provider <> 'google' THEN
        RAISE EXCEPTION 'model "%": % is available for Vertex AI (google) models only', model_id, fn
            USING ERRCODE = 'feature_not_supported';
    END IF;
    RETURN m;
END;
$$;

-- One instance to the model; the embedding found at path in its first prediction.
CREATE FUNCTION google_ml._multimodal_embed(
    m google_ml.models, instance jsonb, path text[], input_text text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    body      jsonb := jsonb_build_object('instances', jsonb_build_array(instance));
    response  jsonb;
    v         jsonb;
BEGIN
    response := google_ml._invoke(m, google_ml._headers_for_call(m, input_text, NULL), body);
    v := response #> path;
    IF v IS NULL OR jsonb_typeof(v) <> 'array' THEN
        PERFORM google_ml._unexpected_response(
            m.id, pg_catalog.array_to_string(path, '.'), response::json);
    END IF;
    RETURN ARRAY(SELECT x::real FROM jsonb_array_elements_text(v) AS x);
END;
$$;

CREATE FUNCTION ai.text_embedding(model_id text, content text)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
BEGIN
    PERFORM google_ml._require_model_support();
    IF content IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN google_ml._multimodal_embed(
        google_ml._multimodal_model(model_id, 'ai.text_embedding'),
        jsonb_build_object('text', content), '{predictions,0,textEmbedding}', content);
END;
$$;

CREATE FUNCTION ai.image_embedding(model_id text, image text, mimetype text DEFAULT 'image/jpeg')
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m       google_ml.models;
    source  jsonb;
BEGIN
    PERFORM google_ml._require_model_support();
    IF image IS NULL THEN
        RETURN NULL;
    END IF;
    m := google_ml._multimodal_model(model_id, 'ai.image_embedding');
    IF image LIKE 'gs://%' THEN
        source := jsonb_build_object('gcsUri', image);
    ELSE
        BEGIN
            IF pg_catalog.length(pg_catalog.decode(image, 'base64')) = 0 THEN
                RAISE invalid_parameter_value;
            END IF;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'ai.image_embedding: image must be a Cloud Storage URI (gs://bucket/object) or base64-encoded image bytes'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'It starts with: ' || pg_catalog.left(image, 40);
        END;
        source := jsonb_build_object('bytesBase64Encoded', image);
    END IF;
    source := source || jsonb_build_object('mimeType', coalesce(mimetype, 'image/jpeg'));
    RETURN google_ml._multimodal_embed(
        m, jsonb_build_object('image', source), '{predictions,0,imageEmbedding}', NULL);
END;
$$;

-- One embedding per video segment: Vertex AI cuts the video from start_offset_seconds to
-- end_offset_seconds into segments of interval_seconds (its defaults when NULL) and answers
-- predictions[0].videoEmbeddings[] in order; the result is a two-dimensional real[][] (a row per
-- segment), read as my_array[1][5]. The video is a gs:// URI or base64 bytes.
CREATE FUNCTION ai.video_embedding(model_id text, video text,
                                   start_offset_seconds int DEFAULT NULL,
                                   end_offset_seconds int DEFAULT NULL,
                                   interval_seconds int DEFAULT NULL)
RETURNS real[]
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    m         google_ml.models;
    source    jsonb;
    segments  jsonb;
    response  jsonb;
    result    real[];
BEGIN
    PERFORM google_ml._require_model_support();
    IF video IS NULL THEN
        RETURN NULL;
    END IF;
    m := google_ml._multimodal_model(model_id, 'ai.video_embedding');
    IF video LIKE 'gs://%' THEN
        source := jsonb_build_object('gcsUri', video);
    ELSE
        BEGIN
            IF pg_catalog.length(pg_catalog.decode(video, 'base64')) = 0 THEN
                RAISE invalid_parameter_value;
            END IF;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'ai.video_embedding: video must be a Cloud Storage URI (gs://bucket/object) or base64-encoded video bytes'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'It starts with: ' || pg_catalog.left(video, 40);
        END;
        source := jsonb_build_object('bytesBase64Encoded', video);
    END IF;
    IF start_offset_seconds < 0 OR end_offset_seconds < 0 OR interval_seconds < 1
       OR end_offset_seconds <= start_offset_seconds THEN
        RAISE EXCEPTION 'ai.video_embedding: offsets must be 0 or more with start_offset_seconds before end_offset_seconds, and interval_seconds at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    segments := jsonb_strip_nulls(jsonb_build_object(
        'startOffsetSec', start_offset_seconds, 'endOffsetSec', end_offset_seconds,
        'intervalSec', interval_seconds));
    IF segments <> '{}'::jsonb THEN
        source := source || jsonb_build_object('videoSegmentConfig', segments);
    END IF;
    response := google_ml._invoke(m, google_ml._headers_for_call(m, NULL, NULL),
                                  jsonb_build_object('instances', jsonb_build_array(
                                      jsonb_build_object('video', source))));
    segments := response #> '{predictions,0,videoEmbeddings}';
    IF segments IS NULL OR jsonb_typeof(segments) <> 'array' OR jsonb_array_length(segments) = 0 THEN
        PERFORM google_ml._unexpected_response(m.id, 'predictions[0].videoEmbeddings', response::json);
    END IF;
    SELECT array_agg(ARRAY(SELECT x::real FROM jsonb_array_elements_text(s -> 'embedding') AS x)
                     ORDER BY i)
      INTO result
      FROM jsonb_array_elements(segments) WITH ORDINALITY AS e (s, i);
    RETURN result;
END;
$$;

COMMENT ON FUNCTION ai.text_embedding(text, text) IS
    'Embedding of a text by a multimodal embedding model (multimodalembedding@001).';
COMMENT ON FUNCTION ai.image_embedding(text, text, text) IS
    'Embedding of an image (gs:// URI or base64 bytes) by a multimodal embedding model.';
COMMENT ON FUNCTION ai.video_embedding(text, text, int, int, int) IS
    'One embedding per segment of a video (gs:// URI or base64 bytes), by a multimodal embedding model.';

-- The google_ml twins.
CREATE FUNCTION google_ml.text_embedding(model_id text, content text)
RETURNS real[] LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$ SELECT ai.text_embedding(model_id, content) $$;
CREATE FUNCTION google_ml.image_embedding(model_id text, image text, mimetype text DEFAULT 'image/jpeg')
RETURNS real[] LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$ SELECT ai.image_embedding(model_id, image, mimetype) $$;
CREATE FUNCTION google_ml.video_embedding(model_id text, video text,
                                          start_offset_seconds int DEFAULT NULL,
                                          end_offset_seconds int DEFAULT NULL,
                                          interval_seconds int DEFAULT NULL)
RETURNS real[] LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$ SELECT ai.video_embedding(model_id, video, start_offset_seconds, end_offset_seconds,
                                interval_seconds) $$;
