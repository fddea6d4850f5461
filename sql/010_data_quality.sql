-- Data-quality outcome of every run: one row per suite (ratings, items, recommendations).
CREATE SCHEMA IF NOT EXISTS reco;

CREATE TABLE IF NOT EXISTS reco.data_quality_runs (
    run_id             TEXT             NOT NULL,
    suite              TEXT             NOT NULL,
    success            BOOLEAN          NOT NULL,
    evaluated          INTEGER          NOT NULL,  -- expectations evaluated
    failed             JSONB            NOT NULL DEFAULT '[]'::jsonb,  -- one line per failure
    lines_read         BIGINT,                     -- input suites: lines in the batch
    n_accepted         BIGINT,                     -- ... ratings kept
    n_rejected         BIGINT,                     -- ... lines quarantined (all reasons)
    quarantine_share   DOUBLE PRECISION,           -- malformed lines / lines read
    rejected_by_reason JSONB            NOT NULL DEFAULT '{}'::jsonb,
    quarantine_path    TEXT,                       -- Parquet with raw text + reason
    data_docs          TEXT,                       -- GX Data Docs index of the run
    checked_at         TIMESTAMPTZ      NOT NULL DEFAULT now(),
    CONSTRAINT data_quality_runs_pkey PRIMARY KEY (run_id, suite)
);
-- Our description, set once (a DBA's own comment is kept).
DO $$
BEGIN
    IF obj_description('reco.data_quality_runs'::regclass, 'pg_class') IS NULL THEN
        COMMENT ON TABLE reco.data_quality_runs IS
            'Great Expectations outcome per run and suite; failed lists each failed check with its observed value.';
    END IF;
END
$$;

-- Quarantine counts as rows: one per run, input (ratings or feedback) and reason code.
-- Created only when missing: re-creating a view takes ACCESS EXCLUSIVE on it, which would
-- make its readers queue behind every run's schema step.
DO $$
BEGIN
    IF to_regclass('reco.quarantine_reasons') IS NULL THEN
        CREATE VIEW reco.quarantine_reasons AS
        SELECT q.run_id, q.checked_at, r.key AS reason, r.value::bigint AS n_lines, q.suite
        FROM reco.data_quality_runs q, jsonb_each_text(q.rejected_by_reason) r
        WHERE q.suite IN ('ratings', 'feedback');
    END IF;
END
$$;
