-- cachier_wrap: calls through the cache, resolution of the function name
CREATE EXTENSION cachier;
CREATE SEQUENCE calls;
CREATE FUNCTION slow_add(a int, b int DEFAULT 10) RETURNS int
LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('calls'); RETURN a + b; END $$;

-- the first call computes, the second is served from the cache
SELECT cachier_wrap('slow_add', 1, 2);
SELECT cachier_wrap('slow_add', 1, 2);
SELECT last_value AS executions FROM calls;
