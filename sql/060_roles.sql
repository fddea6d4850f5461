-- Least privilege for downstream readers: the NOLOGIN group role reco_reader may SELECT the
-- published tables (reco.recommendations, reco.similar_items, reco.items) and nothing else.
-- Give an application its own login and make it a member:
--     CREATE ROLE shop_app LOGIN PASSWORD '...' IN ROLE reco_reader;
-- The publish swap re-grants SELECT on the freshly swapped tables (publish_table.sql), so
-- membership keeps working across runs; grants made directly on the tables are carried over
-- too (sql/080_table_metadata.sql), but the group is the one place to see who reads.
-- Creating the role needs CREATEROLE; without it a DBA runs this file once (a NOTICE says so).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN
        BEGIN
            CREATE ROLE reco_reader NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'reco_reader role not created (needs CREATEROLE): run sql/060_roles.sql as a DBA';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN
        GRANT USAGE ON SCHEMA reco TO reco_reader;
        GRANT SELECT ON reco.recommendations, reco.similar_items, reco.popular_items, reco.items
            TO reco_reader;
    END IF;
END
$$;
