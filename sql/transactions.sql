-- Entries are written in the caller's transaction
CREATE EXTENSION cachier;
CREATE SCHEMA transactions_test;
SET search_path = transactions_test, public;
CREATE SEQUENCE calls;
CREATE FUNCTION executions() RETURNS bigint LANGUAGE sql
AS $$ SELECT last_value - 1 + is_called::int FROM calls $$;
CREATE TABLE stock (item int PRIMARY KEY, qty int);
INSERT INTO stock VALUES (1, 10);
CREATE FUNCTION qty_of(i int) RETURNS int LANGUAGE plpgsql STABLE
AS $$ BEGIN PERFORM nextval('calls'); RETURN (SELECT qty FROM stock WHERE item = i); END $$;
SELECT cachier_memoize('qty_of(int)');

-- a rolled-back transaction leaves no entry: a value computed from
-- uncommitted data never reaches other sessions
BEGIN;
UPDATE stock SET qty = 999 WHERE item = 1;
SELECT qty_of_cached(1);
ROLLBACK;
SELECT count(*) FROM cachier.entries;
SELECT qty_of_cached(1);

-- a savepoint rolled back takes its entries with it
SELECT cachier_clear('qty_of');
BEGIN;
SAVEPOINT s;
SELECT qty_of_cached(1);
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM cachier.entries;
COMMIT;

-- hits and misses inside savepoints that roll back leave the transaction's
-- other work alone.  (The value computed in savepoint s above read committed
-- data only, so a shared memory tier may hold it already, which is right;
-- the clear makes the first call below compute and store in every case.)
SELECT cachier_clear('qty_of');
BEGIN;
SELECT qty_of_cached(1);
SAVEPOINT a;
SELECT qty_of_cached(1), qty_of_cached(2);
ROLLBACK TO SAVEPOINT a;
SELECT qty_of_cached(1);
SAVEPOINT b;
SELECT qty_of_cached(1) / 0;
ROLLBACK TO SAVEPOINT b;
SELECT qty_of_cached(1);
COMMIT;
SELECT count(*) FROM cachier.entries;
SELECT cachier_clear('qty_of');

-- an error after the call in the same transaction: no entry either
BEGIN;
SELECT qty_of_cached(1);
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) FROM cachier.entries;

-- a read-only transaction computes, returns, stores nothing, no error
CREATE FUNCTION ro_qty(i int) RETURNS int LANGUAGE sql STABLE
AS $$ SELECT qty FROM stock WHERE item = i $$;
SELECT cachier_memoize('ro_qty(int)');
SET cachier."verbose" = on;
BEGIN READ ONLY;
SELECT ro_qty_cached(1);
SELECT ro_qty_cached(1);
COMMIT;
SET default_transaction_read_only = on;
SELECT cachier_wrap('ro_qty', 1);
RESET default_transaction_read_only;
SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('ro_qty(int)');

-- a read-only transaction reads what is cached
SELECT ro_qty_cached(1);
BEGIN READ ONLY;
SELECT ro_qty_cached(1);
COMMIT;
RESET cachier."verbose";

-- REPEATABLE READ and SERIALIZABLE transactions compute what depends on
-- tables directly, each call with the transaction's snapshot (freshness.sql)
SELECT cachier_clear('qty_of');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT qty_of_cached(1);
SELECT qty_of_cached(1);
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT qty_of_cached(1);
COMMIT;
SELECT executions();

-- one statement that misses many keys: each computing lock is a slot of
-- the shared lock table, so past a budget they are given back once stored
-- and the statement neither fails nor starves other sessions
CREATE FUNCTION ident(i int) RETURNS int LANGUAGE sql AS 'SELECT i';
BEGIN;
SELECT count(cachier_wrap('ident', i)) FROM generate_series(1, 20000) i;
SELECT count(*) AS computing_locks_held FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 27182 AND pid = pg_backend_pid();
COMMIT;
SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('ident(int)');

-- the cache never makes a query fail that would succeed without it: a
-- failure to store (here a constraint the storage does not accept) is a
-- WARNING and the result is still returned
CREATE FUNCTION word(i int) RETURNS text LANGUAGE sql AS $$ SELECT repeat('w', i) $$;
ALTER TABLE cachier.entries ADD CONSTRAINT small_values CHECK (octet_length(value) < 10);
SELECT cachier_wrap('word', 3), cachier_wrap('word', 12);
ALTER TABLE cachier.entries DROP CONSTRAINT small_values;
SELECT arguments FROM cachier_entries WHERE function = 'word(int)'::regprocedure;

-- an unreadable stored value is a miss plus a WARNING, then recomputed
-- (the values are spoiled by hand, which a shared memory tier does not see:
-- its copies are forgotten, as README says)
UPDATE cachier.entries SET value = '\x00ff' WHERE fn_id = cachier.fn_id('word(int)');
SELECT cachier_memory_reset() AS memory_reset \gset
SELECT cachier_wrap('word', 3);
SELECT cachier_wrap('word', 3);
CREATE TYPE pair AS (a int, b text);
CREATE FUNCTION mkpair(i int) RETURNS pair LANGUAGE sql AS $$ SELECT (i, 'x')::pair $$;
SELECT cachier_wrap('mkpair', 1);
UPDATE cachier.entries SET value = '\x0000000a' WHERE fn_id = cachier.fn_id('mkpair(int)');
SELECT cachier_memory_reset() AS memory_reset \gset
SELECT cachier_wrap('mkpair', 1);
SELECT cachier_wrap('mkpair', 1);

-- PL/pgSQL that catches the function's error: nothing cached, the block
-- goes on
CREATE FUNCTION picky(x int) RETURNS int LANGUAGE plpgsql
AS $$ BEGIN IF x < 0 THEN RAISE EXCEPTION 'negative'; END IF; RETURN x; END $$;
SELECT cachier_memoize('picky(int)');
DO $$
BEGIN
    PERFORM picky_cached(-1);
EXCEPTION WHEN raise_exception THEN
    RAISE NOTICE 'caught: %', SQLERRM;
END
$$;
SELECT count(*) FROM cachier.entries WHERE fn_id = cachier.fn_id('picky(int)');

-- parallel plans: a PARALLEL SAFE wrapper may run in workers, which read
-- the cache and store nothing
CREATE FUNCTION psq(x int) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT x * x';
SELECT cachier_memoize('psq(int)');
CREATE TABLE nums AS SELECT i FROM generate_series(1, 20000) i;
ANALYZE nums;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT sum(psq_cached(i % 10)) FROM nums;
SELECT sum(psq_cached(i % 10)) FROM nums;
SELECT sum(psq(i % 10)) FROM nums;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

SET client_min_messages = warning;
DROP SCHEMA transactions_test CASCADE;
DROP EXTENSION cachier CASCADE;
