#!/usr/bin/python3
"""Masking checks with psycopg 3. Usage:
  masking.py prepared HOST PORT        rows of prepared statements, text and binary
  masking.py stream HOST PORT SQL      streams a result row by row; prints rows, bytes
                                       and how many 'email' values were not masked
  masking.py later HOST PORT FLAG SQL  runs "select 1", creates FLAG.ready, waits for FLAG to
                                       exist, then runs SQL
  masking.py errors HOST PORT SQL...   runs each SQL twice as a prepared statement (the second
                                       time a Bind of it only), with one parameter 42 when it
                                       has %s; prints notices and errors: severity, SQLSTATE,
                                       message, detail, hint, context
"""
import logging
import os
import sys
import time

import psycopg

logging.getLogger("psycopg").setLevel(logging.ERROR)

mode, host, port = sys.argv[1], sys.argv[2], sys.argv[3]
dsn = f"host={host} port={port} dbname=postgres user=app connect_timeout=5"


def show(rows):
    for r in rows:
        print("|".join("" if v is None else str(v) for v in r))


with psycopg.connect(dsn, autocommit=True) as conn:
    if mode == "prepared":
        q = "select id, email, phone, card, token from users where id = %s"
        for binary in (False, True):
            for i in (1, 2, 1):  # the third run reuses the prepared statement
                with conn.cursor(binary=binary) as cur:
                    cur.execute(q, (i,), prepare=True)
                    show(cur.fetchall())
    elif mode == "stream":
        rows = nbytes = clear = 0
        with conn.cursor() as cur:
            for r in cur.stream(sys.argv[4]):
                rows += 1
                nbytes += sum(len(str(v)) for v in r)
                if not str(r[1]).startswith("***@"):
                    clear += 1
        print(f"rows {rows} bytes {nbytes} unmasked {clear}")
    elif mode == "later":
        conn.execute("select 1")
        open(sys.argv[4] + ".ready", "w").close()
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.05)
        show(conn.execute(sys.argv[5]).fetchall())
    elif mode == "errors":
        def said(kind, d):
            print(kind, d.severity, d.sqlstate, d.message_primary, d.message_detail, d.message_hint, d.context, sep="|")

        conn.add_notice_handler(lambda d: said("notice", d))
        for sql in sys.argv[4:]:
            for _ in range(2):
                try:
                    conn.execute(sql, (42,) if "%s" in sql else None, prepare=True)
                    print("ok")
                except psycopg.Error as e:
                    said("error", e.diag)
