"""aiohttp echo server: ``python aiohttp_server.py PORT``; a text message starting with '!'
goes to every open connection, a loop of ``send_str`` (S6)."""
import sys

from aiohttp import WSMsgType, web

OPEN = set()


async def echo(request):
    ws = web.WebSocketResponse(max_msg_size=4 * 2**20, compress=False)
    await ws.prepare(request)
    OPEN.add(ws)
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                if message.data[:1] == '!':
                    for other in list(OPEN):
                        await other.send_str(message.data)
                else:
                    await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
    finally:
        OPEN.discard(ws)
    return ws


if __name__ == '__main__':
    app = web.Application()
    app.router.add_get('/', echo)
    web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), access_log=None, print=None)
