#!/usr/bin/env python3
"""Find a block of free loopback ports for the load benchmark.

usage: free_ports.py COUNT FIRST [--exact]

Prints the lowest base >= FIRST (in steps of COUNT) such that every port base..base+COUNT-1
can be bound on 127.0.0.1 now, so no edge of the benchmark is mistaken for another
program's listener. With --exact only FIRST itself is tried. Exits 1 with a message naming
the busy port when no block is free.
"""

import socket
import sys


def busy_port(base, count):
    """The first port of the block that cannot be bound, or None when all can."""
    held = []
    try:
        for port in range(base, base + count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return port
        return None
    finally:
        for s in held:
            s.close()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    exact = "--exact" in sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    count, first = int(args[0]), int(args[1])
    last_busy = None
    for base in [first] if exact else range(first, 65536 - count, count):
        busy = busy_port(base, count)
        if busy is None:
            print(base)
            return
        last_busy = busy
    sys.exit("free_ports.py: no %d free ports from %d (port %d is in use)" % (count, first, last_busy))


if __name__ == "__main__":
    main()
