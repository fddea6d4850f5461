-- Rollbacks (reco rollback, the rollback DAG) are attempts of their own in reco.model_runs,
-- published with an earlier run's lists: restored_from names that run (NULL for a trained
-- run). Added in place; the column is new, so the ALTER runs once per warehouse.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'reco.model_runs'::regclass
                     AND attname = 'restored_from' AND NOT attisdropped) THEN
        ALTER TABLE reco.model_runs ADD COLUMN restored_from TEXT;
    END IF;
END
$$;
SELECT reco.describe('column', 'reco.model_runs.restored_from',
    'For a rollback (run_id rollback__<UTC time>): the run whose published lists it published again; model_version, params and metrics are that run''s. NULL for a run that trained its model.');
