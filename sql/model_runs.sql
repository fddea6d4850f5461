-- reco.model_runs bookkeeping: one row per attempt of a run.

-- name: insert
INSERT INTO reco.model_runs
    (run_id, attempt, model_version, dataset, input_format, params, metrics,
     n_ratings, n_users, n_items, status)
SELECT %(run_id)s,
       COALESCE(MAX(attempt), 0) + 1,
       %(model_version)s, %(dataset)s, %(input_format)s,
       %(params)s::jsonb, %(metrics)s::jsonb,
       %(n_ratings)s, %(n_users)s, %(n_items)s, 'publishing'
FROM reco.model_runs WHERE run_id = %(run_id)s
RETURNING attempt;

-- name: finish
UPDATE reco.model_runs
SET status = %(status)s, status_reason = %(reason)s, n_published = %(n_published)s,
    finished_at = now()
WHERE run_id = %(run_id)s AND attempt = %(attempt)s;

-- name: latest
SELECT run_id, attempt, model_version, status, status_reason, n_ratings, n_users, n_items,
       n_published, metrics, started_at, finished_at
FROM reco.model_runs
ORDER BY started_at DESC
LIMIT %(limit)s;

-- name: for_run
-- Every attempt of one run, the latest first (the report shows that one).
SELECT run_id, attempt, model_version, status, status_reason, n_ratings, n_users, n_items,
       n_published, metrics, started_at, finished_at
FROM reco.model_runs
WHERE run_id = %(run_id)s
ORDER BY attempt DESC;

-- name: champion
-- The configuration behind the recommendations readers see now.
SELECT model_version, params
FROM reco.model_runs
WHERE status = 'published'
ORDER BY finished_at DESC NULLS LAST
LIMIT 1;
