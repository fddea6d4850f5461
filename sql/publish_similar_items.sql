-- Atomic replacement of reco.similar_items, inside the same transaction as
-- publish_recommendations.sql (the caller runs create_staging, COPY, then swap).

-- name: create_staging
DROP TABLE IF EXISTS reco.similar_items_staging;
CREATE TABLE reco.similar_items_staging
    (LIKE reco.similar_items INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
-- Downstream readers (sql/060_roles.sql) keep their SELECT even if it was revoked from the
-- live table; every other grant is copied from the live table in the swap.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN
        GRANT SELECT ON reco.similar_items_staging TO reco_reader;
    END IF;
END
$$;

-- name: index_staging
-- After the COPY: one bulk index build is several times faster than maintaining the
-- index row by row during the load; a duplicate (user, rank) still fails the publish here.
ALTER TABLE reco.similar_items_staging
    ADD CONSTRAINT similar_items_staging_pkey PRIMARY KEY (item_id, rank);

-- name: swap
-- As for reco.recommendations: owner, grants and comments carry over to the new table.
LOCK TABLE reco.similar_items IN ACCESS EXCLUSIVE MODE;
SELECT reco.copy_table_metadata('reco.similar_items', 'reco.similar_items_staging');
ALTER TABLE reco.similar_items RENAME TO similar_items_previous;
ALTER TABLE reco.similar_items_previous
    RENAME CONSTRAINT similar_items_pkey TO similar_items_previous_pkey;
ALTER TABLE reco.similar_items_staging RENAME TO similar_items;
ALTER TABLE reco.similar_items
    RENAME CONSTRAINT similar_items_staging_pkey TO similar_items_pkey;
DROP TABLE reco.similar_items_previous;
