-- name: delete_run
DELETE FROM reco.data_quality_runs WHERE run_id = %(run_id)s;

-- name: insert
INSERT INTO reco.data_quality_runs
    (run_id, suite, success, evaluated, failed, lines_read, n_accepted, n_rejected,
     quarantine_share, rejected_by_reason, quarantine_path, data_docs)
VALUES
    (%(run_id)s, %(suite)s, %(success)s, %(evaluated)s, %(failed)s::jsonb, %(lines_read)s,
     %(n_accepted)s, %(n_rejected)s, %(quarantine_share)s, %(rejected_by_reason)s::jsonb,
     %(quarantine_path)s, %(data_docs)s);

-- name: previous_accepted_rows
SELECT n_accepted
FROM reco.data_quality_runs
WHERE suite = 'ratings' AND success AND run_id <> %(run_id)s
ORDER BY checked_at DESC
LIMIT 1;
