-- Atomic publish of reco.recommendations. Runs as ONE transaction (the caller never
-- commits in between): a failure or a killed process anywhere rolls everything back,
-- the live table stays as it was and no staging table is left behind.
--
-- Step names (-- name: ...) are executed in order by reco/publishing/publish.py; COPY of the new
-- rows into reco.recommendations_staging happens between "create_staging" and "swap".

-- name: lock
-- Serialise publishers: a second run waits here instead of interleaving.
SELECT pg_advisory_xact_lock(%(lock_key)s);

-- name: create_staging
DROP TABLE IF EXISTS reco.recommendations_staging;
CREATE TABLE reco.recommendations_staging
    (LIKE reco.recommendations INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
-- Downstream readers (sql/060_roles.sql) keep their SELECT even if it was revoked from the
-- live table; every other grant is copied from the live table in the swap.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN
        GRANT SELECT ON reco.recommendations_staging TO reco_reader;
    END IF;
END
$$;

-- name: index_staging
-- After the COPY: one bulk index build is several times faster than maintaining the
-- index row by row during the load; a duplicate (user, rank) still fails the publish here.
ALTER TABLE reco.recommendations_staging
    ADD CONSTRAINT recommendations_staging_pkey PRIMARY KEY (user_id, rank);

-- name: swap
-- Readers keep reading the old table until this commits; the lock is held for
-- milliseconds (two renames), never during the COPY. The new table takes the owner,
-- grants and comments of the one it replaces (sql/080_table_metadata.sql), so a DBA's
-- direct GRANT or COMMENT survives every publish.
LOCK TABLE reco.recommendations IN ACCESS EXCLUSIVE MODE;
SELECT reco.copy_table_metadata('reco.recommendations', 'reco.recommendations_staging');
ALTER TABLE reco.recommendations RENAME TO recommendations_previous;
ALTER TABLE reco.recommendations_previous
    RENAME CONSTRAINT recommendations_pkey TO recommendations_previous_pkey;
ALTER TABLE reco.recommendations_staging RENAME TO recommendations;
ALTER TABLE reco.recommendations
    RENAME CONSTRAINT recommendations_staging_pkey TO recommendations_pkey;
DROP TABLE reco.recommendations_previous;
