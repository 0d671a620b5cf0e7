"""Interop: the server against clients no one here wrote: websocket-client, websockets' sync
client, aiohttp's client and Node's ``ws``. Each runs the same scenario: text, binary of
0 B to 2 MiB, fragmented messages both ways, pings both ways, and a close with a code and a
reason, which the server must see and echo. The server app runs in both styles, iterating
the WebSocket and with ``onmessage`` callbacks, and without compression so that these are
plain RFC 6455 frames (permessage-deflate interop is tested on its own)."""
import asyncio
import json
import os
import subprocess
import time

import pytest

from geventws import WebSocketHandler
from helpers import NODE_DIR, require_node_ws

TIMEOUT = 10
SIZES = [0, 125, 126, 65536, 2 * 1024 * 1024]
PING = 'interop ping'
CLOSE = (4001, 'bye-bye')


class InteropApp:
    """Echo, plus commands that make the server fragment and ping; records how each
    connection was closed. Written in the blocking style (iterating the WebSocket)."""

    def __init__(self):
        self.closes = []

    def __call__(self, environ, start_response):
        ws = environ['wsgi.websocket']
        pongs = []
        for message in ws:
            self.answer(ws, message, pongs)
        self.closes.append((ws.close_code, ws.close_reason))
        return []

    @staticmethod
    def answer(ws, message, pongs):
        """``pongs``: the events of the server's pings, set when their pong arrives."""
        if message == 'fragment-me':
            ws.send(iter(['frag', 'men', 'ted']))
            ws.send(iter([b'\x01', b'\x02\x03']))
        elif message == 'ping-me':
            pongs.append(ws.ping(b'server ping'))
            ws.send('pinged')
        elif message == 'check':
            ws.send(str(pongs[-1].is_set()))   # the client's pong came before 'check'
        else:
            ws.send(message)

    def wait_close(self):
        deadline = time.monotonic() + TIMEOUT
        while not self.closes and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.closes


class InteropEventsApp(InteropApp):
    """The same, in the event style: ``onmessage`` and ``onclose`` (``run_forever()``)."""

    def __call__(self, environ, start_response):
        ws = environ['wsgi.websocket']
        pongs = []
        ws.onmessage = lambda event: self.answer(ws, event.data, pongs)
        ws.onclose = lambda event: self.closes.append((event.code, event.reason))
        return []


def pattern(n):
    return bytes((i * 31 + 7) & 255 for i in range(n))


EXPECTED = dict({'text': 'hello ünïcode', 'client fragments': 'fragmented',
                 'server fragments': ['fragmented', '010203'], 'pong': PING,
                 'server ping': ['pinged', 'True'], 'close': CLOSE[0]},
                **{'binary %d' % n: True for n in SIZES})


def scenario(client):
    """What a Python client observes; the same steps as tests/node/interop_client.js."""
    seen = {}
    client.send('hello ünïcode')
    seen['text'] = client.recv()
    for size in SIZES:
        client.send(pattern(size))
        seen['binary %d' % size] = client.recv() == pattern(size)
    if client.send_fragments(['frag', 'men', 'ted']):
        seen['client fragments'] = client.recv()
    else:
        seen['client fragments'] = 'fragmented'   # this client cannot send fragments
    client.send('fragment-me')
    seen['server fragments'] = [client.recv(), client.recv().hex()]
    seen['pong'] = client.ping(PING)
    client.send('ping-me')
    seen['server ping'] = [client.recv()]
    client.send('check')
    seen['server ping'].append(client.recv())
    seen['close'] = client.close(*CLOSE)
    return seen


