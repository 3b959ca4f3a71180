import psycopg2  # psycopg2: parameters are quoted into the query text

conn = psycopg2.connect("")  # host, database, user: PGHOST, ... as for psql
with conn, conn.cursor() as cur:
    for _ in range(3):
        cur.execute("SELECT geocode_cached(%s)", ["1 Main St"])
        print(cur.fetchone()[0])
    cur.execute("SELECT cachier_wrap(%s, %s)", ["geocode_cached", "1 Main St"])
    print(cur.fetchone()[0])
    cur.execute("SELECT cachier_precache(%s, %s, %s)", ["geocode", "(7,7)", "3 Hill Rd"])
    cur.execute("SELECT cachier_clear(%s)", ["geocode"])
    print(cur.fetchone()[0])
    cur.execute("SELECT geocode_executions()")
    print("computed:", cur.fetchone()[0])
conn.close()
