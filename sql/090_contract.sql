-- The SQL contract for applications: versioned views and reco.recommend(). Apps read these,
-- never the physical tables, which each publish replaces and a future change may reshape.
-- A v1 view keeps its columns and types for good (tests/integration/test_sql_contract.py
-- fails on any change); a change ships as a new version (v2_...) beside it.
--
-- Views follow a table that is renamed, so the publish swap calls
-- reco.define_contract_views() after renaming the new tables into place
-- (sql/publish_table.sql), before dropping the old ones; it also calls it first, to lock
-- the views before the tables, in the order readers lock them (sql/publish_swap.sql).
CREATE SCHEMA IF NOT EXISTS reco;

-- The views are defined in a function run as its owner (the role that applies this schema,
-- who owns the views), so a publisher that is not that role can still re-point them in the
-- swap. It only ever (re)creates these fixed views, and only for a caller that may publish:
-- the owner of the published tables or a member of that role (as 080 requires).
CREATE OR REPLACE FUNCTION reco.define_contract_views()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tables_owner oid := (SELECT relowner FROM pg_class WHERE oid = 'reco.recommendations'::regclass);
BEGIN
    IF NOT pg_has_role(session_user, tables_owner, 'MEMBER') THEN
        RAISE EXCEPTION 'only the owner of reco.recommendations (%) or a member may re-point the contract views; % is neither',
            pg_get_userbyid(tables_owner), session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    CREATE OR REPLACE VIEW reco.v1_recommendations AS
    SELECT r.user_id,
           r.rank::integer AS rank,
           r.item_id,
           i.title,
           r.score,
           r.because_item_id,
           b.title AS because_title,
           r.because_score,
           r.model_version,
           r.generated_at
    FROM reco.recommendations r
    LEFT JOIN reco.items i ON i.item_id = r.item_id
    LEFT JOIN reco.items b ON b.item_id = r.because_item_id;

    CREATE OR REPLACE VIEW reco.v1_similar_items AS
    SELECT s.item_id,
           i.title,
           s.rank::integer AS rank,
           s.similar_item_id,
           j.title AS similar_title,
           s.score,
           s.model_version,
           s.generated_at
    FROM reco.similar_items s
    LEFT JOIN reco.items i ON i.item_id = s.item_id
    LEFT JOIN reco.items j ON j.item_id = s.similar_item_id;

    CREATE OR REPLACE VIEW reco.v1_popular_items AS
    SELECT p.genre,
           p.rank::integer AS rank,
           p.item_id,
           i.title,
           p.score,
           p.model_version,
           p.generated_at
    FROM reco.popular_items p
    LEFT JOIN reco.items i ON i.item_id = p.item_id;
END
$fn$;
-- Only when one is missing: a v1 view never changes, and re-creating it here on every run
-- would queue behind, and then block, its readers.
DO $$
BEGIN
    IF to_regclass('reco.v1_recommendations') IS NULL
       OR to_regclass('reco.v1_similar_items') IS NULL
       OR to_regclass('reco.v1_popular_items') IS NULL THEN
        PERFORM reco.define_contract_views();
    END IF;
END
$$;

-- A user's list, never empty while a model is published: the personalised rows when the
-- last published batch had the user, else the overall popular list. p_exclude: items the
-- app knows the user has seen since that batch (left out of either list; a user whose whole
-- list is excluded gets the popular list). Ranks count 1..n over the rows returned; n
-- beyond the list returns the whole list.
CREATE OR REPLACE FUNCTION reco.recommend(
    p_user_id bigint, p_n integer DEFAULT 10, p_exclude bigint[] DEFAULT '{}'
)
RETURNS TABLE (
    rank integer,
    item_id bigint,
    title text,
    score double precision,
    source text,
    because_item_id bigint,
    because_title text,
    because_score double precision,
    model_version text
)
LANGUAGE sql STABLE
AS $fn$
    WITH personal AS (
        SELECT r.rank AS k, r.item_id, r.title, r.score, 'personalised'::text AS source,
               r.because_item_id, r.because_title, r.because_score, r.model_version
        FROM reco.v1_recommendations r
        WHERE r.user_id = p_user_id
          AND r.item_id <> ALL (coalesce(p_exclude, '{}'::bigint[]))
    ), fallback AS (
        SELECT p.rank AS k, p.item_id, p.title, p.score, 'popular'::text AS source,
               NULL::bigint, NULL::text, NULL::double precision, p.model_version
        FROM reco.v1_popular_items p
        WHERE p.genre = ''
          AND p.item_id <> ALL (coalesce(p_exclude, '{}'::bigint[]))
          AND NOT EXISTS (SELECT 1 FROM personal)
    ), listed AS (
        SELECT * FROM personal
        UNION ALL
        SELECT * FROM fallback
    )
    SELECT (row_number() OVER (ORDER BY l.k))::integer, l.item_id, l.title, l.score, l.source,
           l.because_item_id, l.because_title, l.because_score, l.model_version
    FROM listed l
    ORDER BY l.k
    LIMIT p_n
$fn$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN
        GRANT SELECT ON reco.v1_recommendations, reco.v1_similar_items, reco.v1_popular_items
            TO reco_reader;
        GRANT EXECUTE ON FUNCTION reco.recommend(bigint, integer, bigint[]) TO reco_reader;
    END IF;
END
$$;
