-- Item titles: merged into reco.items inside the publish transaction.

-- name: create_temp
CREATE TEMP TABLE items_incoming (item_id BIGINT, title TEXT, genres TEXT) ON COMMIT DROP;

-- name: merge
INSERT INTO reco.items AS i (item_id, title, genres, updated_at)
SELECT DISTINCT ON (item_id) item_id, title, genres, now()
FROM items_incoming
ORDER BY item_id
ON CONFLICT (item_id) DO UPDATE
    SET title = EXCLUDED.title, genres = EXCLUDED.genres, updated_at = now()
    WHERE (i.title, i.genres) IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.genres);
