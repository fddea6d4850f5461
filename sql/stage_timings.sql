-- reco.stage_timings: replaced per run (idempotent on re-runs of the same run).

-- name: delete_run
DELETE FROM reco.stage_timings WHERE run_id = %(run_id)s;

-- name: insert
INSERT INTO reco.stage_timings (run_id, stage, phase, started_at, finished_at, seconds, details)
VALUES (%(run_id)s, %(stage)s, %(phase)s, %(started_at)s, %(finished_at)s, %(seconds)s,
        %(details)s::jsonb);

-- name: for_run
SELECT stage, phase, started_at, finished_at, seconds, details
FROM reco.stage_timings WHERE run_id = %(run_id)s
ORDER BY started_at, stage, phase;
