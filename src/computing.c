/*-------------------------------------------------------------------------
 *
 * computing.c
 *	  What each backend is computing right now, so that cachier_entries can
 *	  show a key being computed for the first time: it has no row in the
 *	  storage yet, and a DBA looking for a slow or stuck call wants to see it.
 *
 * Each backend owns COMPUTING_DEPTH slots in shared memory (one per level
 * of nested cached calls) and is the only one to write them.  A write is
 * bracketed by a change counter, odd while it is under way, as PostgreSQL
 * does for PgBackendStatus; a reader copies a slot and tries again while
 * the counter was odd or moved.  So neither side takes a lock, and a
 * miss pays two counter increments and a copy of the keyed bytes.
 *
 * A slot is emptied when its computation ends, and by the abort of the
 * (sub)transaction that set it.  Without shared_preload_libraries nothing
 * is recorded and the view shows the stored entries only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "cachier.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#define COMPUTING_DEPTH		4		/* nested computations shown per backend */
#define COMPUTING_KEYED_MAX	256		/* longer keyed bytes are not kept */

typedef struct ComputingSlot
{
	uint32		changecount;	/* odd while being written */
	bool		used;
	Oid			dbid;
	Oid			funcid;
	Oid			roleid;
	int			nest_level;		/* the subtransaction that set it */
	int64		key;
	TimestampTz started;
	int			keyed_len;		/* -1: too long to keep */
	char		keyed[COMPUTING_KEYED_MAX];
} ComputingSlot;

static ComputingSlot *slots = NULL; /* MaxBackends * COMPUTING_DEPTH */
static int	depth = 0;			/* this backend's computations under way */

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static Size
slots_size(void)
{
	return mul_size(mul_size(MaxBackends, COMPUTING_DEPTH), sizeof(ComputingSlot));
}

static void
request_slots(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(slots_size()));
}

static void
attach_slots(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("cachier computing", slots_size(), &found);
	if (!found)
		memset(slots, 0, slots_size());
	LWLockRelease(AddinShmemInitLock);
}

/* This backend's slot at a nesting level, or NULL. */
static ComputingSlot *
my_slot(int level)
{
	if (slots == NULL || MyBackendId == InvalidBackendId || MyBackendId > MaxBackends ||
		level < 0 || level >= COMPUTING_DEPTH)
		return NULL;
	return &slots[(MyBackendId - 1) * COMPUTING_DEPTH + level];
}

static void
write_begin(ComputingSlot *slot)
{
	slot->changecount++;
	pg_write_barrier();
}

static void
write_end(ComputingSlot *slot)
{
	pg_write_barrier();
	slot->changecount++;
}

static void
clear_slot(ComputingSlot *slot)
{
	write_begin(slot);
	slot->used = false;
	write_end(slot);
}

/* Empty the slots set by aborted (sub)transactions. */
static void
forget_from(int nest_level)
{
	while (depth > 0)
	{
		ComputingSlot *slot = my_slot(depth - 1);

		if (slot != NULL && slot->used && slot->nest_level < nest_level)
			break;
		if (slot != NULL)
			clear_slot(slot);
		depth--;
	}
}

static void
transaction_event(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		forget_from(0);
}

static void
subtransaction_event(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_from(GetCurrentTransactionNestLevel());
}

/* Called from _PG_init while preloading. */
void
cachier_computing_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = request_slots;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = attach_slots;
	RegisterXactCallback(transaction_event, NULL);
	RegisterSubXactCallback(subtransaction_event, NULL);
}

/* A computation of funcid's key starts; returns what to pass to _end. */
int
cachier_computing_begin(Oid funcid, int64 key, const char *keyed, int len)
{
	ComputingSlot *slot = my_slot(depth);

	depth++;
	if (slot == NULL)
		return depth;
	write_begin(slot);
	slot->used = true;
	slot->dbid = MyDatabaseId;
	slot->funcid = funcid;
	slot->roleid = GetUserId();
	slot->nest_level = GetCurrentTransactionNestLevel();
	slot->key = key;
	slot->started = GetCurrentTimestamp();
	slot->keyed_len = len <= COMPUTING_KEYED_MAX ? len : -1;
	if (slot->keyed_len > 0)
		memcpy(slot->keyed, keyed, len);
	write_end(slot);
	return depth;
}

/* The computation that cachier_computing_begin returned token for ended. */
void
cachier_computing_end(int token)
{
	while (depth >= token && depth > 0)
	{
		ComputingSlot *slot = my_slot(depth - 1);

		if (slot != NULL)
			clear_slot(slot);
		depth--;
	}
}

/* A consistent copy of one slot; false if it is empty. */
static bool
read_slot(const ComputingSlot *slot, ComputingSlot *copy)
{
	for (;;)
	{
		uint32		before = slot->changecount;

		pg_read_barrier();
		memcpy(copy, slot, sizeof(ComputingSlot));
		pg_read_barrier();
		if (before == slot->changecount && (before & 1) == 0)
			return copy->used;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * The computations under way in this database, for the views; visit is
 * called for each with the slot's fields.
 */
void
cachier_computing_visit(ComputingVisitor visit, void *arg)
{
	int			n = slots == NULL ? 0 : MaxBackends * COMPUTING_DEPTH;

	for (int i = 0; i < n; i++)
	{
		ComputingSlot copy;

		if (!read_slot(&slots[i], &copy) || copy.dbid != MyDatabaseId)
			continue;
		visit(copy.funcid, copy.key, copy.roleid, copy.started,
			  copy.keyed_len >= 0 ? copy.keyed : NULL, copy.keyed_len, arg);
	}
}
