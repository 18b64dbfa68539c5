#!/usr/bin/env python3
"""The classifier's differential test: every statement of the corpus runs straight on
PostgreSQL (as the same role, over the cluster's unix socket, which pgtether does not
intercept) and through pgtether under a read-only rule (over TCP, from a process in an
attached cgroup). After each run a fingerprint of the database and of the cluster's
shared objects is taken: through pgtether nothing may change, whatever the statement
did when it ran straight. A database that changed is put back from its template.

Usage: differential.py CORPUS SOCKET_DIR PORT [--read-write] [SETTING=VALUE...]
--read-write: the rule lets the session write (it allows copy_in), so the server does
not run it read-only and pgtether's classification alone must stop every other write.
Server-side code is then the database's own business (the threat model trusts it):
the function that writes is not the role's to execute in that run.
Each SETTING=VALUE becomes the workload role's default in the test database (ALTER
ROLE ... IN DATABASE ... SET), as an admin may have set it: the corpus must hold under
standard_conforming_strings = off too.
Prints one line per case that changed the database through pgtether, a summary line,
and exits non-zero when any did, or when the fixture would not show a write at all.
"""
import sys

import psycopg
from psycopg import pq, sql as pgsql

DB, TEMPLATE = "pgt_diff", "pgt_diff_tpl"

# Objects the corpus names, owned by the workload's role so that what a statement
# would do straight it really does (the read-only rule, not a missing privilege, is
# what must stop it through pgtether).
FIXTURE = """
create table users (id int primary key, name text, email text, a int, age int);
insert into users values (1, 'alice', 'alice@example.com', 1, 30), (2, 'bob', 'bob@example.org', 2, 40);
create table staging (id int, name text, email text, a int, age int);
insert into staging values (1, 'alice2', 'a2@example.com', 1, 31);
create table banned (id int);
insert into banned values (2);
create table orders (id int, user_id int, total numeric);
insert into orders values (10, 1, 9.5);
create table log (id int);
create table t (id int primary key, v int, a bool, b int, x int, y text, name text);
insert into t values (1, 1, true, 1, 1, 'y', 'n');
create table s (id int, v int);
insert into s values (1, 5), (2, 6);
create table u (id int);
create table t1 (id int);
create table t2 (id int);
create table a (id int);
create table b (id int);
create table copy_src (id int);
create sequence seq1;
create schema archive;
-- a function that writes, called from a SELECT: only the server can see that
create function bump() returns int language sql as 'insert into log values (1) returning id';
-- and one that turns the session's default read-write: the server reports it only
-- at the next ReadyForQuery
create function go_rw() returns text language sql as $$ select set_config('default_transaction_read_only', 'off', false) $$;
"""


def connect(**kw):
    return psycopg.connect(autocommit=True, connect_timeout=10, **kw)


def simple(conn, sql):
    """Runs sql as one simple Query (several statements allowed); returns the first
    error's SQLSTATE, or None. COPY in either direction is ended at once."""
    pgc = conn.pgconn
    pgc.send_query(sql.encode())
    state = None
    while True:
        res = pgc.get_result()
        if res is None:
            return state
        if res.status == pq.ExecStatus.COPY_IN:
            pgc.put_copy_end(b"differential test: no data")
        elif res.status == pq.ExecStatus.COPY_OUT:
            while pgc.get_copy_data(0)[0] > 0:
                pass
        elif res.status == pq.ExecStatus.FATAL_ERROR and state is None:
            state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"?").decode()


