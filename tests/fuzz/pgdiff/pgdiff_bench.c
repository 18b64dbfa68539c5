/* run.sh bench: classifications per second of a fixed set, BASE's JSON path and the pgtree one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sqlclass.h"
int old_sqlclass_classify(const char *sql, const char *const *dangerous, struct sqlclass_result *ret);
void old_sqlclass_release(struct sqlclass_result *r);
static const char *const stmts[] = {
	"SELECT 1",
	"SELECT id, name, email FROM users WHERE id = $1",
	"INSERT INTO orders (user_id, total, note) VALUES ($1, $2, $3) RETURNING id",
	"UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1",
	"DELETE FROM sessions WHERE expires_at < now()",
	"BEGIN", "COMMIT", "SET search_path = public",
	"SELECT u.id, upper(u.email), count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id "
	"WHERE u.created_at > now() - interval '7 days' GROUP BY u.id, u.email HAVING count(o.id) > 2 ORDER BY 3 DESC LIMIT 10",
	"WITH recent AS (SELECT * FROM orders WHERE created_at > $1) SELECT r.id, r.total FROM recent r "
	"WHERE r.total > (SELECT avg(total) FROM orders)",
	"SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
	"JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm') ORDER BY 1, 2, a.attnum",
	"CREATE TABLE t (id bigserial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())",
	"COPY users (id, name) FROM STDIN WITH (FORMAT csv)",
	"SELECT set_config('search_path', '', false)",
	"SELECT pg_catalog.set_config('search_path', '', false); SELECT 'a\\b'",
};
#define N (sizeof(stmts) / sizeof(stmts[0]))
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	double t_old = 0, t_new = 0;
	long n = 0;
	for (int r = 0; r < rounds; r++) {
		for (int which = 0; which < 2; which++) {
			double t0 = now();
			for (size_t i = 0; i < N; i++) {
				struct sqlclass_result res;
				if ((r + which) % 2) { old_sqlclass_classify(stmts[i], sqlclass_default_dangerous, &res); old_sqlclass_release(&res); }
				else { sqlclass_classify(stmts[i], sqlclass_default_dangerous, &res); sqlclass_release(&res); }
			}
			double dt = now() - t0;
			if ((r + which) % 2) t_old += dt; else t_new += dt;
		}
		n += N;
	}
	printf("%ld classifications each: old (JSON) %.0f/s, new (protobuf) %.0f/s, new/old %.2f\n", n, n / t_old, n / t_new, t_old / t_new);
	return 0;
}
