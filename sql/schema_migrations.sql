-- reco.schema_migrations: which of the numbered files in sql/ (NNN_name.sql) this warehouse
-- has had applied, and the text each had then. reco/publishing/migrations.py applies a file
-- when it is missing here or its text changed (every file is written so that applying it
-- again is harmless), records it, and refuses a warehouse that records a version newer than
-- the code's last file: that warehouse was upgraded by a newer release.

-- name: create
CREATE SCHEMA IF NOT EXISTS reco;
CREATE TABLE IF NOT EXISTS reco.schema_migrations (
    version    INTEGER     NOT NULL,
    name       TEXT        NOT NULL,
    checksum   TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_by TEXT        NOT NULL DEFAULT current_user,
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (version)
);
DO $$
BEGIN
    IF obj_description('reco.schema_migrations'::regclass, 'pg_class') IS NULL THEN
        COMMENT ON TABLE reco.schema_migrations IS
            'The warehouse''s schema version: one row per numbered file of sql/ applied to it (the version is the file''s number). The highest version is the schema''s; code that knows fewer versions refuses this warehouse. Written by reco db upgrade and at the start of every run.';
        COMMENT ON COLUMN reco.schema_migrations.version IS
            'The file''s number: sql/NNN_name.sql is version NNN.';
        COMMENT ON COLUMN reco.schema_migrations.name IS 'The file''s name, e.g. 001_schema.sql.';
        COMMENT ON COLUMN reco.schema_migrations.checksum IS
            'SHA-256 of the file''s text when last applied: a release that changes the file applies it again.';
        COMMENT ON COLUMN reco.schema_migrations.applied_at IS 'When the file was last applied.';
        COMMENT ON COLUMN reco.schema_migrations.applied_by IS 'The database role that applied it.';
    END IF;
END
$$;

-- name: applied
SELECT version, name, checksum, applied_at FROM reco.schema_migrations ORDER BY version;

-- name: record
INSERT INTO reco.schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s)
ON CONFLICT (version) DO UPDATE
SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, applied_at = now(),
    applied_by = current_user;
