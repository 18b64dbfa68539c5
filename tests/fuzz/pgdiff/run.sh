#!/usr/bin/env bash
# The differential check that proved daemon/pgtree.c (libpg_query's protobuf tree read
# as its JSON tree) changes nothing the SQL walkers decide: the walkers of BASE (the
# commit before pgtree, reading pg_query_parse's JSON with jansson) and the current
# ones are linked into one binary (BASE's under old_* names) and every output of both
# is compared: sqlclass_classify's whole result (classes, tables, functions, columns,
# calls, guard, errors), sqlclass_guard_text, sqlclass_constant_select,
# sqlclass_view_columns, searchpath_scan and sqlclass_parse_tree; and both trees
# themselves (json_loads of the JSON against pgtree, key order included).
#
# It holds only while the walkers are unchanged since BASE: a later change to them
# shows up here as a difference. Not part of `make test`.
#
#   tests/fuzz/pgdiff/run.sh texts FILE...       one text per FILE; "-s FILE": one per line (\n escaped)
#   tests/fuzz/pgdiff/run.sh fuzz SECONDS [DIR]  libFuzzer from the sqlclass seeds; aborts on a difference
#   tests/fuzz/pgdiff/run.sh bench [ROUNDS]      classifications per second, old and new, interleaved
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
mode=${1:?usage: run.sh texts|fuzz|bench ...}
shift
base=${PGDIFF_BASE:-$(git log --format=%H --diff-filter=A -1 -- daemon/pgtree.c)^}
if [ "$mode" = fuzz ]; then
  build=build/fuzz cc=clang
  flags=(-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  make --no-print-directory BUILD=$build CC=$cc FUZZ=1 -j2 $build/fuzz_sqlclass >/dev/null
else
  build=build cc=${CC:-cc} flags=(-O2 -g)
  make --no-print-directory -j2 all >/dev/null
fi
out=$build/pgdiff
mkdir -p $out/old
for f in sqlclass.c sqlclass_out.c sqlguard.c searchpath.c sqlclass.h sqlclass_int.h sqlguard.h searchpath.h; do
  git show "$base:daemon/$f" > $out/old/$f
done
# BASE's global symbols get old_ names; its own sqlclass.h goes first (policy.h includes the current one)
: > $out/old/rename.h
for f in sqlclass sqlclass_out sqlguard searchpath; do
  $cc -std=gnu11 -D_GNU_SOURCE -I$out/old -Idaemon -I$build -include $out/old/sqlclass.h -c $out/old/$f.c -o $out/old/$f.o
done
nm --defined-only -g $out/old/*.o | awk 'NF == 3 { print "#define " $3 " old_" $3 }' | sort -u > $out/old/rename.h
for f in sqlclass sqlclass_out sqlguard searchpath; do
  $cc -std=gnu11 -D_GNU_SOURCE "${flags[@]}" -I$out/old -Idaemon -I$build -include $out/old/rename.h \
    -include $out/old/sqlclass.h -c $out/old/$f.c -o $out/old/$f.o
done
pure=$(sed -n 's/^PURE *:= *//p' Makefile)
objs=$(for p in $pure; do echo $build/obj/$p.o; done)
libs="-Wl,--wrap=pg_query_raw_parse -lbpf -lelf -lz -ljansson -ljwt -l:libpg_query.a -lssl -lcrypto -pthread $(pkg-config --libs libnl-3.0)"
old=$(ls $out/old/*.o)
case $mode in
texts)
  $cc -std=gnu11 -D_GNU_SOURCE "${flags[@]}" -Idaemon -I$build tests/fuzz/pgdiff/pgdiff.c tests/fuzz/pgdiff/pgdiff_main.c \
    $old $objs $libs -o $out/pgdiff
  $out/pgdiff "$@" ;;
fuzz)
  $cc -std=gnu11 -D_GNU_SOURCE "${flags[@]}" -fsanitize=fuzzer -Idaemon -I$build tests/fuzz/pgdiff/pgdiff.c \
    tests/fuzz/pgdiff/fuzz_pgdiff.c $old $objs $libs -o $out/fuzz_pgdiff
  seconds=${1:?run.sh fuzz SECONDS}
  work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/pgtether-pgdiff.XXXXXX")}
  mkdir -p "$work/corpus" "$work/crashes"
  ASAN_OPTIONS=malloc_context_size=2 $out/fuzz_pgdiff -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=1536 -max_len=2048 -artifact_prefix="$work/crashes/" "$work/corpus" tests/fuzz/corpus/sqlclass ;;
bench)
  $cc -std=gnu11 -D_GNU_SOURCE "${flags[@]}" -Idaemon -I$build tests/fuzz/pgdiff/pgdiff_bench.c $old $objs $libs -o $out/bench
  $out/bench "${1:-200}" ;;
*) echo "run.sh: texts, fuzz or bench" >&2; exit 2 ;;
esac
