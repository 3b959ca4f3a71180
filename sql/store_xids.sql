-- Storing misses costs one subtransaction, and so one transaction ID, per
-- top-level statement, not one per entry: entries computed by a statement
-- are written together when it ends (and before commit).  Entries of a
-- rolled-back subtransaction are not written.
CREATE EXTENSION cachier;
CREATE SCHEMA xids_test;
SET search_path = xids_test, public;
CREATE FUNCTION sq(x int) RETURNS int LANGUAGE sql AS 'SELECT x * x';
SELECT cachier_memoize('sq(int)');

-- 1,000 misses in one statement, then the same keys again: hits, from this
-- transaction's own entries
BEGIN;
SELECT txid_current() AS first \gset
SELECT count(sq_cached(i)) AS misses FROM generate_series(1, 1000) i;
SET LOCAL cachier."verbose" = on;
SELECT sq_cached(1000) AS own_hit;
RESET cachier."verbose";
COMMIT;
SELECT txid_current() - :first < 10 AS few_xids;
SELECT count(*) AS stored FROM cachier.entries
 WHERE fn_id = cachier.fn_id('sq(int)');

-- 500 single-call statements in one DO block: written once, at its end
BEGIN;
SELECT txid_current() AS first \gset
DO $$ BEGIN FOR i IN 1001..1500 LOOP PERFORM sq_cached(i); END LOOP; END $$;
COMMIT;
SELECT txid_current() - :first < 10 AS few_xids;
SELECT count(*) AS stored FROM cachier.entries
 WHERE fn_id = cachier.fn_id('sq(int)');

-- a savepoint rolled back takes the entries computed in it along
BEGIN;
SELECT sq_cached(2001);
SAVEPOINT s;
SELECT sq_cached(2002);
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- and so does an exception block, within one statement
DO $$
BEGIN
    BEGIN
        PERFORM sq_cached(3001);
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    PERFORM sq_cached(3002);
END $$;
SELECT arguments FROM cachier_entries
 WHERE function = 'sq(int)'::regprocedure
   AND arguments IN ('(2001)', '(2002)', '(3001)', '(3002)')
 ORDER BY arguments;

-- a transaction's entries are there for its own later statements and for
-- cachier_clear in it
BEGIN;
SELECT sq_cached(4001);
SELECT count(*) AS visible FROM cachier.entries
 WHERE fn_id = cachier.fn_id('sq(int)') AND args = (
       SELECT args FROM cachier.entries e JOIN cachier_entries v USING (key)
        WHERE v.arguments = '(4001)');
SELECT cachier_clear('sq', 4001) AS cleared;
COMMIT;

-- after commits, a statement's entries are still written when it ends:
-- the next statement of the transaction reads them from the table
BEGIN;
SELECT sq_cached(5001);
SELECT count(*) AS written FROM cachier_entries
 WHERE function = 'sq(int)'::regprocedure AND arguments = '(5001)';
COMMIT;

SET client_min_messages = warning;
DROP SCHEMA xids_test CASCADE;
DROP EXTENSION cachier;
