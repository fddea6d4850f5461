-- "Because you watched X": each item's nearest items by cosine similarity of the model's
-- item vectors (ALS factors; for EASE, the items' co-occurrence). Replaced atomically together with reco.recommendations by each published run.
CREATE SCHEMA IF NOT EXISTS reco;

CREATE TABLE IF NOT EXISTS reco.similar_items (
    item_id         BIGINT           NOT NULL,
    similar_item_id BIGINT           NOT NULL CHECK (similar_item_id <> item_id),
    rank            SMALLINT         NOT NULL CHECK (rank >= 1),
    score           DOUBLE PRECISION NOT NULL
                    CHECK (score >= -1.000001 AND score <= 1.000001),  -- cosine
    model_version   TEXT             NOT NULL,
    generated_at    TIMESTAMPTZ      NOT NULL,
    CONSTRAINT similar_items_pkey PRIMARY KEY (item_id, rank)
);
-- Set once, as in 001_schema.sql: a DBA's own comment is kept.
DO $$
BEGIN
    IF obj_description('reco.similar_items'::regclass, 'pg_class') IS NULL THEN
        COMMENT ON TABLE reco.similar_items IS
            'Top-K similar items per item (rank 1 = most similar; score = cosine of the model''s item vectors: ALS item factors, or EASE co-occurrence).';
    END IF;
END
$$;
