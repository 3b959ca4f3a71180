/*-------------------------------------------------------------------------
 *
 * cachier.c
 *	  Module entry point: defines the settings and registers the cache
 *	  invalidation callbacks.  Everything else lives in the file named for
 *	  its job (see cachier.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	cachier_define_settings();
	cachier_register_invalidation();
	cachier_entry_scan_init();
	cachier_inprogress_init();
}
