"""websockets (asyncio implementation) echo server: ``python websockets_server.py PORT``; a
text message starting with '!' goes to every open connection with ``broadcast()`` (S6)."""
import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

OPEN = set()


async def echo(ws):
    OPEN.add(ws)
    try:
        async for message in ws:
            if type(message) is str and message[:1] == '!':
                broadcast(OPEN, message)
            else:
                await ws.send(message)
    finally:
        OPEN.discard(ws)


async def main(port):
    # 1 MiB messages (S3) need a max_size above the 1 MiB default; no keepalive pings.
    async with serve(echo, '127.0.0.1', port, max_size=4 * 2**20, ping_interval=None,
                     compression=None):
        await asyncio.get_running_loop().create_future()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1])))
