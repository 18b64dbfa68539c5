#!/usr/bin/python3
"""Per-test results of a Go test binary run with -test.v, straight and through
pgtether, compared.

  results.py DIRECT THROUGH DIFFER [RETRY...]

DIRECT and THROUGH are the two outputs; DIFFER lists the tests that differ on purpose
(one name a line, '#' comments); each RETRY is the output of a rerun, through
pgtether, of tests that passed straight but not through. Every test that passed
straight must pass through (or in a retry), except those listed; each listed one must
pass straight and not through, so the list says what really differs. Prints a
summary line, then one line for each problem ("differs NAME STRAIGHT THROUGH",
"listed NAME ..."), and for the caller a line "rerun NAME PATTERN" for each test
worth a retry. Exits 1 on any problem."""
import re
import sys

RESULT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(")


def results(path):
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = RESULT.match(line)
            if m:
                out[m.group(2)] = m.group(1)
    return out


def run_pattern(name):
    # -test.run takes one regular expression per level of subtest
    return "/".join("^" + re.escape(part) + "$" for part in name.split("/"))


def main():
    direct, through = results(sys.argv[1]), results(sys.argv[2])
    listed = []
    with open(sys.argv[3]) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                listed.append(line)
    retried = {}
    for path in sys.argv[4:]:
        for name, status in results(path).items():
            if status == "PASS":
                retried[name] = status
    # a test fails when one of its subtests does: a listed subtest excuses its parents
    excused = set()
    for name in listed:
        parts = name.split("/")
        excused.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    problems, reruns = [], []
    for name in listed:
        if direct.get(name) != "PASS" or through.get(name) == "PASS":
            problems.append("listed %s %s %s (on the list, but does not pass straight and fail through)"
                            % (name, direct.get(name, "missing"), through.get(name, "missing")))
    straight_passed = [n for n, s in direct.items() if s == "PASS"]
    through_passed = [n for n in straight_passed if through.get(n) == "PASS"]
    for name in straight_passed:
        if through.get(name) == "PASS" or name in excused:
            continue
        if name in retried:
            print("retried %s: %s through pgtether, passed when run again" % (name, through.get(name, "missing")))
            continue
        problems.append("differs %s %s %s" % (name, "PASS", through.get(name, "missing")))
        reruns.append("rerun %s %s" % (name, run_pattern(name)))
    print("%d passed straight, %d of them through pgtether, %d differ on purpose, %d retried, "
          "%d failed straight, %d skipped straight"
          % (len(straight_passed), len(through_passed), len(listed),
             sum(1 for n in retried if n in direct and through.get(n) != "PASS"),
             sum(1 for s in direct.values() if s == "FAIL"), sum(1 for s in direct.values() if s == "SKIP")))
    for line in problems + reruns:
        print(line)
    return 1 if problems else 0


sys.exit(main())
