#!/usr/bin/python3
"""A FUSE filesystem that never answers: mounts itself at DIR over raw /dev/fuse,
answers the kernel's FUSE_INIT, then reads nothing more, so every request the kernel
makes of it (the LOOKUP of any name below DIR) waits for as long as this process
holds /dev/fuse open. Killing it closes the device, which aborts the connection: every
waiter gets ENOTCONN at once.

  fusestall.py DIR READY_FILE

writes "ok" to READY_FILE once mounted and initialised, then sleeps until killed.
No libfuse: the kernel's protocol (include/uapi/linux/fuse.h), version 7.31 replies.
"""
import ctypes
import os
import signal
import struct
import sys
import time

FUSE_INIT = 26
IN_HEADER = struct.Struct("<IIQQIIII")   # len, opcode, unique, nodeid, uid, gid, pid, padding
OUT_HEADER = struct.Struct("<IiQ")       # len, error, unique
INIT_IN = struct.Struct("<IIII")         # major, minor, max_readahead, flags
# major, minor, max_readahead, flags, max_background, congestion_threshold, max_write,
# time_gran, max_pages, map_alignment, flags2, unused[7]
INIT_OUT = struct.Struct("<IIIIHHIIHHI7I")


def main():
    mnt, ready = sys.argv[1], sys.argv[2]
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = "fd=%d,rootmode=40000,user_id=0,group_id=0" % fd
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
    # never read again: every request stays pending
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
