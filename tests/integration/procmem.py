#!/usr/bin/env python3
"""What another process's memory holds, and who may look at it.

  procmem.py scan PID...   searches every readable mapping of each PID (/proc/PID/maps,
                           read through /proc/PID/mem) for the bytes in $PGT_NEEDLE;
                           prints "PID found|absent mappings=M bytes=B" per PID.
                           Exit 0 once every PID was scanned, 2 when one could not be.
  procmem.py probe PID     as the calling user: may it ptrace-attach PID, read
                           /proc/PID/mem? Prints "ptrace=OK|ERRNO mem=OK|ERRNO";
                           exit 0 when both were refused, 1 otherwise.

The needle comes from the environment, not argv, so that it is not in this process's
command line. Mappings above SKIP_ABOVE are an ASan build's shadow memory (terabytes
reserved, never data): reading them page by page would not finish."""
import ctypes
import errno
import os
import sys

CHUNK = 1 << 20
SKIP_ABOVE = 16 << 30


def scan(pid, needle):
    found, mappings, total = False, 0, 0
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            perms = fields[1]
            name = fields[5] if len(fields) > 5 else ""
            if perms[0] != "r" or hi - lo > SKIP_ABOVE or name in ("[vvar]", "[vsyscall]"):
                continue
            mappings += 1
            tail = b""
            addr = lo
            while addr < hi:
                n = min(CHUNK, hi - addr)
                try:
                    mem.seek(addr)
                    data = mem.read(n)
                except OSError:
                    data = b""
                if not data:
                    tail = b""
                    addr += n
                    continue
                total += len(data)
                if needle in tail + data:
                    found = True
                # a needle across a chunk boundary
                tail = data[-(len(needle) - 1):] if len(needle) > 1 else b""
                addr += n
    return found, mappings, total


def probe(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    PTRACE_ATTACH, PTRACE_DETACH = 16, 17
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
        pt = "OK"
        os.waitpid(pid, 0)
        libc.ptrace(PTRACE_DETACH, pid, None, None)
    else:
        pt = errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    try:
        with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
            with open("/proc/%d/maps" % pid) as f:
                lo = int(f.readline().split("-")[0], 16)
            mem.seek(lo)
            mem.read(1)
        mm = "OK"
    except OSError as e:
        mm = errno.errorcode.get(e.errno, str(e.errno))
    print("ptrace=%s mem=%s" % (pt, mm))
    return 0 if pt != "OK" and mm != "OK" else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "scan":
        needle = os.environb.get(b"PGT_NEEDLE", b"")
        if len(needle) < 8:
            print("PGT_NEEDLE must hold at least 8 bytes", file=sys.stderr)
            return 2
        rc = 0
        for p in sys.argv[2:]:
            try:
                found, m, b = scan(int(p), needle)
            except OSError as e:
                print("%s error %s" % (p, e))
                rc = 2
                continue
            if m == 0 or b == 0:
                rc = 2
            print("%s %s mappings=%d bytes=%d" % (p, "found" if found else "absent", m, b))
        return rc
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        return probe(int(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


sys.exit(main())
