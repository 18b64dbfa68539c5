#!/usr/bin/python3
"""psycopg 3 compatibility cases; prints a transcript that must be the same straight
to the database and through pgtether. Usage: psycopg_check.py HOST PORT"""
import logging
import sys
import threading
import time

import psycopg
from psycopg import errors

# psycopg logs "error ignored terminating <Pipeline>" or not depending on when the
# server's error reaches it inside the pipeline block: a race in the client, seen
# straight to the database as well. The transcript compares what the program sees.
logging.getLogger("psycopg").setLevel(logging.ERROR)

host, port = sys.argv[1], sys.argv[2]
dsn = f"host={host} port={port} dbname=postgres user=app connect_timeout=5"
out = []


def say(*a):
    out.append(" ".join(str(x) for x in a))


with psycopg.connect(dsn, autocommit=True) as conn:
    conn.add_notice_handler(lambda d: say("notice", d.severity, d.message_primary))
    conn.execute("create table app.py (id int primary key, v text)")

    # prepared statements (prepare=True forces the extended protocol with names)
    for i in range(3):
        conn.execute("insert into app.py values (%s, %s)", (i, f"v{i}"), prepare=True)
    say("rows", conn.execute("select count(*) from app.py").fetchone()[0])

    # server-side cursor, fetched in batches
    with conn.transaction():
        with conn.cursor(name="ssc") as cur:
            cur.itersize = 2
            cur.execute("select g from generate_series(1, 7) g")
            say("ssc", [r[0] for r in cur])

    # COPY both ways
    with conn.cursor() as cur:
        with cur.copy("copy app.py (id, v) from stdin") as cp:
            for i in range(10, 1010):
                cp.write_row((i, f"copied {i}"))
        say("copied in", cur.rowcount)
        data = b""
        with cur.copy("copy (select * from app.py order by id) to stdout") as cp:
            for block in cp:
                data += bytes(block)
        say("copied out bytes", len(data), "lines", data.count(b"\n"))

    # pipeline mode
    with conn.pipeline():
        cur1 = conn.execute("select 'p1'")
        cur2 = conn.execute("select 'p2', %s::int", (5,))
        cur3 = conn.execute("select 1/0") if False else None
    say("pipeline", cur1.fetchone(), cur2.fetchone())
    try:
        with conn.pipeline():
            conn.execute("select 'before error'")
            conn.execute("select 1/0")
            conn.execute("select 'after error'")
    except errors.DivisionByZero as e:
        say("pipeline error", e.sqlstate)

    # errors keep their SQLSTATE
    for sql in ("select * from nowhere", "select 1/0", "insert into app.py values (0, 'dup')"):
        try:
            conn.execute(sql)
        except psycopg.Error as e:
            say("error", e.sqlstate, e.diag.message_primary)

    conn.execute("do $$ begin raise notice 'hello from %', 'plpgsql'; end $$")

    # conn.cancel() from another thread ends a long query with 57014
    def cancel_soon():
        time.sleep(0.5)
        conn.cancel()

    t = threading.Thread(target=cancel_soon)
    t.start()
    started = time.monotonic()
    try:
        conn.execute("select pg_sleep(30)")
    except errors.QueryCanceled as e:
        say("cancelled", e.sqlstate, "fast" if time.monotonic() - started < 5 else "slow")
    t.join()
    say("usable after cancel", conn.execute("select 42").fetchone()[0])
    conn.execute("drop table app.py")

print("\n".join(out))
