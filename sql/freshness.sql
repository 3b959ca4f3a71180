-- Freshness: a cached call returns what a direct call would, after the data
-- it read changed too.  Every computation's reads are captured; a committed
-- change to any of them invalidates the entry.
CREATE EXTENSION cachier;
CREATE SCHEMA freshness_test;
SET search_path = freshness_test, public;

CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);
INSERT INTO orders VALUES (1, 10), (2, 20);
CREATE FUNCTION total() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT coalesce(sum(amount), 0) FROM orders $$;
SELECT cachier_memoize('total()');

-- the issue's example: 30, then 60 after an INSERT, and a hit in between
SET cachier."verbose" = on;
SELECT total_cached();
SELECT total_cached();
INSERT INTO orders VALUES (3, 30);
SELECT total_cached();
SELECT total_cached();

-- the view shows what was captured
SELECT function, relation, how FROM cachier_dependencies ORDER BY 1, 2;

-- every write path invalidates, each in its own transaction
UPDATE orders SET amount = amount + 1 WHERE id = 1;
SELECT total_cached();
DELETE FROM orders WHERE id = 3;
SELECT total_cached();
INSERT INTO orders VALUES (2, 200) ON CONFLICT (id) DO UPDATE SET amount = excluded.amount;
SELECT total_cached();
MERGE INTO orders o USING (VALUES (4, 4)) v(id, amount) ON o.id = v.id
 WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.amount);
SELECT total_cached();
COPY orders FROM STDIN;
5	5
\.
SELECT total_cached();
WITH gone AS (DELETE FROM orders WHERE id = 5 RETURNING 1) SELECT count(*) FROM gone;
SELECT total_cached();
TRUNCATE orders;
SELECT total_cached();
INSERT INTO orders VALUES (1, 1);
SELECT total_cached();

-- a foreign-key cascade changes orders through a trigger
CREATE TABLE customers (id int PRIMARY KEY);
INSERT INTO customers VALUES (1);
ALTER TABLE orders ADD COLUMN customer int REFERENCES customers ON DELETE CASCADE;
SELECT total_cached();
UPDATE orders SET customer = 1;
SELECT total_cached();
DELETE FROM customers;
SELECT total_cached();
INSERT INTO orders VALUES (1, 7);
SELECT total_cached();

-- DDL: ALTER TABLE, privileges, DROP and re-CREATE in one transaction
ALTER TABLE orders ALTER COLUMN amount SET DEFAULT 0;
SELECT total_cached();
GRANT SELECT ON orders TO PUBLIC;
SELECT total_cached();
REVOKE SELECT ON orders FROM PUBLIC;
SELECT total_cached();
BEGIN;
DROP TABLE orders;
CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);
INSERT INTO orders VALUES (1, 1000);
COMMIT;
SELECT total_cached();

-- partitions and inheritance children: reads and writes meet at the root
CREATE TABLE sales (region text, amount int) PARTITION BY LIST (region);
CREATE TABLE sales_eu PARTITION OF sales FOR VALUES IN ('eu');
CREATE TABLE sales_us PARTITION OF sales FOR VALUES IN ('us');
INSERT INTO sales VALUES ('eu', 1), ('us', 2);
CREATE FUNCTION eu_sales() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT sum(amount) FROM sales_eu $$;
SELECT cachier_configure('eu_sales()');
SELECT cachier_wrap('eu_sales');
INSERT INTO sales VALUES ('eu', 10);            -- through the parent
SELECT cachier_wrap('eu_sales');
INSERT INTO sales_eu VALUES ('eu', 100);        -- into the partition
SELECT cachier_wrap('eu_sales');
CREATE TABLE animals (name text);
CREATE TABLE dogs () INHERITS (animals);
CREATE FUNCTION animal_count() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT count(*) FROM animals $$;
SELECT cachier_configure('animal_count()');
SELECT cachier_wrap('animal_count');
INSERT INTO dogs VALUES ('rex');                -- into the child
SELECT cachier_wrap('animal_count');

-- views, materialized views, dynamic EXECUTE, nested cached functions
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100;
CREATE FUNCTION big_count() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT count(*) FROM big_orders $$;
SELECT cachier_configure('big_count()');
SELECT cachier_wrap('big_count');
INSERT INTO orders VALUES (2, 500);             -- a base table of the view
SELECT cachier_wrap('big_count');
CREATE MATERIALIZED VIEW order_totals AS SELECT sum(amount) AS s FROM orders;
CREATE FUNCTION snapshot_total() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT s FROM order_totals $$;
SELECT cachier_configure('snapshot_total()');
SELECT cachier_wrap('snapshot_total');
INSERT INTO orders VALUES (3, 3);
SELECT cachier_wrap('snapshot_total');          -- the matview did not change
REFRESH MATERIALIZED VIEW order_totals;
SELECT cachier_wrap('snapshot_total');
CREATE FUNCTION dynamic_count(t text) RETURNS bigint LANGUAGE plpgsql STABLE
AS $$ DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %I', t) INTO n; RETURN n; END $$;
SELECT cachier_configure('dynamic_count(text)');
SELECT cachier_wrap('dynamic_count', 'customers'::text);
INSERT INTO customers VALUES (2);
SELECT cachier_wrap('dynamic_count', 'customers'::text);
CREATE FUNCTION doubled_total() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT 2 * total_cached() $$;
SELECT cachier_configure('doubled_total()');
SELECT cachier_wrap('doubled_total');           -- total() is a hit inside it
SELECT cachier_wrap('doubled_total');
INSERT INTO orders VALUES (4, 4);
SELECT cachier_wrap('doubled_total');           -- invalidated through total()'s reads