def fingerprint(admin_host, port):
    """What a statement could have changed: the cluster's roles, databases and role
    settings; the test database's catalog objects outside the system schemas (temp
    schemas included) and the contents of every table, sequence and large object."""
    parts = []
    with connect(host=admin_host, port=port, user="postgres", dbname="postgres") as c:
        parts += c.execute("""
            select format('role %s %s %s %s %s %s %s', rolname, rolsuper, rolinherit, rolcreaterole,
                          rolcreatedb, rolcanlogin, rolbypassrls) from pg_roles
            union all select format('pw %s %s', rolname, md5(coalesce(rolpassword, ''))) from pg_authid
            union all select format('db %s %s', datname, datdba::regrole) from pg_database
            union all select format('setting %s %s %s', (select datname from pg_database where oid = setdatabase),
                                    setrole, setconfig) from pg_db_role_setting
            union all select format('member %s %s', roleid::regrole, member::regrole) from pg_auth_members
            order by 1""").fetchall()
    try:
        c = connect(host=admin_host, port=port, user="postgres", dbname=DB)
    except psycopg.OperationalError as e:
        return parts + [("database gone: %s" % e,)]
    with c:
        parts += c.execute("""
            with ns as (select oid, nspname from pg_namespace
                        where nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
                          and nspname not like 'pg_toast_temp%')
            select format('ns %s %s %s', nspname, nspowner::regrole, nspacl) from pg_namespace
             where oid in (select oid from ns)
            union all select format('rel %s.%s %s %s %s %s %s', ns.nspname, relname, relkind, relowner::regrole,
                                    relacl, relrowsecurity, relpersistence)
              from pg_class c join ns on ns.oid = c.relnamespace
            union all select format('att %s %s %s %s', attrelid, attname, atttypid, attnotnull)
              from pg_attribute join pg_class c on c.oid = attrelid join ns on ns.oid = c.relnamespace
             where attnum > 0 and not attisdropped
            union all select format('proc %s.%s %s %s', ns.nspname, proname, prosecdef, md5(prosrc))
              from pg_proc p join ns on ns.oid = p.pronamespace
            union all select format('type %s.%s', ns.nspname, typname) from pg_type t join ns on ns.oid = t.typnamespace
            union all select format('trigger %s %s', tgrelid, tgname) from pg_trigger where not tgisinternal
            union all select format('rule %s %s', ev_class, rulename) from pg_rewrite r
              join pg_class c on c.oid = r.ev_class join ns on ns.oid = c.relnamespace
            union all select format('policy %s %s', polrelid, polname) from pg_policy
            union all select format('comment %s %s %s', classoid, objoid, md5(description)) from pg_description d
              where objoid >= 16384
            union all select format('ext %s', extname) from pg_extension
            union all select format('pub %s', pubname) from pg_publication
            union all select format('defacl %s', defaclacl) from pg_default_acl
            union all select format('server %s', srvname) from pg_foreign_server
            union all select format('lo %s %s', loid, md5(data)) from pg_largeobject
            union all select format('lo %s %s', oid, lomowner::regrole) from pg_largeobject_metadata
            order by 1""").fetchall()
        for kind, name in c.execute("""
                select c.relkind, format('%I.%I', n.nspname, c.relname) from pg_class c
                  join pg_namespace n on n.oid = c.relnamespace
                 where c.relkind in ('r', 'm', 'p', 'S') and n.nspname not in ('pg_catalog', 'information_schema')
                   and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
                 order by 2""").fetchall():
            if kind == "S":
                q = "select format('seq %%s %%s', last_value, is_called) from %s" % name
            else:
                q = "select format('rows %%s', md5(coalesce(string_agg(x::text, ',' order by x::text), ''))) from %s x" % name
            try:
                parts += [(name,)] + c.execute(q).fetchall()
            except psycopg.Error as e:  # an unpopulated materialized view
                parts += [(name, type(e).__name__)]
    return parts


def reset(admin_host, port, verifier, baseline_roles, settings):
    """Puts back the test database (from its template) and the cluster's shared
    objects the corpus can change: roles, databases, the workload role's attributes."""
    with connect(host=admin_host, port=port, user="postgres", dbname="postgres") as c:
        c.execute("drop database if exists %s with (force)" % DB)
        for (name,) in c.execute("select datname from pg_database where datname not in "
                                 "('postgres', 'template0', 'template1', %s)", (TEMPLATE,)).fetchall():
            c.execute("drop database %s with (force)" % pgsql.Identifier(name).as_string(c))
        c.execute("create database %s template %s owner app" % (DB, TEMPLATE))
        for name, value in settings:
            c.execute("alter role app in database %s set %s = %s"
                      % (DB, pgsql.Identifier(name).as_string(c), pgsql.Literal(value).as_string(c)))
        for (name,) in c.execute("select rolname from pg_roles where rolname <> all(%s)", (baseline_roles,)).fetchall():
            role = pgsql.Identifier(name).as_string(c)
            c.execute("drop owned by %s" % role)
            c.execute("drop role %s" % role)
        c.execute("alter role app nosuperuser nocreatedb nocreaterole nobypassrls inherit login")
        # the stored SCRAM verifier itself, so the fingerprint sees the same salt again
        c.execute("alter role app password %s" % pgsql.Literal(verifier).as_string(c))
        c.execute("alter role all reset all")
        c.execute("alter role app reset all")
        for (role,) in c.execute("select roleid::regrole::text from pg_auth_members where member = 'app'::regrole").fetchall():
            c.execute("revoke %s from app" % role)


