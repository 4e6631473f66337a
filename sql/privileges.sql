-- The privilege model (docs/privileges.md): who is calling (src/privileges.rs), the four levels
-- and the check every function makes. What each level is granted is in grants.sql (loaded last).

-- The role that called a SECURITY DEFINER function (SET ROLE counts), by name.
CREATE FUNCTION credit._caller() RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = credit._calling_user());

-- The privilege model (docs/privileges.md): four levels, each a role the DBA creates, each with
-- the rights of the levels below it. credit.grant_privileges() grants them and records the roles
-- here; functions that change limits, holds, grades, collections or guards then also check that
-- their caller is a member of the level's role (or a higher one), so an EXECUTE granted too
-- widely by hand does not open them.
CREATE TABLE credit.access_role (
    level  text PRIMARY KEY CHECK (level IN ('reader', 'clerk', 'manager', 'admin')),
    role   name NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('credit.access_role', '');

-- Logins of applications that connect through one pooled role and name the person they act for
-- (credit.act_for): four eyes and every level check then count that person. Admin-managed.
CREATE TABLE credit.trusted_proxy (
    role   name PRIMARY KEY,
    note   text
);
SELECT pg_catalog.pg_extension_config_dump('credit.trusted_proxy', '');

CREATE FUNCTION credit._level_rank(level text) RETURNS int
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN array_position(ARRAY['reader', 'clerk', 'manager', 'admin'], level);

-- Raises 42501 unless the caller (the user outside any SECURITY DEFINER function) is a superuser
-- or a member of the role of this level or a higher one. Before grant_privileges has recorded
-- any role, EXECUTE alone decides.
CREATE FUNCTION credit._require(level text, action text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller oid := credit._calling_user();
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = caller) OR NOT EXISTS (SELECT 1 FROM credit.access_role) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM credit.access_role a JOIN pg_roles r ON r.rolname = a.role
                WHERE credit._level_rank(a.level) >= credit._level_rank(_require.level)
                  AND pg_has_role(caller, r.oid, 'MEMBER')) THEN
        RETURN;
    END IF;
    RAISE EXCEPTION '% needs the % level', action, level USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Role "%s" is not a member of %s.', (SELECT r.rolname FROM pg_roles r WHERE r.oid = caller),
                        (SELECT string_agg(format('"%s"', a.role), ' or ' ORDER BY credit._level_rank(a.level))
                           FROM credit.access_role a WHERE credit._level_rank(a.level) >= credit._level_rank(_require.level))),
        HINT = 'credit.access_role lists the roles of each level (docs/privileges.md).';
END
$$;

COMMENT ON FUNCTION credit._is_admin() IS 'Internal: whether the caller is a credit admin';
COMMENT ON FUNCTION credit._is_superuser() IS 'Internal: whether the caller is a superuser';
COMMENT ON FUNCTION credit._calling_user() IS 'Internal: the user that called a SECURITY DEFINER function';
COMMENT ON TABLE credit.trusted_proxy IS 'Pooled application logins that may name the person they act for (credit.act_for); admin-managed';
COMMENT ON COLUMN credit.trusted_proxy.role IS 'The login (session user) of the application';
COMMENT ON COLUMN credit.trusted_proxy.note IS 'Free text: which application, who vouches for it';
COMMENT ON TABLE credit.access_role IS 'The role of each privilege level (reader, clerk, manager, admin), recorded by credit.grant_privileges; functions that change things check membership';
COMMENT ON COLUMN credit.access_role.level IS 'reader, clerk, manager or admin';
COMMENT ON COLUMN credit.access_role.role IS 'The role holding the level (members of a higher level''s role pass too)';
COMMENT ON FUNCTION credit._level_rank(text) IS 'Internal: order of the privilege levels';
COMMENT ON FUNCTION credit._require(text, text) IS 'Internal: 42501 unless the caller holds the privilege level';
COMMENT ON FUNCTION credit._caller() IS 'Internal: name of the role that called a SECURITY DEFINER function';
COMMENT ON FUNCTION credit._person() IS 'Internal: the person behind the call (the login, or the person a trusted proxy named)';
COMMENT ON FUNCTION credit._require_member(text, text) IS 'Internal: 42501 unless the person behind the call is a member of the role (superusers pass; a missing role is named)';
COMMENT ON FUNCTION credit._internal(text) IS 'Internal: 42501 unless called from pg_credit''s own functions';
COMMENT ON FUNCTION credit._acting_as() IS 'Internal: the role that called pg_credit, as events record it (on a Citus worker, the caller the coordinator relayed)';
COMMENT ON FUNCTION credit.act_for(text) IS 'A trusted proxy (credit.trusted_proxy) names the person it acts for until the end of the transaction; levels, approver roles and four eyes count that person';
