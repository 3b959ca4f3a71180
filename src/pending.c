/*-------------------------------------------------------------------------
 *
 * pending.c
 *	  Entries computed in this transaction and not yet written to
 *	  cachier.entries: they are written together, in one subtransaction,
 *	  at the end of the top-level statement (or before a utility command,
 *	  when many have piled up, and before commit or PREPARE), so that a
 *	  statement storing N misses uses one subtransaction and one XID for
 *	  all of them rather than one each.
 *
 * Rules that keep this the same as writing at once:
 *	- A lookup in this transaction sees its pending entries first
 *	  (cachier_pending_lookup), so its own later calls hit.
 *	- The computing lock of a key is held until commit (or, beyond the lock
 *	  budget, given back as before): waiters read the entry after commit, by
 *	  which time it has been written.
 *	- An entry belongs to the subtransaction that computed it: when that
 *	  one rolls back, the entry is dropped, exactly as a rolled-back insert
 *	  would be.
 *	- Writing is never done while a write is running (no re-entry), nor
 *	  outside a transaction that can write.  A write that fails becomes a
 *	  WARNING (table_store.c): the values were returned already.
 *
 * Memory: the entries live in a context of the backend and their bytes in
 * an arena of the backend, both emptied after each write and at the end of
 * each transaction, and both keeping some of their memory for the next
 * queue (see PENDING_KEEP_BYTES).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "cachier.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* write before the end of the statement once this much is waiting */
#define PENDING_MAX_ENTRIES	10000
#define PENDING_MAX_BYTES	(16 * 1024 * 1024)

/*
 * Memory the queue keeps from one statement and transaction to the next.
 * Touching fresh pages costs a page fault each, more than a small entry's
 * whole write, and memory given back at the end of every transaction (or
 * malloc'd anew for every large value) is fresh again each time.  So the
 * entries live in a context whose first block stays (QUEUE_KEEP_BYTES),
 * and their arguments and values in blocks of at least ARENA_BLOCK bytes,
 * filled one after the other, of which PENDING_KEEP_BYTES stay.  Both are
 * allocated when first needed and touched only as far as queues reach.
 */
#define QUEUE_KEEP_BYTES	(1024 * 1024)
#define ARENA_BLOCK			(1024 * 1024)
#define PENDING_KEEP_BYTES	(8 * 1024 * 1024)

typedef struct ArenaBlock
{
	struct ArenaBlock *next;
	Size		size;			/* of data */
	Size		used;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} ArenaBlock;

typedef struct PendingKey
{
	Oid			funcid;
	int64		key;
} PendingKey;

typedef struct PendingSlot
{
	PendingKey	key;
	EntryRow   *row;			/* the newest pending row of the key */
} PendingSlot;

static MemoryContext pending_cxt = NULL;
static ArenaBlock *arena = NULL;	/* in TopMemoryContext */
static ArenaBlock *arena_current = NULL;	/* the block being filled */
static List *pending = NIL;		/* EntryRow *, oldest first */
static HTAB *pending_index = NULL;
static Size pending_bytes = 0;
static int64 pending_wait_us = 0;
static bool writing = false;
static int	statement_depth = 0;

static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;

/* ---------------------------------------------------------------- the queue */

