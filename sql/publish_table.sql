-- Atomic replacement of one published table (reco.recommendations, reco.similar_items,
-- reco.popular_items). All of a publish runs as ONE transaction (the caller never commits
-- in between): a failure or a killed process anywhere rolls everything back, the live
-- tables stay as they were and no staging table is left behind.
--
-- reco/publishing/publish.py runs, per table: create_staging, COPY into {staging},
-- index_staging; then, once every table is loaded, the swap (reco/publishing/swap.py):
-- every lock it needs in one bounded wait (sql/publish_swap.sql), then swap for each
-- table, the views re-pointed (sql/090_contract.sql), drop_previous for each.
-- {table}, {staging}, {previous}, {key} are the code's own constants, never user input.

-- name: lock
-- Serialise publishers: a second run waits here instead of interleaving.
SELECT pg_advisory_xact_lock(%(lock_key)s);

-- name: create_staging
DROP TABLE IF EXISTS reco.{staging};
CREATE TABLE reco.{staging} (LIKE reco.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
-- Downstream readers (sql/060_roles.sql) keep their SELECT even if it was revoked from the
-- live table; every other grant is copied from the live table in the swap.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN
        GRANT SELECT ON reco.{staging} TO reco_reader;
    END IF;
END
$$;

-- name: index_staging
-- After the COPY: one bulk index build is several times faster than maintaining the
-- index row by row during the load; a duplicate key still fails the publish here.
ALTER TABLE reco.{staging} ADD CONSTRAINT {staging}_pkey PRIMARY KEY ({key});

-- name: swap
-- Runs with the table already locked ACCESS EXCLUSIVE (lock_for_swap in
-- sql/publish_swap.sql): readers keep reading the old table until the commit and wait
-- milliseconds for the renames, never during the COPY. The new table takes the owner,
-- grants and comments of the one it replaces (sql/080_table_metadata.sql), so a DBA's
-- direct GRANT or COMMENT survives every publish.
SELECT reco.copy_table_metadata('reco.{table}', 'reco.{staging}');
ALTER TABLE reco.{table} RENAME TO {previous};
ALTER TABLE reco.{previous} RENAME CONSTRAINT {table}_pkey TO {previous}_pkey;
ALTER TABLE reco.{staging} RENAME TO {table};
ALTER TABLE reco.{table} RENAME CONSTRAINT {staging}_pkey TO {table}_pkey;

-- name: drop_previous
-- After the views were re-pointed at the new table (they follow a renamed table).
DROP TABLE reco.{previous};
