"""aiohttp echo server: ``python aiohttp_server.py PORT``."""
import sys

from aiohttp import WSMsgType, web


async def echo(request):
    ws = web.WebSocketResponse(max_msg_size=4 * 2**20, compress=False)
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


if __name__ == '__main__':
    app = web.Application()
    app.router.add_get('/', echo)
    web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), access_log=None, print=None)
