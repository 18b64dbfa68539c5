#!/usr/bin/python3
"""Where the tasks of one bulk read ran (bench/sched-probe.sh).

  sched-summary.py read PERF_DATA "PID ..."   one line of key=value for one read
  sched-summary.py table FILE                 the lines of FILE, grouped by setup

PERF_DATA is a `perf record -a -e sched:sched_switch,sched:sched_wakeup` taken around
one read; PIDS are the daemon's processes. The read's three busy tasks are picked by
their CPU time: the daemon's process that ran most (the session's worker, W), psql (P)
and the postgres process that ran most (its backend, B). For each: milliseconds on
CPU 0 and 1, sleeps (switched out not runnable), preemptions (switched out runnable),
run-queue wait, and who woke it. The window is psql's first to last switch.
"""
import collections
import re
import statistics
import subprocess
import sys

LINE = re.compile(r'^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
SWITCH = re.compile(r'prev_comm=(.*?) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)')
WAKE = re.compile(r'(?:^|\s)pid=(\d+)')


def events(path):
    out = subprocess.run(['perf', 'script', '-i', path, '-F', 'comm,tid,cpu,time,event,trace'],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            yield m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), m.group(5), m.group(6)


def read(path, pids):
    ev = list(events(path))
    comm, run, oncpu = {}, collections.Counter(), {}
    for _, _, cpu, t, e, tr in ev:
        if e != 'sched:sched_switch':
            continue
        m = SWITCH.search(tr)
        prev, nxt = int(m.group(2)), int(m.group(5))
        comm[prev], comm[nxt] = m.group(1), m.group(4)
        if prev in oncpu:
            run[prev] += t - oncpu.pop(prev)
        oncpu[nxt] = t
    busiest = lambda pred: max((p for p in run if pred(p)), key=lambda p: run[p])
    roles = {busiest(lambda p: p in pids): 'W', busiest(lambda p: comm.get(p) == 'psql'): 'P',
             busiest(lambda p: comm.get(p) == 'postgres'): 'B'}
    psql = next(p for p, r in roles.items() if r == 'P')
    ts = [t for _, _, _, t, e, tr in ev if e == 'sched:sched_switch' and f'next_pid={psql} ' in tr]
    t0, t1 = min(ts), max(ts)
    st = {r: dict(cpu=collections.Counter(), sleep=0, pre=0, wait=0.0, wakers=collections.Counter()) for r in 'WPB'}
    others = collections.Counter()
    oncpu, woken = {}, {}
    for c, tid, cpu, t, e, tr in ev:
        if t < t0 or t > t1:
            continue
        if e == 'sched:sched_switch':
            m = SWITCH.search(tr)
            prev, state, nxt = int(m.group(2)), m.group(3), int(m.group(5))
            if prev in oncpu:
                ran = t - oncpu.pop(prev)
                if prev in roles:
                    st[roles[prev]]['cpu'][cpu] += ran
                elif prev != 0:
                    others[m.group(1).split('/')[0]] += ran
            if prev in roles:
                if state.startswith('R'):
                    st[roles[prev]]['pre'] += 1
                    woken[prev] = t
                else:
                    st[roles[prev]]['sleep'] += 1
            oncpu[nxt] = t
            if nxt in roles and nxt in woken:
                st[roles[nxt]]['wait'] += t - woken.pop(nxt)
        elif e == 'sched:sched_wakeup':
            pid = int(WAKE.search(tr).group(1))
            if pid in roles:
                st[roles[pid]]['wakers'][roles.get(tid, c)] += 1
                woken.setdefault(pid, t)
    main = {r: 0 if st[r]['cpu'][0] >= st[r]['cpu'][1] else 1 for r in 'WPB'}
    if main['W'] == main['B'] == main['P']:
        place = 'all-on-one'
    elif main['W'] == main['B']:
        place = 'W+B'
    elif main['W'] == main['P']:
        place = 'W+P'
    else:
        place = 'W-alone'
    out = [f'window={t1 - t0:.3f}', f'place={place}']
    for r in 'WPB':
        s = st[r]
        out.append(f"{r}.cpu0={s['cpu'][0] * 1000:.0f} {r}.cpu1={s['cpu'][1] * 1000:.0f} {r}.sleeps={s['sleep']} "
                   f"{r}.preempted={s['pre']} {r}.wait={s['wait'] * 1000:.0f} "
                   f"{r}.woken_by={','.join(f'{k}:{v}' for k, v in s['wakers'].most_common(2))}")
    out.append(f"others={sum(others.values()) * 1000:.0f}")
    print(' '.join(out))


def table(path):
    by = collections.defaultdict(list)
    for line in open(path):
        kv = dict(re.findall(r'(\S+?)=(\S+)', line))
        if 'setup' in kv and 'seconds' in kv:
            by[kv['setup']].append(kv)
    print('| setup | reads | mean s | W sleeps, mean | W-alone | W+P | W+B | all-on-one | '
          's, < 2000 W sleeps | s, >= 2000 |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for setup, rows in by.items():
        mean = lambda xs: f'{statistics.mean(xs):.3f} ({len(xs)})' if xs else '-'
        places = collections.Counter(r['place'] for r in rows)
        few = [float(r['seconds']) for r in rows if int(r['W.sleeps']) < 2000]
        many = [float(r['seconds']) for r in rows if int(r['W.sleeps']) >= 2000]
        print(f"| {setup} | {len(rows)} | {statistics.mean(float(r['seconds']) for r in rows):.3f} | "
              f"{statistics.mean(int(r['W.sleeps']) for r in rows):.0f} | {places['W-alone']} | {places['W+P']} | "
              f"{places['W+B']} | {places['all-on-one']} | {mean(few)} | {mean(many)} |")


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == 'read':
        read(sys.argv[2], set(map(int, sys.argv[3].split())))
    elif len(sys.argv) == 3 and sys.argv[1] == 'table':
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
