-- Warehouse schema of the recommendation pipeline. Applied idempotently on every run.
CREATE SCHEMA IF NOT EXISTS reco;

-- Published per-user top-N affinity scores. Replaced as a whole by an atomic swap
-- (see publish_table.sql): readers see the previous set or the new one, never a mix.
CREATE TABLE IF NOT EXISTS reco.recommendations (
    user_id       BIGINT           NOT NULL,
    item_id       BIGINT           NOT NULL,
    rank          SMALLINT         NOT NULL CHECK (rank >= 1),
    score         DOUBLE PRECISION NOT NULL
                  CHECK (score <> 'NaN'::float8 AND score > '-Infinity'::float8
                         AND score < 'Infinity'::float8),
    model_version TEXT             NOT NULL,
    generated_at  TIMESTAMPTZ      NOT NULL,
    CONSTRAINT recommendations_pkey PRIMARY KEY (user_id, rank)
);
-- The reason for each row: the user's liked item closest to the recommended one (cosine of
-- the model's item vectors). Added in place on warehouses created before the reasons, and
-- only then: ALTER TABLE locks out readers even when the column exists.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'reco.recommendations'::regclass
                     AND attname = 'because_item_id' AND NOT attisdropped) THEN
        ALTER TABLE reco.recommendations
            ADD COLUMN because_item_id BIGINT,
            ADD COLUMN because_score   DOUBLE PRECISION;
    END IF;
END
$$;
-- Our description, set once: a comment a DBA puts there instead is kept (by this file on
-- every run, and by the publish swap, sql/080_table_metadata.sql).
DO $$
BEGIN
    IF obj_description('reco.recommendations'::regclass, 'pg_class') IS NULL THEN
        COMMENT ON TABLE reco.recommendations IS
            'Per-user top-N recommendations (rank 1 = best). Replaced atomically by each published run.';
    END IF;
END
$$;

-- Item titles so downstream SQL can show names.
CREATE TABLE IF NOT EXISTS reco.items (
    item_id    BIGINT PRIMARY KEY,
    title      TEXT,
    genres     TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per training run: parameters, metrics, data volume and outcome.
CREATE TABLE IF NOT EXISTS reco.model_runs (
    run_id        TEXT        NOT NULL,
    attempt       INTEGER     NOT NULL DEFAULT 1,
    model_version TEXT        NOT NULL,
    dataset       TEXT,
    input_format  TEXT,
    params        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    metrics       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    n_ratings     BIGINT,
    n_users       BIGINT,
    n_items       BIGINT,
    n_published   BIGINT,
    status        TEXT        NOT NULL,
    status_reason TEXT,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    CONSTRAINT model_runs_pkey PRIMARY KEY (run_id, attempt)
);

-- One row per stage (and sub-phase) per run.
CREATE TABLE IF NOT EXISTS reco.stage_timings (
    run_id      TEXT             NOT NULL,
    stage       TEXT             NOT NULL,
    phase       TEXT             NOT NULL DEFAULT '',
    started_at  TIMESTAMPTZ      NOT NULL,
    finished_at TIMESTAMPTZ      NOT NULL,
    seconds     DOUBLE PRECISION NOT NULL,
    details     JSONB            NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT stage_timings_pkey PRIMARY KEY (run_id, stage, phase)
);
