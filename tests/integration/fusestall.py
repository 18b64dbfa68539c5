#!/usr/bin/python3
"""A FUSE filesystem that never answers: mounts itself at DIR over raw /dev/fuse,
answers the kernel's FUSE_INIT, then reads nothing more, so every request the kernel
makes of it (the LOOKUP of any name below DIR) waits for as long as this process
holds /dev/fuse open. Killing it closes the device, which aborts the connection: every
waiter gets ENOTCONN at once.

  fusestall.py DIR READY_FILE [EXE]

writes "ok" to READY_FILE once mounted and initialised, then sleeps until killed.
With EXE, it serves instead one file, DIR/exe, a copy of EXE's bytes (mode 0755), to
everyone but pgtetherd: an open of it by a pgtetherd thread (the executable's hasher)
is never answered, so a workload runs the binary while pgtetherd's hash of it waits,
until the kernel interrupts it (only a fatal signal does: pgtetherd's threads block
the others), answered EINTR as a well-behaved server does, so the daemon can exit.
No libfuse: the kernel's protocol (include/uapi/linux/fuse.h), version 7.31 replies.
"""
import ctypes
import errno
import os
import signal
import struct
import sys
import time

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_OPEN, FUSE_READ = 1, 2, 3, 14, 15
FUSE_RELEASE, FUSE_FLUSH, FUSE_INIT, FUSE_OPENDIR, FUSE_RELEASEDIR = 18, 25, 26, 27, 29
FUSE_INTERRUPT, FUSE_BATCH_FORGET = 36, 42
IN_HEADER = struct.Struct("<IIQQIIII")   # len, opcode, unique, nodeid, uid, gid, pid, padding
OUT_HEADER = struct.Struct("<IiQ")       # len, error, unique
INIT_IN = struct.Struct("<IIII")         # major, minor, max_readahead, flags
# major, minor, max_readahead, flags, max_background, congestion_threshold, max_write,
# time_gran, max_pages, map_alignment, flags2, unused[7]
INIT_OUT = struct.Struct("<IIIIHHIIHHI7I")
# ino, size, blocks, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, nlink,
# uid, gid, rdev, blksize, padding
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
ENTRY_OUT = struct.Struct("<QQQQII")     # nodeid, generation, entry_valid, attr_valid, nsecs
ATTR_OUT = struct.Struct("<QII")         # attr_valid, attr_valid_nsec, dummy
OPEN_OUT = struct.Struct("<QII")         # fh, open_flags, padding
READ_IN = struct.Struct("<QQI")          # fh, offset, size


def reply(fd, unique, err=0, body=b""):
    os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), -err, unique) + body)


def from_pgtetherd(pid):
    # the request's pid is the calling thread's: /proc/TID names its process's exe
    try:
        return os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "pgtetherd"
    except OSError:
        return False


def serve(fd, data):
    now = int(time.time())

    def attr(ino):
        if ino == 1:
            return ATTR.pack(1, 0, 0, now, now, now, 0, 0, 0, 0o40755, 2, 0, 0, 0, 4096, 0)
        return ATTR.pack(2, len(data), (len(data) + 511) // 512, now, now, now, 0, 0, 0, 0o100755, 1, 0, 0, 0,
                         4096, 0)

    hung = set()
    while True:
        buf = os.read(fd, 1 << 20)
        length, opcode, unique, nodeid, uid, gid, pid = IN_HEADER.unpack_from(buf)[:7]
        body = buf[IN_HEADER.size:length]
        if opcode == FUSE_INTERRUPT:
            (which,) = struct.unpack_from("<Q", body)
            if which in hung:
                hung.discard(which)
                reply(fd, which, errno.EINTR)
            continue
        if opcode in (FUSE_FORGET, FUSE_BATCH_FORGET):
            continue
        if opcode == FUSE_LOOKUP:
            if nodeid == 1 and body.rstrip(b"\0") == b"exe":
                reply(fd, unique, 0, ENTRY_OUT.pack(2, 0, 3600, 3600, 0, 0) + attr(2))
            else:
                reply(fd, unique, errno.ENOENT)
        elif opcode == FUSE_GETATTR:
            reply(fd, unique, 0, ATTR_OUT.pack(3600, 0, 0) + attr(nodeid))
        elif opcode in (FUSE_OPEN, FUSE_OPENDIR):
            if opcode == FUSE_OPEN and from_pgtetherd(pid):
                hung.add(unique)  # never answered but to an interrupt
                continue
            reply(fd, unique, 0, OPEN_OUT.pack(0, 0, 0))
        elif opcode == FUSE_READ:
            _, off, size = READ_IN.unpack_from(body)
            reply(fd, unique, 0, data[off:off + size])
        elif opcode in (FUSE_RELEASE, FUSE_RELEASEDIR, FUSE_FLUSH):
            reply(fd, unique)
        else:
            reply(fd, unique, errno.ENOSYS)


def main():
    mnt, ready = sys.argv[1], sys.argv[2]
    data = None
    if len(sys.argv) > 3:
        with open(sys.argv[3], "rb") as f:
            data = f.read()
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = "fd=%d,rootmode=40000,user_id=0,group_id=0" % fd
    if data is not None:
        opts += ",default_permissions,allow_other"
    if libc.mount(b"fusestall", mnt.encode(), b"fuse", 0, opts.encode()) != 0:
        e = ctypes.get_errno()
        sys.exit("mount %s: %s" % (mnt, os.strerror(e)))
    buf = os.read(fd, 1 << 17)
    length, opcode, unique = IN_HEADER.unpack_from(buf)[:3]
    if opcode != FUSE_INIT:
        sys.exit("expected FUSE_INIT, got opcode %d" % opcode)
    major, minor = INIT_IN.unpack_from(buf, IN_HEADER.size)[:2]
    body = INIT_OUT.pack(7, min(minor, 31), 0, 0, 1, 1, 4096, 1, 1, 0, 0, *([0] * 7))
    os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), 0, unique) + body)
    with open(ready, "w") as f:
        f.write("ok\n")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if data is not None:
        serve(fd, data)
    # never read again: every request stays pending
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
