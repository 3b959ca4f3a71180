import psycopg  # psycopg 3: parameters are bound by the server

with psycopg.connect() as conn:  # host, database, user: PGHOST, ... as for psql
    # the wrapper takes parameters as the function does
    for _ in range(3):
        print(conn.execute("SELECT geocode_cached(%s)", ["1 Main St"]).fetchone()[0])
    # cachier_wrap returns the result's text form; a wrapper's name means its function
    print(conn.execute("SELECT cachier_wrap(%s, %s)", ["geocode", "1 Main St"]).fetchone()[0])
    print(conn.execute("SELECT cachier_wrap(%s, %s)", ["geocode_cached", "22 Side Street"],
                       prepare=True).fetchone()[0])
    # store a value without computing it; remove one entry, then all
    conn.execute("SELECT cachier_precache(%s, %s, %s)", ["geocode", "(7,7)", "3 Hill Rd"])
    print(conn.execute("SELECT geocode_cached(%s)", ["3 Hill Rd"]).fetchone()[0])
    print(conn.execute("SELECT cachier_clear(%s, %s)", ["geocode", "1 Main St"]).fetchone()[0])
    print(conn.execute("SELECT cachier_clear(%s)", ["geocode_cached"]).fetchone()[0])
    print("computed:", conn.execute("SELECT geocode_executions()").fetchone()[0])
