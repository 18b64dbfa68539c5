// pgx (v4) compatibility cases; prints a transcript that must be the same straight
// to the database and through pgtether.
// Usage: pgx HOST PORT KILL_SCRIPT (KILL_SCRIPT PID ends that backend as an admin).
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
)

var host, port, kill = os.Args[1], os.Args[2], os.Args[3]

func say(a ...interface{}) { fmt.Println(a...) }

func code(err error) string {
	var pe *pgconn.PgError
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

func connect(ctx context.Context) *pgx.Conn {
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=app dbname=postgres sslmode=disable connect_timeout=10", host, port))
	must(err)
	return c
}

func main() {
	ctx := context.Background()
	c := connect(ctx)
	var user string
	must(c.QueryRow(ctx, "select current_user").Scan(&user))
	say("connected as", user)

	// startup settings: a DSN's keys pgx does not know are startup parameters (RuntimeParams)
	sc, err2 := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=app dbname=postgres sslmode=disable connect_timeout=10 search_path=app statement_timeout=4321", host, port))
	must(err2)
	var sp, stt string
	must(sc.QueryRow(ctx, "select current_setting('search_path'), current_setting('statement_timeout')").Scan(&sp, &stt))
	say("startup settings", sp, stt)
	must(sc.Close(ctx))
	_, err := c.Exec(ctx, "create table app.pgx (id int primary key, v text, b bytea)")
	must(err)

	// pgx prepares every statement it runs (its statement cache): used 12 times
	for i := 0; i < 12; i++ {
		_, err = c.Exec(ctx, "insert into app.pgx values ($1, $2, $3)", i, fmt.Sprintf("v%d", i), []byte{byte(i), 0, 255})
		must(err)
	}
	var n int
	must(c.QueryRow(ctx, "select count(*) from pg_prepared_statements where statement like 'insert into app.pgx%'").Scan(&n))
	say("prepared executions 12, server-side statements", n)

	// binary: pgx asks for binary results of the types it knows
	blob := make([]byte, 256)
	for i := range blob {
		blob[i] = byte(i)
	}
	var back []byte
	must(c.QueryRow(ctx, "select $1::bytea", blob).Scan(&back))
	say("bytea", len(back), fmt.Sprintf("%x", md5.Sum(back)))
	var i8 int64
	var f8 float64
	var ts time.Time
	var arr []int32
	var num string
	must(c.QueryRow(ctx, "select 9007199254740993::int8, 1.5e300::float8, '2024-02-29 12:34:56.789+00'::timestamptz, array[1,2,3]::int4[], 12345.678901234567890::numeric::text").Scan(&i8, &f8, &ts, &arr, &num))
	say("values", i8, f8, ts.UTC().Format(time.RFC3339Nano), arr, num)

	// COPY both ways
	rows := [][]interface{}{}
	for i := 100; i < 1100; i++ {
		rows = append(rows, []interface{}{i, fmt.Sprintf("copied %d", i)})
	}
	cn, err := c.CopyFrom(ctx, pgx.Identifier{"app", "pgx"}, []string{"id", "v"}, pgx.CopyFromRows(rows))
	must(err)
	say("copied in", cn)
	var buf bytes.Buffer
	tag, err := c.PgConn().CopyTo(ctx, &buf, "copy (select id, v from app.pgx order by id) to stdout")
	must(err)
	say("copied out", tag.RowsAffected(), "bytes", buf.Len(), fmt.Sprintf("%x", md5.Sum(buf.Bytes())))

	// LISTEN / NOTIFY on a second connection
	l := connect(ctx)
	_, err = l.Exec(ctx, "listen chan")
	must(err)
	_, err = c.Exec(ctx, "notify chan, 'payload from pgx'")
	must(err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	m, err := l.WaitForNotification(wctx)
	cancel()
	must(err)
	say("notification", m.Channel, m.Payload)
	l.Close(ctx)

	// errors with SQLSTATE; the connection stays usable
	for _, q := range []string{"select 1/0", "select * from nowhere", "insert into app.pgx values (1, 'dup')"} {
		_, err = c.Exec(ctx, q)
		say("error", code(err))
	}
	// a context that ends cancels the query: pgx's own cancel request
	qctx, qcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.Exec(qctx, "select pg_sleep(5)")
	qcancel()
	say("context cancel", code(err))
	if c.IsClosed() {
		c = connect(ctx) // pgx v4 closes a connection whose query a context ended
	}
	_, err = c.Exec(ctx, "drop table app.pgx")
	must(err)

	// the backend ended under the client, then a new connection
	var pid int
	must(c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid))
	out, err := exec.Command(kill, fmt.Sprint(pid)).CombinedOutput()
	say("terminated", strings.TrimSpace(string(out)), err == nil)
	_, err = c.Exec(ctx, "select 1")
	say("after terminate", code(err))
	c.Close(ctx)
	c = connect(ctx)
	must(c.QueryRow(ctx, "select 42").Scan(&n))
	say("reconnected", n)
	c.Close(ctx)
}
