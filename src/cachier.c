/*-------------------------------------------------------------------------
 *
 * cachier.c
 *	  Module entry point: defines the settings, registers the cache
 *	  invalidation and transaction callbacks and, when preloaded, the shared
 *	  memory and the background worker launcher.  Everything else lives in the file named for
 *	  its job (see cachier.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier_shared.h"
#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	cachier_define_settings();
	cachier_register_invalidation();
	cachier_entry_scan_init();
	cachier_inprogress_init();
	if (process_shared_preload_libraries_in_progress)
	{
		cachier_shared_init();
		cachier_worker_init();
	}
}
