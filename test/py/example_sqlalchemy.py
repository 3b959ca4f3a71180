from sqlalchemy import create_engine, text  # SQLAlchemy 1.4, psycopg2 driver

engine = create_engine("postgresql+psycopg2://", future=True)  # PGHOST, ... as for psql
with engine.begin() as conn:
    for _ in range(3):
        print(conn.execute(text("SELECT geocode_cached(:address)"),
                           {"address": "1 Main St"}).scalar_one())
    print(conn.execute(text("SELECT cachier_wrap(:fn, :address)"),
                       {"fn": "geocode", "address": "1 Main St"}).scalar_one())
    print(conn.execute(text("SELECT cachier_clear(:fn)"), {"fn": "geocode"}).scalar_one())
    print("computed:", conn.execute(text("SELECT geocode_executions()")).scalar_one())
