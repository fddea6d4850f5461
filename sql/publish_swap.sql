-- The swap of a publish under live readers (reco/publishing/swap.py), inside the publish's
-- transaction, after every staging table is loaded.
--
-- Why it cannot deadlock with a reader. A view binds to its tables by identity, not by
-- name: after `ALTER TABLE reco.recommendations RENAME TO ...` the v1 views still read
-- the old table, and dropping it would fail on them. So the swap must re-point the views
-- (CREATE OR REPLACE VIEW), which takes ACCESS EXCLUSIVE on each view. A reader takes its
-- locks in the order it meets the relations: the views it names, then the tables under
-- them (reco.recommend() too: v1_recommendations, v1_popular_items, then their tables).
-- The swap used to lock the tables first and the views last, the reverse: a reader
-- holding a view and waiting for its table, and the swap holding the table and waiting
-- for the view, was a deadlock, and PostgreSQL killed one of them.
--
-- Now the swap takes every lock up front, in one statement, in the readers' order: the
-- three views (by re-creating them as they are: CREATE OR REPLACE VIEW locks the view
-- alone, where LOCK TABLE on a view would also lock reco.items, which every view reads),
-- then the tables. That statement may wait at most the swap's lock timeout in all, which
-- is kept below the server's deadlock_timeout: in any lock cycle with a reader, however
-- that reader orders its locks, the swap gives up first and the reader goes on. A swap
-- that gave up rolls back to its savepoint, releasing those locks (the loaded staging
-- tables are kept), and is tried again.
-- {tables} is the code's own list of live tables, never user input.

-- name: lock_for_swap
DO $$
BEGIN
    PERFORM reco.define_contract_views();
    LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE;
END
$$;

-- name: deadlock_timeout
SELECT setting::integer FROM pg_settings WHERE name = 'deadlock_timeout';

-- name: holders
-- The sessions other than this one holding a lock on any of the given relations: each
-- such lock keeps the swap's ACCESS EXCLUSIVE waiting. Their transaction's age (NULL when
-- this login may not see it, e.g. another role's session without pg_read_all_stats), state
-- and last query, for the decision to wait and for the message naming them.
SELECT a.pid,
       coalesce(a.usename::text, '?') AS usename,
       coalesce(nullif(a.application_name, ''), '?') AS application,
       coalesce(host(a.client_addr), 'local socket') AS client,
       coalesce(a.state, '?') AS state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::double precision AS xact_age_s,
       coalesce(left(regexp_replace(a.query, '\s+', ' ', 'g'), 300), '?') AS query,
       string_agg(DISTINCT l.relation::regclass::text, ', ') AS relations
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation = ANY (%(relations)s::regclass[])
  AND l.pid <> pg_backend_pid()
GROUP BY a.pid, a.usename, a.application_name, a.client_addr, a.state, a.xact_start, a.query
ORDER BY a.xact_start NULLS LAST, a.pid;

-- name: terminate
-- Only with RECO_PUBLISH_TERMINATE_BLOCKERS: end a session that held the swap past its
-- budget (needs the same role, pg_signal_backend, or a superuser).
SELECT pg_terminate_backend(%(pid)s);