def cases(path):
    out, expect, lines, lineno = [], None, [], 0
    for n, line in enumerate(open(path, encoding="utf-8", errors="surrogateescape"), 1):
        line = line.rstrip("\n")
        if line.startswith("-- expect:"):
            if expect is not None and lines:
                out.append((lineno, expect, "\n".join(lines)))
            expect, lines, lineno = line[len("-- expect:"):].strip(), [], n + 1
        elif expect is not None:
            lines.append(line)
    if expect is not None and lines:
        out.append((lineno, expect, "\n".join(lines)))
    return out


def main():
    corpus, sockdir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    read_write = "--read-write" in sys.argv[4:]
    settings = [a.split("=", 1) for a in sys.argv[4:] if not a.startswith("--")]
    with connect(host=sockdir, port=port, user="postgres", dbname="postgres") as c:
        c.execute("drop database if exists %s with (force)" % DB)
        c.execute("drop database if exists %s with (force)" % TEMPLATE)
        c.execute("create database %s owner app" % TEMPLATE)
        baseline_roles = [r for (r,) in c.execute("select rolname from pg_roles").fetchall()]
        verifier = c.execute("select rolpassword from pg_authid where rolname = 'app'").fetchone()[0]
    with connect(host=sockdir, port=port, user="app", dbname=TEMPLATE) as c:
        c.execute(FIXTURE)
    if read_write:
        with connect(host=sockdir, port=port, user="postgres", dbname=TEMPLATE) as c:
            c.execute("alter function bump() owner to postgres")
            c.execute("revoke execute on function bump() from public")
    reset(sockdir, port, verifier, baseline_roles, settings)
    base = fingerprint(sockdir, port)

    failed = changed_straight = denied = 0
    all_cases = cases(corpus)
    for lineno, expect, sql in all_cases:
        text = sql.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        # through pgtether: the connection stays open while the fingerprint is
        # taken, so what it made in its own temp schema counts too
        try:
            through = connect(host="127.0.0.1", port=port, user="app", dbname=DB)
        except psycopg.OperationalError as e:
            print("sql-corpus.sql:%d: cannot connect through pgtether: %s" % (lineno, e))
            failed += 1
            continue
        state = simple(through, text)
        if state == "42501":
            denied += 1
        after = fingerprint(sockdir, port)
        through.close()
        if after != base:
            diff = sorted(set(after) ^ set(base))[:4]
            print("sql-corpus.sql:%d: [%s] changed the database through pgtether (%s): %s\n    %s"
                  % (lineno, expect, state or "no error", text.replace("\n", " ")[:200], diff))
            failed += 1
            reset(sockdir, port, verifier, baseline_roles, settings)
        # straight, as the same role: shows what the statement does when nothing stops it
        try:
            with connect(host=sockdir, port=port, user="app", dbname=DB,
                         options="-c statement_timeout=5000 -c lock_timeout=2000") as straight:
                simple(straight, text)
        except psycopg.Error:
            pass
        if fingerprint(sockdir, port) != base:
            changed_straight += 1
            reset(sockdir, port, verifier, baseline_roles, settings)
            again = fingerprint(sockdir, port)
            if again != base:
                print("sql-corpus.sql:%d: the fixture could not be put back: %s"
                      % (lineno, sorted(set(again) ^ set(base))[:4]))
                return 2

    print("differential%s: %d cases, %d changed the database straight, %d denied by pgtether, "
          "%d changed it through pgtether" % ("".join(" " + a for a in sys.argv[4:]), len(all_cases), changed_straight, denied, failed))
    # a fixture in which almost nothing writes would make this test prove nothing
    if changed_straight < 40:
        print("differential: only %d cases changed the database straight: the fixture is broken" % changed_straight)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