static void
ensure_queue(void)
{
	HASHCTL		ctl;

	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext,
											"cachier pending entries",
											QUEUE_KEEP_BYTES,
											QUEUE_KEEP_BYTES,
											ALLOCSET_DEFAULT_MAXSIZE);
	if (pending_index != NULL)
		return;
	ctl.keysize = sizeof(PendingKey);
	ctl.entrysize = sizeof(PendingSlot);
	ctl.hcxt = pending_cxt;
	pending_index = hash_create("cachier pending entries", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static bytea *
copy_bytea(const bytea *b)
{
	bytea	   *copy;

	if (b == NULL)
		return NULL;
	copy = palloc(VARSIZE(b));
	memcpy(copy, b, VARSIZE(b));
	return copy;
}

/* len bytes of the arena: in the block being filled, the next kept one, or a new one. */
static void *
arena_alloc(Size len)
{
	ArenaBlock *b = arena_current;
	void	   *p;

	len = MAXALIGN(len);
	if (b == NULL || b->size - b->used < len)
	{
		if (b != NULL && b->next != NULL && b->next->size >= len)
			b = b->next;
		else
		{
			Size		size = Max(ARENA_BLOCK, len);
			ArenaBlock *fresh = MemoryContextAllocHuge(TopMemoryContext,
													   offsetof(ArenaBlock, data) + size);

			fresh->size = size;
			fresh->used = 0;
			fresh->next = b ? b->next : NULL;
			if (b)
				b->next = fresh;
			else
				arena = fresh;
			b = fresh;
		}
		arena_current = b;
	}
	p = b->data + b->used;
	b->used += len;
	return p;
}

/* Empty the arena; keep its first blocks, up to PENDING_KEEP_BYTES. */
static void
arena_reset(void)
{
	ArenaBlock *b = arena;
	ArenaBlock *prev = NULL;
	Size		kept = 0;

	while (b != NULL)
	{
		ArenaBlock *next = b->next;

		if (kept + b->size <= PENDING_KEEP_BYTES)
		{
			kept += b->size;
			b->used = 0;
			prev = b;
		}
		else
		{
			if (prev)
				prev->next = next;
			else
				arena = next;
			pfree(b);
		}
		b = next;
	}
	arena_current = arena;
}

/* Empty the queue's memory. */
static void
reset_queue_memory(void)
{
	if (pending_cxt)
		MemoryContextReset(pending_cxt);
	arena_reset();
}

static bytea *
arena_copy(const bytea *b)
{
	bytea	   *copy;

	if (b == NULL)
		return NULL;
	copy = arena_alloc(VARSIZE(b));
	memcpy(copy, b, VARSIZE(b));
	return copy;
}

/*
 * Queue an entry to be written with the others of this statement; it is
 * found by this transaction's lookups from now on.
 */
void
cachier_pending_add(const EntryRow *row, int64 wait_us)
{
	MemoryContext old;
	EntryRow   *copy;
	PendingKey	key;
	PendingSlot *slot;

	ensure_queue();
	old = MemoryContextSwitchTo(pending_cxt);
	copy = palloc(sizeof(EntryRow));
	*copy = *row;
	copy->args = arena_copy(row->args);
	copy->value = arena_copy(row->value);
	copy->nest_level = GetCurrentTransactionNestLevel();
	copy->dropped = false;
	cachier_store_take_probe(copy);
	pending = lappend(pending, copy);
	MemoryContextSwitchTo(old);

	memset(&key, 0, sizeof(key));
	key.funcid = row->funcid;
	key.key = row->key;
	slot = hash_search(pending_index, &key, HASH_ENTER, NULL);
	slot->row = copy;
	pending_bytes += VARSIZE(copy->args) + (copy->value ? VARSIZE(copy->value) : 0);
	pending_wait_us = Max(pending_wait_us, wait_us);
	if (list_length(pending) >= PENDING_MAX_ENTRIES || pending_bytes >= PENDING_MAX_BYTES)
		cachier_pending_flush();
}

/* This transaction's pending entry of (funcid, key) for exactly these keyed bytes. */
bool
cachier_pending_lookup(Oid funcid, int64 key, const StringInfo keyed, StoredEntry *entry)
{
	PendingKey	pkey;
	PendingSlot *slot;
	EntryRow   *row;

	if (pending_index == NULL)
		return false;
	memset(&pkey, 0, sizeof(pkey));
	pkey.funcid = funcid;
	pkey.key = key;
	slot = hash_search(pending_index, &pkey, HASH_FIND, NULL);
	if (slot == NULL || slot->row->dropped)
		return false;
	row = slot->row;
	if (VARSIZE(row->args) - VARHDRSZ != (Size) keyed->len ||
		memcmp(VARDATA(row->args), keyed->data, keyed->len) != 0)
		return false;
	entry->found = true;
	entry->isnull = row->value == NULL;
	entry->value = row->value ? copy_bytea(row->value) : NULL;
	entry->created_at = row->created_at;
	entry->compute_ms = row->compute_ms;
	entry->has_epoch = row->has_epoch;
	entry->epoch = row->epoch;
	return true;
}

/* The size (cachier_entry_size) of the role's pending entries. */
int64
cachier_pending_role_bytes(Oid roleid)
{
	int64		total = 0;
	ListCell   *lc;

	foreach(lc, pending)
	{
		EntryRow   *row = lfirst(lc);

		if (row->roleid == roleid && !row->dropped)
			total += cachier_entry_size(VARSIZE(row->args) - VARHDRSZ,
										row->value ? VARSIZE(row->value) - VARHDRSZ : 0);
	}
	return total;
}

/*
 * Write every pending entry now, in one subtransaction.  Called at the
 * end of a top-level statement, before utility commands, before commit
 * and PREPARE, before deletes, and when the queue is full.
 */
void
cachier_pending_flush(void)
{
	List	   *rows = pending;
	int64		wait_us = pending_wait_us;
	bool		pushed;

	if (rows == NIL || writing || !IsTransactionState())
		return;
	writing = true;
	pending = NIL;				/* our own subtransaction must not see them */
	pending_index = NULL;
	pending_bytes = 0;
	pending_wait_us = 0;
	/* at a statement's end its snapshot is gone: the write takes one */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		cachier_store_write(rows, wait_us);
	}
	PG_FINALLY();
	{
		writing = false;
		/* rows queued while writing (a constraint calling a cached function) stay */
		if (pending == NIL)
			reset_queue_memory();
	}
	PG_END_TRY();
	if (pushed)
		PopActiveSnapshot();
}

/* ---------------------------------------------------------------- transactions */

static void
transaction_event(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			cachier_pending_flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			reset_queue_memory();
			pending = NIL;
			pending_index = NULL;
			pending_bytes = 0;
			pending_wait_us = 0;
			writing = false;
			/* statement_depth is the hooks' own: a COMMIT runs inside one */
			break;
		default:
			break;
	}
}

/* A rolled-back subtransaction takes its entries with it. */
static void
subtransaction_event(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	foreach(lc, pending)
	{
		EntryRow   *row = lfirst(lc);

		if (row->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			row->dropped = true;
		else
			row->nest_level = level - 1;
	}
}

/* ---------------------------------------------------------------- statements */

/*
 * The executor hooks count how deep in statements we are, as
 * pg_stat_statements does, so that the queue is written at the end of a
 * top-level statement only: a PL/pgSQL loop of single-call statements
 * inside one DO block still writes once.
 */
static void
executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
			 bool execute_once)
{
	statement_depth++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		statement_depth--;
	}
	PG_END_TRY();
}

static void
executor_finish(QueryDesc *queryDesc)
{
	statement_depth++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		statement_depth--;
	}
	PG_END_TRY();
}

static void
executor_end(QueryDesc *queryDesc)
{
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	if (statement_depth == 0)
		cachier_pending_flush();
}

/* Around a utility command (cachier.c's hook): write first, count depth. */
void
cachier_pending_utility_begin(void)
{
	cachier_pending_flush();
	statement_depth++;
}

void
cachier_pending_utility_end(void)
{
	statement_depth--;
}

void
cachier_pending_init(void)
{
	RegisterXactCallback(transaction_event, NULL);
	RegisterSubXactCallback(subtransaction_event, NULL);
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = executor_finish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = executor_end;
}
