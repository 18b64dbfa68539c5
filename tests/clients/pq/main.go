// lib/pq (database/sql) compatibility cases; prints a transcript that must be the
// same straight to the database and through pgtether.
// Usage: pq HOST PORT KILL_SCRIPT (KILL_SCRIPT PID ends that backend as an admin).
package main

import (
	"context"
	"crypto/md5"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/lib/pq"
)

var host, port, kill = os.Args[1], os.Args[2], os.Args[3]

func dsn() string {
	return fmt.Sprintf("host=%s port=%s user=app dbname=postgres sslmode=disable connect_timeout=10", host, port)
}

func say(a ...interface{}) { fmt.Println(a...) }

func code(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s %s", pe.Code, pe.Message)
	}
	if err != nil {
		return "connection lost"
	}
	return "no error"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAILED", err)
		os.Exit(1)
	}
}

func main() {
	ctx := context.Background()
	db, err := sql.Open("postgres", dsn())
	must(err)
	db.SetMaxOpenConns(4)
	c, err := db.Conn(ctx)
	must(err)
	var user string
	must(c.QueryRowContext(ctx, "select current_user").Scan(&user))
	say("connected as", user)

	// startup settings: options= and a DSN key lib/pq does not know (a startup parameter)
	sdb, err := sql.Open("postgres", dsn()+" options='-c statement_timeout=4321' search_path=app")
	must(err)
	var sp, stt string
	must(sdb.QueryRowContext(ctx, "select current_setting('search_path'), current_setting('statement_timeout')").Scan(&sp, &stt))
	say("startup settings", sp, stt)
	must(sdb.Close())
	_, err = c.ExecContext(ctx, "create table app.pq (id int primary key, v text, b bytea)")
	must(err)

	// a server-side prepared statement, used past any threshold
	st, err := c.PrepareContext(ctx, "insert into app.pq values ($1, $2, $3)")
	must(err)
	for i := 0; i < 12; i++ {
		_, err = st.ExecContext(ctx, i, fmt.Sprintf("v%d", i), []byte{byte(i), 0, 255})
		must(err)
	}
	var n int
	must(c.QueryRowContext(ctx, "select count(*) from pg_prepared_statements where not from_sql").Scan(&n))
	say("prepared executions 12, server-side statements", n)
	must(st.Close())

	// binary: bytea both ways, and typed values
	blob := make([]byte, 256)
	for i := range blob {
		blob[i] = byte(i)
	}
	var back []byte
	must(c.QueryRowContext(ctx, "select $1::bytea", blob).Scan(&back))
	say("bytea", len(back), fmt.Sprintf("%x", md5.Sum(back)))
	var i8 int64
	var f8 float64
	var num, ts string
	must(c.QueryRowContext(ctx, "select 9007199254740993::int8, 1.5e300::float8, 12345.678901234567890::numeric::text, '2024-02-29 12:34:56.789+00'::timestamptz::text").Scan(&i8, &f8, &num, &ts))
	say("values", i8, f8, num, ts)

	// COPY FROM STDIN (lib/pq has no COPY TO STDOUT: read it back with a query)
	tx, err := c.BeginTx(ctx, nil)
	must(err)
	cp, err := tx.PrepareContext(ctx, pq.CopyInSchema("app", "pq", "id", "v"))
	must(err)
	for i := 100; i < 1100; i++ {
		_, err = cp.ExecContext(ctx, i, fmt.Sprintf("copied %d", i))
		must(err)
	}
	_, err = cp.ExecContext(ctx)
	must(err)
	must(cp.Close())
	must(tx.Commit())
	var sum string
	must(c.QueryRowContext(ctx, "select count(*) || ' ' || md5(string_agg(id || v, ',' order by id)) from app.pq").Scan(&sum))
	say("copied in, table", sum)

	// LISTEN / NOTIFY
	l := pq.NewListener(dsn(), time.Second, time.Second, nil)
	must(l.Listen("chan"))
	_, err = c.ExecContext(ctx, "notify chan, 'payload from lib/pq'")
	must(err)
	select {
	case m := <-l.Notify:
		say("notification", m.Channel, m.Extra)
	case <-time.After(10 * time.Second):
		say("no notification")
	}
	must(l.Close())

	// errors with SQLSTATE; the connection stays usable
	for _, q := range []string{"select 1/0", "select * from nowhere", "insert into app.pq values (1, 'dup')"} {
		_, err = c.ExecContext(ctx, q)
		say("error", code(err))
	}
	_, err = c.ExecContext(ctx, "drop table app.pq")
	must(err)

	// the backend ended under the client, then a new connection
	var pid int
	must(c.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&pid))
	out, err := exec.Command(kill, fmt.Sprint(pid)).CombinedOutput()
	say("terminated", strings.TrimSpace(string(out)), err == nil)
	_, err = c.ExecContext(ctx, "select 1")
	say("after terminate", code(err))
	c.Close()
	c2, err := db.Conn(ctx)
	must(err)
	must(c2.QueryRowContext(ctx, "select 42").Scan(&n))
	say("reconnected", n)
	c2.Close()
	db.Close()
}
