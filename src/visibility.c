/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  Who may see which rows of cachier's views, as in pg_stat_statements:
 *	  members of pg_read_all_stats see every row; any other role sees what
 *	  concerns the functions it owns (has_privs_of_role with the owner).
 *	  views.c and freshness.c (cachier_dependencies) apply it.  No state,
 *	  no locks: one syscache lookup per function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "cachier.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"

/* Whether the caller sees every row: a member of pg_read_all_stats. */
bool
cachier_sees_all_stats(void)
{
	return has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

bool
cachier_owns_function(Oid funcid, bool *exists)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Oid			owner;

	*exists = HeapTupleIsValid(tuple);
	if (!*exists)
		return false;
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	return has_privs_of_role(GetUserId(), owner);
}

/*
 * Whether the caller may see funcid's statistics and options: it exists,
 * and the caller owns it or reads all statistics.
 */
bool
cachier_may_see_function(Oid funcid)
{
	bool		exists;
	bool		owned = cachier_owns_function(funcid, &exists);

	return exists && (owned || cachier_sees_all_stats());
}
