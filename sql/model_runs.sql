-- reco.model_runs bookkeeping: one row per attempt of a run. The statuses written here are
-- bound parameters, defined once in reco/publishing/publish.py (PUBLISHING, ABANDONED, ...).
--
-- Liveness of an attempt at 'publishing': its publisher holds a session-level advisory lock
-- keyed (publish.ATTEMPT_LOCK_CLASS, hashtext(run_id || ':' || attempt)) on a connection of
-- its own, from "insert" until it records the outcome. PostgreSQL releases that lock when
-- the process dies or its connection is lost, whichever host it ran on, so "is its process
-- gone?" is "can this lock be taken?". The key expression is the same in hold_attempt and
-- mark_abandoned.

-- name: attempt_session
-- The lock connection sits idle for the whole publish: a server-side idle timeout must not
-- end it (that would read as a dead publisher), and a host that vanishes without closing its
-- TCP connection is noticed within about a minute instead of the OS's two hours.
-- (Settings a server does not know, such as idle_session_timeout before PostgreSQL 14, are
-- skipped; on a Unix socket the keepalives do nothing and are not needed.)
SELECT set_config(name, value, false)
FROM (VALUES ('idle_session_timeout', '0'), ('tcp_keepalives_idle', '30'),
             ('tcp_keepalives_interval', '10'), ('tcp_keepalives_count', '3')) AS s (name, value)
WHERE name IN (SELECT name FROM pg_settings);

-- name: mark_abandoned
-- Attempts still at 'publishing' whose publisher is gone: nobody holds their lock. The
-- transaction-level try-lock is let go at this commit; an attempt whose lock is held (a live
-- publisher, here or on another host) is skipped.
UPDATE reco.model_runs
SET status = %(abandoned)s,
    status_reason = 'found abandoned at ' || now()::text || ' by ' || %(found_by)s::text
        || ': no process held this attempt''s publish lock, so its publisher ended (killed, '
        || 'crashed, host lost) or lost its connection before recording an outcome',
    finished_at = now()
WHERE status = %(publishing)s
  AND pg_try_advisory_xact_lock(%(lock_class)s, hashtext(run_id || ':' || attempt))
RETURNING run_id, attempt;

-- name: insert
INSERT INTO reco.model_runs
    (run_id, attempt, model_version, dataset, input_format, params, metrics,
     n_ratings, n_users, n_items, status)
SELECT %(run_id)s,
       COALESCE(MAX(attempt), 0) + 1,
       %(model_version)s, %(dataset)s, %(input_format)s,
       %(params)s::jsonb, %(metrics)s::jsonb,
       %(n_ratings)s, %(n_users)s, %(n_items)s, %(publishing)s
FROM reco.model_runs WHERE run_id = %(run_id)s
RETURNING attempt;

-- name: hold_attempt
-- In the transaction of "insert", on the lock connection: the new row becomes visible only
-- with its lock already held. Session-level, so it outlives that commit.
SELECT pg_advisory_lock(%(lock_class)s, hashtext(%(run_id)s::text || ':' || %(attempt)s::int));

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

-- name: rejected_in_a_row
-- How many of the latest outcomes, newest first, are rejections (failed and abandoned
-- attempts neither break nor extend the streak: they published nothing either way).
SELECT count(*)
FROM (
    SELECT status,
           count(*) FILTER (WHERE status = %(published)s)
               OVER (ORDER BY started_at DESC ROWS UNBOUNDED PRECEDING) AS published_since
    FROM reco.model_runs
    WHERE status IN (%(published)s, %(rejected)s)
) outcomes
WHERE status = %(rejected)s AND published_since = 0;

-- name: published_at
-- The version readers see now, and when it was published.
SELECT model_version, finished_at
FROM reco.model_runs
WHERE status = %(published)s
ORDER BY finished_at DESC NULLS LAST
LIMIT 1;

-- name: published_history
-- Every published attempt, the one readers see now first, with the run whose folder holds
-- its lists: the run itself, or for a rollback the run it restored (restored_from).
SELECT run_id, model_version, COALESCE(restored_from, run_id) AS source_run, finished_at
FROM reco.model_runs
WHERE status = %(published)s
ORDER BY finished_at DESC NULLS LAST, started_at DESC;

-- name: mark_restored
-- A rollback's attempt: which run's lists it publishes again.
UPDATE reco.model_runs SET restored_from = %(source)s
WHERE run_id = %(run_id)s AND attempt = %(attempt)s;