class WebsocketClient:
    def __init__(self, url):
        import websocket
        self.abnf = websocket.ABNF
        self.ws = websocket.create_connection(url, timeout=TIMEOUT)

    def send(self, message):
        if isinstance(message, str):
            self.ws.send(message)
        else:
            self.ws.send_binary(message)

    def send_fragments(self, parts):
        opcode = self.abnf.OPCODE_TEXT
        for i, part in enumerate(parts):
            self.ws.send_frame(self.abnf.create_frame(part, opcode, int(i == len(parts) - 1)))
            opcode = self.abnf.OPCODE_CONT
        return True

    def recv(self):
        return self.ws.recv()        # answers the server's pings on the way

    def ping(self, payload):
        self.ws.ping(payload)
        opcode, pong = self.ws.recv_data_frame(control_frame=True)
        assert opcode == self.abnf.OPCODE_PONG
        return pong.data.decode()

    def close(self, code, reason):
        self.ws.send_close(code, reason.encode())
        answer = self.ws.recv_frame()
        assert answer.opcode == self.abnf.OPCODE_CLOSE
        return int.from_bytes(answer.data[:2], 'big')

    def finish(self):
        self.ws.shutdown()


class WebsocketsSync:
    def __init__(self, url):
        from websockets.sync.client import connect
        self.ws = connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None,
                          compression=None).__enter__()

    def send(self, message):
        self.ws.send(message)

    def send_fragments(self, parts):
        self.ws.send(iter(parts))    # an iterable is sent as one fragmented message
        return True

    def recv(self):
        return self.ws.recv(timeout=TIMEOUT)

    def ping(self, payload):
        # The event is set by the pong whose payload matches this ping's.
        return payload if self.ws.ping(payload.encode()).wait(TIMEOUT) else None

    def close(self, code, reason):
        self.ws.close(code, reason)
        return self.ws.protocol.close_rcvd.code

    def finish(self):
        self.ws.__exit__(None, None, None)


class Aiohttp:
    """aiohttp's client in asyncio, driven from the test thread; autoping is off so that
    pongs can be seen, so it answers the server's pings itself."""

    def __init__(self, url):
        import aiohttp
        self.aiohttp = aiohttp
        self.loop = asyncio.new_event_loop()
        self.session = self._run(self._session())
        self.ws = self._run(self.session.ws_connect(url, autoping=False, compress=0,
                                                    max_msg_size=0))

    async def _session(self):
        return self.aiohttp.ClientSession()

    def _run(self, coroutine):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, TIMEOUT))

    def send(self, message):
        self._run(self.ws.send_str(message) if isinstance(message, str) else
                  self.ws.send_bytes(message))

    def send_fragments(self, parts):
        return False                 # aiohttp has no API to send a fragmented message

    async def _receive(self, wanted):
        kind = self.aiohttp.WSMsgType
        while True:
            message = await self.ws.receive()
            if message.type == kind.PING:
                await self.ws.pong(message.data)
            elif message.type in wanted:
                return message.data
            else:
                raise AssertionError('unexpected %r' % (message,))

    def recv(self):
        return self._run(self._receive((self.aiohttp.WSMsgType.TEXT,
                                        self.aiohttp.WSMsgType.BINARY)))

    def ping(self, payload):
        self._run(self.ws.ping(payload.encode()))
        return self._run(self._receive((self.aiohttp.WSMsgType.PONG,))).decode()

    def close(self, code, reason):
        self._run(self.ws.close(code=code, message=reason.encode()))
        return self.ws.close_code

    def finish(self):
        self._run(self.session.close())
        self.loop.close()


@pytest.fixture(params=[InteropApp, InteropEventsApp], ids=['blocking', 'onmessage'])
def interop_server(serve, request):
    app = request.param()
    return serve(app, WebSocketHandler.configure(compression=None)), app


@pytest.mark.parametrize('client_class', [WebsocketClient, WebsocketsSync, Aiohttp],
                         ids=['websocket-client', 'websockets', 'aiohttp'])
def test_python_clients(interop_server, client_class):
    server, app = interop_server
    client = client_class(server.url)
    try:
        assert scenario(client) == EXPECTED
    finally:
        client.finish()
    assert app.wait_close() == [CLOSE]


@pytest.mark.node
def test_node_ws(interop_server):
    node = require_node_ws()
    server, app = interop_server
    result = subprocess.run([node, os.path.join(NODE_DIR, 'interop_client.js'), server.url],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED
    assert app.wait_close() == [CLOSE]
