# A real WebSocket upstream (Python `websockets`) on 127.0.0.1 and a port the system picks.
# Prints {"port": N} once it listens, then one line per handshake it receives:
# {"path": ..., "xff": ...}. Echoes every message; on /push it sends "tick" every 300 ms
# and reads nothing. No pings of its own, so an idle tunnel stays idle.
import asyncio
import json

import websockets


async def handler(ws):
    try:
        if ws.path == "/push":
            while True:
                await ws.send("tick")
                await asyncio.sleep(0.3)
        async for message in ws:
            await ws.send(message)
    except websockets.exceptions.ConnectionClosed:
        pass  # the gate closed the tunnel: what some tests wait for


async def seen(path, headers):
    print(json.dumps({"path": path, "xff": headers.get("x-forwarded-for")}), flush=True)
    return None


async def main():
    async with websockets.serve(
        handler, "127.0.0.1", 0, process_request=seen, ping_interval=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.Future()


asyncio.run(main())
