-- reco.spark_stages: replaced per run (idempotent on re-runs of the same run).

-- name: delete_run
DELETE FROM reco.spark_stages WHERE run_id = %(run_id)s;

-- name: insert
INSERT INTO reco.spark_stages (
    run_id, app_id, app_name, stage_id, attempt, step, phase, name, tasks,
    submitted_at, completed_at, seconds, failed, executor_run_ms, gc_ms,
    shuffle_read_bytes, shuffle_write_bytes, memory_spill_bytes, disk_spill_bytes,
    input_rows, output_rows)
VALUES (
    %(run_id)s, %(app_id)s, %(app_name)s, %(stage_id)s, %(attempt)s, %(step)s, %(phase)s,
    %(name)s, %(tasks)s,
    to_timestamp(%(submitted_ms)s / 1000.0), to_timestamp(%(completed_ms)s / 1000.0),
    %(seconds)s, %(failed)s, %(executor_run_ms)s, %(gc_ms)s,
    %(shuffle_read_bytes)s, %(shuffle_write_bytes)s, %(memory_spill_bytes)s,
    %(disk_spill_bytes)s, %(input_rows)s, %(output_rows)s);

-- name: slowest_for_run
SELECT step, phase, stage_id, name, tasks, seconds, executor_run_ms, gc_ms,
       shuffle_read_bytes, shuffle_write_bytes, memory_spill_bytes + disk_spill_bytes AS spill_bytes,
       input_rows, output_rows
FROM reco.spark_stages WHERE run_id = %(run_id)s
ORDER BY seconds DESC, stage_id LIMIT %(limit)s;
