#!/usr/bin/env python3
"""Start a server in the background and time it from spawn to ready.

usage: launch.py --log FILE --probe HOST:PORT/PATH [--want STATUS] [--timeout S] -- COMMAND...

Spawns COMMAND (stdout and stderr to FILE, its own session so a terminal Ctrl-C reaches only
the script), then sends `GET PATH` to HOST:PORT every 0.5 ms until an HTTP response arrives
(with status STATUS when --want is given, e.g. 200 for the gate's /readyz; any status for
nginx, where a response proves a worker is serving). Prints one line:

    <pid> <milliseconds from spawn to ready> <VmRSS KiB of pid at ready>

and exits, leaving the server running (the caller stops it by pid). Exits 1 — after killing
what it started — when the server exits or is not ready within --timeout seconds.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def probe(host, port, path):
    """Status code of `GET path`, or None when nothing (complete) answers yet."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
            head = s.recv(64)
            if head.startswith(b"HTTP/1.") and len(head) >= 12:
                return int(head[9:12])
    except (OSError, ValueError):
        pass
    return None


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--probe", required=True, help="HOST:PORT/PATH")
    ap.add_argument("--want", type=int)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    if not cmd:
        sys.exit("no command")
    hostport, _, path = a.probe.partition("/")
    host, _, port = hostport.rpartition(":")
    port, path = int(port), "/" + path

    log = open(a.log, "ab")
    t0 = time.monotonic()
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = t0 + a.timeout
    while True:
        status = probe(host, port, path)
        now = time.monotonic()
        if status is not None and (a.want is None or status == a.want):
            break
        if child.poll() is not None or now > deadline:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
            sys.stderr.write("launch.py: %s not ready (exit %s); see %s\n" % (cmd[0], child.returncode, a.log))
            sys.exit(1)
        time.sleep(0.0005)
    print("%d %.1f %d" % (child.pid, (now - t0) * 1000.0, rss_kib(child.pid)))
    sys.stdout.flush()
    # Do not wait for the child: it keeps running; the caller owns it by pid.
    os._exit(0)


if __name__ == "__main__":
    main()
