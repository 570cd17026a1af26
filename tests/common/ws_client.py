# A real WebSocket client (Python `websockets`): ws_client.py URL X-FORWARDED-FOR MODE.
# Prints one JSON line with what happened. No pings of its own (an idle tunnel stays idle).
#   echo-idle:SECS  send "one", read its echo, stay silent SECS, send "two", read its echo
#   wait-close      send "one", read its echo, then wait (15 s at most) for the tunnel to close
#   listen:SECS     send nothing; count what arrives for SECS, or until the tunnel closes
import asyncio
import json
import sys
import time

import websockets


async def main(url, xff, mode):
    out = {}
    try:
        async with websockets.connect(
            url, extra_headers={"X-Forwarded-For": xff}, ping_interval=None, open_timeout=10
        ) as ws:
            out["open"] = True
            if mode.startswith("echo-idle:"):
                await ws.send("one")
                first = await asyncio.wait_for(ws.recv(), 5)
                await asyncio.sleep(float(mode.split(":")[1]))
                await ws.send("two")
                out["echo"] = [first, await asyncio.wait_for(ws.recv(), 5)]
            elif mode == "wait-close":
                await ws.send("one")
                out["echo"] = [await asyncio.wait_for(ws.recv(), 5)]
                start = time.monotonic()
                try:
                    out["received"] = await asyncio.wait_for(ws.recv(), 15)
                except websockets.exceptions.ConnectionClosed:
                    out["closed_after"] = time.monotonic() - start
            elif mode.startswith("listen:"):
                start = time.monotonic()
                ticks = 0
                try:
                    while time.monotonic() - start < float(mode.split(":")[1]):
                        await asyncio.wait_for(ws.recv(), 15)
                        ticks += 1
                except websockets.exceptions.ConnectionClosed:
                    out["closed_after"] = time.monotonic() - start
                out["ticks"] = ticks
    except websockets.exceptions.InvalidStatusCode as e:
        out["status"] = e.status_code
    except websockets.exceptions.ConnectionClosed as e:
        out["error"] = f"closed: {e}"
    print(json.dumps(out), flush=True)


asyncio.run(main(*sys.argv[1:4]))
