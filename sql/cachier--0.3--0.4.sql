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

-- ==== [D] views and statistics

-- ==== [B] background worker

-- ==== [C] Redis tier

-- ==== end
