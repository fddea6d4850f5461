-- The fallback lists: the most-rated items of the published batch, overall (genre '') and
-- per genre. Served by reco.recommend() to users without a personalised list; replaced
-- atomically together with reco.recommendations by each published run.
CREATE SCHEMA IF NOT EXISTS reco;

CREATE TABLE IF NOT EXISTS reco.popular_items (
    genre         TEXT             NOT NULL,
    rank          SMALLINT         NOT NULL CHECK (rank >= 1),
    item_id       BIGINT           NOT NULL,
    score         DOUBLE PRECISION NOT NULL CHECK (score >= 0),
    model_version TEXT             NOT NULL,
    generated_at  TIMESTAMPTZ      NOT NULL,
    CONSTRAINT popular_items_pkey PRIMARY KEY (genre, rank)
);
