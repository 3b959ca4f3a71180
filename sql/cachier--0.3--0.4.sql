/* cachier--0.3--0.4.sql: the security model (issue 8) */

\echo Use "ALTER EXTENSION cachier UPDATE TO '0.4'" to load this file. \quit

/*
 * Rules for everything in this script: no operator, function or type is
 * written unqualified where a role other than the extension owner could
 * shadow it (OPERATOR(pg_catalog.=), pg_catalog.count(...)), and every
 * function in schema cachier is revoked from PUBLIC unless a view or a
 * wrapper must call it, in which case it validates its arguments.
 */

-- ==== [A] storage, option functions, privileges of the helpers

-- ==== [E] entries: the role column, per-role quotas

/*
 * role_id: the role whose call stored the entry.  Per-role entries (of a
 * function whose owner did not configure it, or with per_role) are keyed
 * by that role's OID and served to it alone; cachier.max_role_bytes limits
 * the total size of each role's entries, counted through entries_role.
 * Entries from before 0.4 get role 0: no role's.
 */
ALTER TABLE cachier.entries ADD COLUMN role_id oid NOT NULL DEFAULT 0;
ALTER TABLE cachier.entries ALTER COLUMN role_id DROP DEFAULT;
CREATE INDEX entries_role ON cachier.entries (role_id);

-- per-role keys now hold the role's OID and unconfigured functions are
-- keyed by role: the old entries of both can never be found again
DELETE FROM cachier.entries e
 WHERE NOT EXISTS (SELECT FROM cachier.functions f
                    WHERE f.fn OPERATOR(pg_catalog.=) e.function_id
                      AND f.per_role IS NOT TRUE);

-- ==== [D] views and statistics

-- ==== [B] background worker

-- ==== [C] Redis tier

-- ==== end
