#!/usr/bin/python3
"""asyncpg compatibility cases; prints a transcript that must be the same straight
to the database and through pgtether. Usage: check.py HOST PORT KILL_SCRIPT"""
import asyncio
import hashlib
import io
import subprocess
import sys

import asyncpg

host, port, kill = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def say(*a):
    print(*a, flush=True)


def code(e):
    state = getattr(e, "sqlstate", None)
    return f"{state} {e}" if state else "connection lost"


async def connect():
    return await asyncpg.connect(host=host, port=port, user="app", database="postgres", timeout=10)


async def main():
    c = await connect()
    say("connected as", await c.fetchval("select current_user"))
    # startup settings: server_settings are startup parameters
    sc = await asyncpg.connect(host=host, port=port, user="app", database="postgres", timeout=10,
                               server_settings={"search_path": "app", "statement_timeout": "4321"})
    say("startup settings", *(await sc.fetchrow("select current_setting('search_path'), current_setting('statement_timeout')")))
    await sc.close()
    await c.execute("create table app.apg (id int primary key, v text, b bytea)")
    # asyncpg prepares every statement (binary results) and caches it: used 12 times
    for i in range(12):
        await c.execute("insert into app.apg values ($1, $2, $3)", i, f"v{i}", bytes([i, 0, 255]))
    n = await c.fetchval("select count(*) from pg_prepared_statements where statement like 'insert into app.apg%'")
    say("prepared executions 12, server-side statements", n)
    blob = bytes(range(256))
    back = await c.fetchval("select $1::bytea", blob)
    say("bytea", len(back), hashlib.md5(back).hexdigest())
    r = await c.fetchrow("select 9007199254740993::int8, 1.5e300::float8, 12345.678901234567890::numeric,"
                         " '2024-02-29 12:34:56.789+00'::timestamptz, array[1,2,3]::int4[], '{\"a\": 1}'::jsonb")
    say("values", r[0], r[1], r[2], r[3].isoformat(), list(r[4]), r[5])
    res = await c.copy_records_to_table("apg", schema_name="app", columns=["id", "v"],
                                        records=[(i, f"copied {i}") for i in range(100, 1100)])
    say("copied in", res)
    out = io.BytesIO()
    res = await c.copy_from_query("select id, v from app.apg order by id", output=out)
    say("copied out", res, "bytes", len(out.getvalue()), hashlib.md5(out.getvalue()).hexdigest())

    l = await connect()
    got = asyncio.get_running_loop().create_future()
    await l.add_listener("chan", lambda conn, pid, ch, payload: got.done() or got.set_result((ch, payload)))
    await c.execute("notify chan, 'payload from asyncpg'")
    ch, payload = await asyncio.wait_for(got, 10)
    say("notification", ch, payload)
    await l.close()

    for q in ("select 1/0", "select * from nowhere", "insert into app.apg values (1, 'dup')"):
        try:
            await c.execute(q)
            say("error none")
        except asyncpg.PostgresError as e:
            say("error", code(e))
    # a timeout cancels the query: asyncpg's own cancel request
    try:
        await c.execute("select pg_sleep(5)", timeout=0.3)
        say("timeout none")
    except asyncio.TimeoutError:
        say("timeout cancelled", await c.fetchval("select 42"))
    await c.execute("drop table app.apg")

    pid = await c.fetchval("select pg_backend_pid()")
    p = subprocess.run([kill, str(pid)], capture_output=True, text=True)
    say("terminated", p.stdout.strip(), str(p.returncode == 0).lower())
    try:
        await c.execute("select 1")
        say("after terminate no error")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError, OSError) as e:
        say("after terminate", code(e))
    await c.close(timeout=5)
    c = await connect()
    say("reconnected", await c.fetchval("select 42"))
    await c.close()


asyncio.run(main())
