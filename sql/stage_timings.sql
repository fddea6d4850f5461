-- reco.stage_timings: replaced per run (idempotent on re-runs of the same run). Rows with
-- phase 'airflow_task' are Airflow's own task times, written when the run ends
-- (reco/reporting/task_timings.py); the phase timings are reloaded without touching them.

-- name: lock_run
-- Serialises the loads of one run's timings (held until the transaction ends).
SELECT pg_advisory_xact_lock(hashtext('reco.stage_timings:' || %(run_id)s));

-- name: delete_run
DELETE FROM reco.stage_timings WHERE run_id = %(run_id)s AND phase <> 'airflow_task';

-- name: insert
INSERT INTO reco.stage_timings (run_id, stage, phase, started_at, finished_at, seconds, details)
VALUES (%(run_id)s, %(stage)s, %(phase)s, %(started_at)s, %(finished_at)s, %(seconds)s,
        %(details)s::jsonb);

-- name: upsert
INSERT INTO reco.stage_timings (run_id, stage, phase, started_at, finished_at, seconds, details)
VALUES (%(run_id)s, %(stage)s, %(phase)s, %(started_at)s, %(finished_at)s, %(seconds)s,
        %(details)s::jsonb)
ON CONFLICT (run_id, stage, phase) DO UPDATE
SET started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    seconds = EXCLUDED.seconds, details = EXCLUDED.details;

-- name: for_run
SELECT stage, phase, started_at, finished_at, seconds, details
FROM reco.stage_timings WHERE run_id = %(run_id)s
ORDER BY started_at, stage, phase;

-- name: history
-- Average and p90 seconds per stage over the last %(n)s runs, in pipeline order.
WITH runs AS (
    SELECT run_id, min(started_at) AS run_start
    FROM reco.stage_timings GROUP BY run_id
    ORDER BY run_start DESC LIMIT %(n)s
)
SELECT t.stage,
       count(*)                                                AS runs,
       avg(t.seconds)                                          AS avg_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY t.seconds)  AS p90_s,
       max(t.seconds)                                          AS max_s
FROM reco.stage_timings t JOIN runs USING (run_id)
WHERE t.phase = 'total'
GROUP BY t.stage
ORDER BY avg(extract(epoch FROM t.started_at - runs.run_start));

-- name: trends
-- One row per run (the last %(n)s, oldest first): wall time, data volume, model quality,
-- and the dataset and CV folds a headline compares like with like on.
WITH wall AS (
    SELECT run_id, min(started_at) AS run_start,
           extract(epoch FROM max(finished_at) - min(started_at)) AS wall_s
    FROM reco.stage_timings GROUP BY run_id
    ORDER BY run_start DESC LIMIT %(n)s
), latest AS (
    SELECT DISTINCT ON (run_id) run_id, n_ratings, metrics, status, dataset
    FROM reco.model_runs ORDER BY run_id, attempt DESC
)
SELECT w.run_id, w.run_start, w.wall_s, l.n_ratings, l.status, l.dataset,
       (l.metrics->'cv'->>'folds')::integer        AS cv_folds,
       (l.metrics->>'rmse')::double precision      AS rmse,
       (l.metrics->>'ndcg_at_k')::double precision AS ndcg
FROM wall w LEFT JOIN latest l USING (run_id)
ORDER BY w.run_start;

-- name: stage_trends
-- Each stage's seconds inside the job (phase 'total') in each of the last %(n)s runs (the
-- runs of 'trends'), oldest run first; offset_s (its start within the run) gives pipeline
-- order. A run without 'total' rows is one row with stage NULL, so runs line up with 'trends'.
WITH runs AS (
    SELECT run_id, min(started_at) AS run_start
    FROM reco.stage_timings GROUP BY run_id
    ORDER BY run_start DESC LIMIT %(n)s
)
SELECT runs.run_id, runs.run_start, t.stage, t.seconds,
       extract(epoch FROM t.started_at - runs.run_start)::double precision AS offset_s
FROM runs LEFT JOIN reco.stage_timings t
    ON t.run_id = runs.run_id AND t.phase = 'total'
ORDER BY runs.run_start, runs.run_id, t.started_at, t.stage;
