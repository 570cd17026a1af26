#!/usr/bin/env python3
"""Clients of the "Monday 08:30" scenario (benches/load/monday.sh): many pupils at once.

Client i connects from its own loopback address, sends a request as soon as it is connected
(the pupil opens the test) and then one every INTERVAL seconds (uniformly 0.5-1.5 x, so the
clients do not march in step) on the same keep-alive connection, until DURATION seconds after
the first connection; connections are opened evenly over the first RAMP seconds.

Addresses and the answer each client must get, for i in 0..CLIENTS: the clients are dealt
round-robin over B /24 blocks, B the smallest multiple of 10 with B x 250 >= CLIENTS:
    block = i % B, address 127.(10 + block // 256).(block % 256).(1 + i // B)
    registered (must get 200) when block % 10 < 7, else blocked (must get 403)
so 70% of the clients are registered (exactly, for a multiple of 10); `allowlist` writes
the matching allowlist document (one site per registered /24) and nginx geo block.

    monday.py allowlist CLIENTS OUT_DIR
    monday.py run HOST:PORT FIRST COUNT CLIENTS RAMP DURATION INTERVAL OUT.json
    monday.py report OUT.json...          merged figures as one JSON line

`run` drives clients FIRST..FIRST+COUNT (one process holds at most its open-file limit) and
writes counts and latencies. A response is complete at its Content-Length (or the last
chunk); one that takes longer than TIMEOUT (10 s) counts as an error. Errors are counted by
kind: connect (refused or failed), closed (the connection ended before or during an answer),
timeout, status (an answer other than the one the address must get).
"""

import asyncio
import json
import random
import socket
import sys

TIMEOUT = 10.0
HOSTS_PER_BLOCK = 250
REQUEST = (
    b"GET /toets/start HTTP/1.1\r\nHost: toets.example\r\n"
    b"User-Agent: monday-scenario\r\nAccept: text/html\r\n\r\n"
)