-- what was captured: roots of partitions and children, base tables of
-- views, the reads of a nested cached function
SELECT function, relation, how FROM cachier_dependencies ORDER BY function::text, relation::text;

-- two-phase commit: a prepared change is not yet visible, and COMMIT
-- PREPARED invalidates (every tracked function of the database)
BEGIN;
INSERT INTO orders VALUES (7, 7);
PREPARE TRANSACTION 'freshness_2pc';
SELECT total_cached();
COMMIT PREPARED 'freshness_2pc';
SELECT total_cached();

-- a transaction that changed a dependency neither reads nor stores its
-- entries: it sees its own write; after a rollback the entry is still good
SELECT total_cached();
BEGIN;
INSERT INTO orders VALUES (5, 5);
SELECT total_cached();
ROLLBACK;
SELECT total_cached();
-- a savepoint rolled back takes the change with it
BEGIN;
SAVEPOINT s;
DELETE FROM orders;
SELECT total_cached();
ROLLBACK TO SAVEPOINT s;
SELECT total_cached();
COMMIT;

-- REPEATABLE READ: entries that depend on tables are neither served nor
-- stored (a hit would skip the reads SERIALIZABLE must see)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT total_cached();
COMMIT;

-- reads cachier cannot watch make the result unstorable, with a WARNING
-- once per session: a temporary table, a system catalog
CREATE TEMP TABLE scratch (x int);
INSERT INTO scratch VALUES (1);
CREATE FUNCTION scratch_count() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT count(*) FROM pg_temp.scratch $$;
SELECT cachier_configure('scratch_count()');
SELECT cachier_wrap('scratch_count');
SELECT cachier_wrap('scratch_count');
CREATE FUNCTION table_count() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT count(*) FROM pg_class WHERE relname = 'orders' $$;
SELECT cachier_configure('table_count()');
SELECT cachier_wrap('table_count');
-- a computation that reads nothing is stored without an epoch
CREATE FUNCTION constant() RETURNS int LANGUAGE sql STABLE AS 'SELECT 42';
SELECT cachier_configure('constant()');
SELECT cachier_wrap('constant');
SELECT v.function::text AS function, e.epoch IS NULL AS no_epoch
  FROM cachier.entries e JOIN cachier_entries v ON v.key = e.key
 WHERE v.function IN ('constant()'::regprocedure, 'total()'::regprocedure) ORDER BY 1;

-- honest ages: an entry's created_at is when its data was read -- under
-- REPEATABLE READ the transaction's start, however late it is stored
CREATE FUNCTION constant2() RETURNS int LANGUAGE sql STABLE AS 'SELECT 43';
SELECT cachier_configure('constant2()');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) > 0 AS snapshot_taken FROM orders;
SELECT pg_sleep(0.05);
SELECT cachier_wrap('constant2');
COMMIT;
SELECT created_at < clock_timestamp() - interval '50 ms' AS read_at_transaction_start
  FROM cachier_entries WHERE function = 'constant2()'::regprocedure;

-- track_reads off: shelf life only, as before 0.5 (the setting stands in
-- for the option here)
SET cachier.track_reads = off;
SELECT cachier_wrap('scratch_count');
SELECT cachier_wrap('scratch_count');
SELECT cachier_clear('total');
SELECT total_cached();
INSERT INTO orders VALUES (6, 6);
SELECT total_cached();                          -- the old value: not tracked
RESET cachier.track_reads;
SELECT total_cached();                          -- tracked again: that entry is not trusted

-- cachier_invalidate: by hand, for changes cachier cannot see
SELECT total_cached();
SELECT cachier_invalidate('orders');
SELECT total_cached();
SELECT cachier_invalidate('customers');         -- dynamic_count's entry
RESET cachier."verbose";

-- statistics count the invalidated entries found
SELECT function, invalidations > 0 AS invalidated FROM cachier_stats
 WHERE function = 'total()'::regprocedure;

-- only a role that could change the relation may invalidate by hand
CREATE ROLE freshness_reader;
GRANT USAGE ON SCHEMA freshness_test TO freshness_reader;
GRANT SELECT ON orders TO freshness_reader;
SET ROLE freshness_reader;
SELECT cachier_invalidate('orders');
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA freshness_test CASCADE;
DROP OWNED BY freshness_reader;
DROP ROLE freshness_reader;
DROP EXTENSION cachier CASCADE;
