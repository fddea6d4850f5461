-- Spark's own metrics per completed stage, read from the Spark event log of each step
-- (reco/reporting/eventlog.py). `step`/`phase` match reco.stage_timings; per-phase sums are
-- also in reco.stage_timings.details->'spark'.
CREATE TABLE IF NOT EXISTS reco.spark_stages (
    run_id              TEXT             NOT NULL,
    app_id              TEXT             NOT NULL,
    app_name            TEXT             NOT NULL DEFAULT '',
    stage_id            INTEGER          NOT NULL,
    attempt             INTEGER          NOT NULL DEFAULT 0,
    step                TEXT             NOT NULL DEFAULT '',
    phase               TEXT             NOT NULL DEFAULT '',
    name                TEXT             NOT NULL DEFAULT '',
    tasks               INTEGER          NOT NULL,
    submitted_at        TIMESTAMPTZ,
    completed_at        TIMESTAMPTZ,
    seconds             DOUBLE PRECISION NOT NULL,
    failed              BOOLEAN          NOT NULL DEFAULT false,
    executor_run_ms     BIGINT           NOT NULL DEFAULT 0,
    gc_ms               BIGINT           NOT NULL DEFAULT 0,
    shuffle_read_bytes  BIGINT           NOT NULL DEFAULT 0,
    shuffle_write_bytes BIGINT           NOT NULL DEFAULT 0,
    memory_spill_bytes  BIGINT           NOT NULL DEFAULT 0,
    disk_spill_bytes    BIGINT           NOT NULL DEFAULT 0,
    input_rows          BIGINT           NOT NULL DEFAULT 0,
    output_rows         BIGINT           NOT NULL DEFAULT 0,
    CONSTRAINT spark_stages_pkey PRIMARY KEY (run_id, app_id, stage_id, attempt)
);