def blocks(clients):
    need = (clients + HOSTS_PER_BLOCK - 1) // HOSTS_PER_BLOCK
    return max(10, (need + 9) // 10 * 10)


def address(i, clients):
    b = blocks(clients)
    block = i % b
    return "127.%d.%d.%d" % (10 + block // 256, block % 256, 1 + i // b)


def registered(i, clients):
    return (i % blocks(clients)) % 10 < 7


def write_allowlist(clients, out):
    """One site per registered /24 (a school with one address range)."""
    sites, geo = [], ["default 0;"]
    for b in range(blocks(clients)):
        if b % 10 >= 7:
            continue
        net = "127.%d.%d.0/24" % (10 + b // 256, b % 256)
        sites.append({"id": "MON%04d" % b, "name": "Monday school %d" % b, "ranges": [net]})
        geo.append("%s 1;" % net)
    doc = {"version": "monday-%d" % clients, "generated_by": "monday.py", "sites": sites}
    with open("%s/allowlist.json" % out, "w") as f:
        json.dump(doc, f)
    with open("%s/geo.conf" % out, "w") as f:
        f.write("\n".join(geo) + "\n")


class Stats:
    def __init__(self):
        self.latency = {"allowed": [], "blocked": []}
        self.errors = {"connect": 0, "closed": 0, "timeout": 0, "status": 0}
        self.statuses = {}
        self.connected = 0
        self.connect_ms = []


class Client(asyncio.Protocol):
    def __init__(self, loop, stats, i, clients, end):
        self.loop, self.stats, self.end = loop, stats, end
        self.kind = "allowed" if registered(i, clients) else "blocked"
        self.want = 200 if self.kind == "allowed" else 403
        self.tr = None
        self.buf = bytearray()
        self.sent_at = None  # set while an answer is awaited
        self.timer = None
        self.finished = False

    def connection_made(self, transport):
        self.tr = transport
        self.stats.connected += 1
        self.send()

    def send(self):
        if self.loop.time() >= self.end:
            self.finish()
            return
        self.buf.clear()
        self.sent_at = self.loop.time()
        self.tr.write(REQUEST)
        self.timer = self.loop.call_later(TIMEOUT, self.timed_out)

    def timed_out(self):
        self.stats.errors["timeout"] += 1
        self.sent_at = None
        self.finish()

    def data_received(self, data):
        if self.sent_at is None:
            return
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buf[:head_end]).decode("latin-1").lower().split("\r\n")
        length, chunked = None, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
        body = len(self.buf) - head_end - 4
        if chunked:
            if not self.buf.endswith(b"0\r\n\r\n"):
                return
        elif length is not None and body < length:
            return
        self.timer.cancel()
        ms = (self.loop.time() - self.sent_at) * 1000.0
        self.sent_at = None
        status = int(head[0].split(" ")[1])
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        if status != self.want:
            self.stats.errors["status"] += 1
        self.stats.latency[self.kind].append(round(ms, 3))
        self.loop.call_later(random.uniform(0.5, 1.5) * INTERVAL, self.send)

    def finish(self):
        if not self.finished:
            self.finished = True
            self.tr.close()

    def connection_lost(self, exc):
        if not self.finished:
            self.finished = True
            self.stats.errors["closed"] += 1
        if self.timer:
            self.timer.cancel()


async def connect(loop, stats, host, port, i, clients, end):
    t = loop.time()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((address(i, clients), 0))
        await loop.sock_connect(sock, (host, port))
        stats.connect_ms.append(round((loop.time() - t) * 1000.0, 3))
        await loop.create_connection(lambda: Client(loop, stats, i, clients, end), sock=sock)
    except OSError:
        stats.errors["connect"] += 1
        sock.close()


async def run(target, first, count, clients, ramp, duration, out):
    host, port = target.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    stats = Stats()
    start = loop.time()
    end = start + duration
    tasks = []
    for k in range(count):
        i = first + k
        # Client i's turn in the ramp, over all CLIENTS of every process.
        delay = start + ramp * i / clients - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(connect(loop, stats, host, int(port), i, clients, end)))
    await asyncio.gather(*tasks)
    # Every client stops at `end` (its next send closes) or within TIMEOUT after it.
    while loop.time() < end + TIMEOUT + 1:
        await asyncio.sleep(0.5)
    peak = stats.connected
    with open(out, "w") as f:
        json.dump(
            {
                "clients": count,
                "connected": peak,
                "errors": stats.errors,
                "statuses": stats.statuses,
                "latency": stats.latency,
                "connect_ms": stats.connect_ms,
            },
            f,
        )


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100.0))]


def report(files):
    merged = {"clients": 0, "connected": 0, "errors": {}, "statuses": {}}
    lat = {"allowed": [], "blocked": []}
    connect_ms = []
    for name in files:
        with open(name) as f:
            r = json.load(f)
        merged["clients"] += r["clients"]
        merged["connected"] += r["connected"]
        for k, v in r["errors"].items():
            merged["errors"][k] = merged["errors"].get(k, 0) + v
        for k, v in r["statuses"].items():
            merged["statuses"][k] = merged["statuses"].get(k, 0) + v
        for k in lat:
            lat[k].extend(r["latency"][k])
        connect_ms.extend(r["connect_ms"])
    for k, v in lat.items():
        merged[k] = {
            "requests": len(v),
            "p50_ms": pct(v, 50),
            "p99_ms": pct(v, 99),
            "max_ms": max(v) if v else None,
        }
    merged["connect_p99_ms"] = pct(connect_ms, 99)
    print(json.dumps(merged))


def main():
    global INTERVAL
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "allowlist" and len(sys.argv) == 4:
        write_allowlist(int(sys.argv[2]), sys.argv[3])
    elif cmd == "run" and len(sys.argv) == 10:
        target, first, count, clients = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        ramp, duration, INTERVAL = float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8])
        random.seed(first)
        asyncio.run(run(target, first, count, clients, ramp, duration, sys.argv[9]))
    elif cmd == "report" and len(sys.argv) > 2:
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)


INTERVAL = 10.0

if __name__ == "__main__":
    main()
