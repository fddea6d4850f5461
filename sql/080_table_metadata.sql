-- What a replaced table keeps: the publish swaps (publish_table.sql) install a freshly built
-- table under the live name, so without this a DBA's direct GRANT, an owner set with
-- ALTER TABLE ... OWNER TO, or a COMMENT would silently vanish at the next publish.
--
-- reco.copy_table_metadata(src, dst) gives dst what src has: its owner, every privilege
-- entry (table and column level, PUBLIC and WITH GRANT OPTION included), the table comment
-- and the comments of the columns both tables have. A grant made by a role other than the
-- owner (owner -> A WITH GRANT OPTION -> B) is made again by that role when the publisher
-- may act as it, else by the owner, with a NOTICE. Runs as the caller (no SECURITY
-- DEFINER): it grants nothing the publisher could not grant itself.
--
-- The owner is set FIRST: grants on a table its final owner already holds are recorded as
-- made by that owner, and a grant to the publisher itself survives (ALTER TABLE ... OWNER
-- TO afterwards would fold it into the owner's entry).
CREATE SCHEMA IF NOT EXISTS reco;

-- The privilege entries of src (the owner's own implicit entry aside) that dst lacks, each
-- with the GRANT statement that gives it to dst.
CREATE OR REPLACE FUNCTION reco.missing_grants(src regclass, dst regclass)
RETURNS TABLE (grantor oid, grantee oid, privilege_type text, attname name, grant_sql text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp  -- regclass text is always schema-qualified here
AS $fn$
    WITH src_acl AS (
        SELECT NULL::name AS attname, a.*
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = src AND a.grantee <> c.relowner
        UNION ALL
        SELECT t.attname, a.*
        FROM pg_class c
        JOIN pg_attribute t ON t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped
        JOIN pg_attribute d ON d.attrelid = dst AND d.attname = t.attname AND NOT d.attisdropped
        CROSS JOIN aclexplode(t.attacl) a
        WHERE c.oid = src AND a.grantee <> c.relowner
    ), dst_acl AS (
        SELECT NULL::name AS attname, a.*
        FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = dst
        UNION ALL
        SELECT t.attname, a.*
        FROM pg_attribute t, aclexplode(t.attacl) a
        WHERE t.attrelid = dst AND t.attnum > 0 AND NOT t.attisdropped
    ), missing AS (
        SELECT * FROM src_acl EXCEPT SELECT * FROM dst_acl
    )
    SELECT m.grantor, m.grantee, m.privilege_type, m.attname,
           format('GRANT %s%s ON TABLE %s TO %s%s',
                  m.privilege_type,
                  CASE WHEN m.attname IS NULL THEN '' ELSE format(' (%I)', m.attname) END,
                  dst,
                  CASE WHEN m.grantee = 0 THEN 'PUBLIC'
                       ELSE quote_ident(pg_get_userbyid(m.grantee)) END,
                  CASE WHEN m.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM missing m
$fn$;

CREATE OR REPLACE FUNCTION reco.copy_table_metadata(src regclass, dst regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp  -- regclass text is always schema-qualified here
AS $fn$
DECLARE
    src_owner oid := (SELECT relowner FROM pg_class WHERE oid = src);
    owner_name text := pg_get_userbyid(src_owner);
    caller_role text := current_setting('role');
    before integer;
    after integer;
    e record;
BEGIN
    -- 1. The owner (a no-op when the publisher owns the live table, the usual case).
    IF (SELECT relowner FROM pg_class WHERE oid = dst) <> src_owner THEN
        BEGIN
            EXECUTE format('ALTER TABLE %s OWNER TO %I', dst, owner_name);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION '% is owned by role %, but % (the publisher) may not make % the owner of the table that replaces it (%): nothing was published',
                    src, owner_name, current_user, owner_name, SQLERRM
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('Publish as %1$I or a member of it, and give %1$I CREATE on '
                                    'the schema; or make the publisher the owner: ALTER TABLE '
                                    '%2$s OWNER TO %3$I.', owner_name, src, current_user);
        END;
    END IF;

    -- 2. Privileges. The owner's grants first; a grant by another role needs that role to
    -- hold the grant option on dst first, so chains take one pass per link. What no pass
    -- could give is granted by the owner.
    LOOP
        before := (SELECT count(*) FROM reco.missing_grants(src, dst));
        EXIT WHEN before = 0;
        FOR e IN SELECT * FROM reco.missing_grants(src, dst) m ORDER BY m.grantor <> src_owner
        LOOP
            IF e.grantor = src_owner THEN
                EXECUTE e.grant_sql;
            ELSE
                BEGIN
                    PERFORM set_config('role', pg_get_userbyid(e.grantor), true);
                    EXECUTE e.grant_sql;  -- a WARNING, no error, while it lacks the option
                    PERFORM set_config('role', caller_role, true);
                EXCEPTION WHEN insufficient_privilege OR invalid_parameter_value THEN
                    NULL;  -- the publisher may not act as that role (the role is restored)
                END;
            END IF;
        END LOOP;
        after := (SELECT count(*) FROM reco.missing_grants(src, dst));
        EXIT WHEN after >= before;
    END LOOP;
    FOR e IN SELECT * FROM reco.missing_grants(src, dst) LOOP
        RAISE NOTICE '% on % to %: granted by %, who cannot grant it again here; granted by the owner, %, instead',
            e.privilege_type, src,
            CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee) END,
            pg_get_userbyid(e.grantor), owner_name;
        EXECUTE e.grant_sql;
    END LOOP;

    -- 3. Comments: the table's, and each column's by name.
    EXECUTE format('COMMENT ON TABLE %s IS %L', dst, obj_description(src, 'pg_class'));
    FOR e IN
        SELECT s.attname, col_description(src, s.attnum) AS description
        FROM pg_attribute s
        JOIN pg_attribute d ON d.attrelid = dst AND d.attname = s.attname AND NOT d.attisdropped
        WHERE s.attrelid = src AND s.attnum > 0 AND NOT s.attisdropped
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', dst, e.attname, e.description);
    END LOOP;
END
$fn$;
