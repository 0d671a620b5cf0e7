"""The client against servers no one here wrote (websockets, Node's ws, aiohttp) and ours.

Every server speaks the same small peer protocol, so that one test runs against all of them:
echo each message with its type, except the text commands ``!close CODE REASON``,
``!fragments A B C`` (one text message sent in those fragments) and ``!ping PAYLOAD`` (ping,
then say ``pong PAYLOAD`` when the pong arrives); subprotocols ``chat`` and ``superchat``, the
first one the client offers; each close frame the server receives is reported to the test.
"""
import asyncio
import json
import os
import queue
import subprocess
import threading

import pytest

from geventws import ConnectionClosed, HandshakeError, WebSocketClient, connect
from helpers import NODE_DIR, ThreadedServer, require_node_ws

SUPPORTED = ['chat', 'superchat']
TIMEOUT = 10


def _command(text):
    """``(command, args)`` for a peer-protocol command, else None."""
    if not isinstance(text, str) or not text.startswith('!'):
        return None
    command, *args = text.split(' ')
    return command, args


def _answer(ws, message, start):
    """Echo ``message`` or carry out its command on ``ws``: the websockets server's socket and
    ours share this API; ``start(function)`` runs the wait for a pong in the background (a
    thread or a greenlet, whichever the server lives in)."""
    command = _command(message)
    if command is None:
        ws.send(message)
    elif command[0] == '!close':
        ws.close(int(command[1][0]), ' '.join(command[1][1:]))
    elif command[0] == '!fragments':
        ws.send(iter(command[1]))
    elif command[0] == '!ping':
        payload = ' '.join(command[1])
        pong = ws.ping(payload)
        start(lambda: pong.wait(TIMEOUT) and ws.send('pong ' + payload))


def _in_thread(function):
    threading.Thread(target=function, daemon=True).start()


class Peer:
    """A running server: ``url``, and ``closes`` receiving the (code, reason) of each close
    frame it got."""

    name = ''
    #: The markers of the tests that run against this peer: what it needs.
    marks = ()

    def __init__(self):
        self.closes = queue.Queue()
        self.port = None

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/' % self.port

    def close_received(self):
        return self.closes.get(timeout=TIMEOUT)


class WebsocketsPeer(Peer):
    """python-websockets' threaded server."""

    name = 'websockets'
    fragments = True

    def start(self):
        from websockets.sync.server import serve
        self.server = serve(self._handler, '127.0.0.1', 0, max_size=None,
                            subprotocols=SUPPORTED, select_subprotocol=self._select)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _select(connection, offered):
        return next((p for p in offered if p in SUPPORTED), None)

    def _handler(self, ws):
        from websockets.exceptions import ConnectionClosed as Closed
        try:
            for message in ws:
                _answer(ws, message, _in_thread)
        except Closed:
            pass   # the client closed while we echoed
        received = ws.protocol.close_rcvd
        if received is not None:
            self.closes.put((received.code, received.reason))


    def stop(self):
        self.server.shutdown()
        self.thread.join(TIMEOUT)


class NodePeer(Peer):
    """Node's ws (tests/node/ws_server.js) in a subprocess."""

    name = 'node-ws'
    fragments = True
    marks = (pytest.mark.node,)

    def start(self):
        node = require_node_ws()
        self.process = subprocess.Popen([node, 'ws_server.js'], cwd=NODE_DIR, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(json.loads(line))
                                         for line in self.process.stdout], daemon=True).start()
        self.port = lines.get(timeout=TIMEOUT)['port']
        threading.Thread(target=lambda: [self.closes.put((item['close'], item['reason']))
                                         for item in iter(lines.get, None)],
                         daemon=True).start()
        self._lines = lines

    def stop(self):
        self.process.stdin.close()
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._lines.put(None)


class AiohttpPeer(Peer):
    """aiohttp's web server, on its own event loop in a thread. aiohttp cannot send a
    fragmented message."""

    name = 'aiohttp'
    fragments = False

    def start(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(TIMEOUT)

    async def _start(self):
        from aiohttp import web
        app = web.Application()
        app.router.add_get('/', self._handler)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, '127.0.0.1', 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def _handler(self, request):
        from aiohttp import WSMsgType, web
        ws = web.WebSocketResponse(protocols=SUPPORTED, autoping=False,
                                   max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        while True:
            msg = await ws.receive()
            command = _command(msg.data) if msg.type == WSMsgType.TEXT else None
            if msg.type == WSMsgType.TEXT and command is None:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif command and command[0] == '!close':
                await ws.close(code=int(command[1][0]), message=' '.join(command[1][1:]).encode())
                break
            elif command and command[0] == '!ping':
                await ws.ping(' '.join(command[1]).encode())
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                await ws.send_str('pong ' + msg.data.decode())
            elif msg.type == WSMsgType.CLOSE:
                self.closes.put((msg.data, msg.extra or ''))
                break
            elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        return ws

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


class OurPeer(Peer):
    """geventws' own server (the ThreadedServer of the ``serve`` fixture)."""

    name = 'geventws'
    fragments = True

    def start(self):
        self.server = ThreadedServer(self._app).start()
        self.port = self.server.port

    def _app(self, environ, start_response):
        import gevent
        ws = environ['wsgi.websocket']
        ws.accept(protocols=SUPPORTED)
        for message in ws:
            try:
                _answer(ws, message, gevent.spawn)
            except ConnectionClosed:
                pass   # the client closed while we echoed
        if ws.close_code not in (None, 1006):
            self.closes.put((ws.close_code, ws.close_reason))
        return []

    def stop(self):
        self.server.stop()


PEERS = [OurPeer, WebsocketsPeer, NodePeer, AiohttpPeer]
FRAGMENTING_PEERS = [peer for peer in PEERS if peer.fragments]


def _running(peer_class):
    """A started ``peer_class`` server for the length of one test, always stopped."""
    server = peer_class()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _params(peers):
    return [pytest.param(peer, marks=peer.marks) for peer in peers]


@pytest.fixture(params=_params(PEERS), ids=lambda peer: peer.name)
def peer(request):
    yield from _running(request.param)


@pytest.fixture(params=_params(FRAGMENTING_PEERS), ids=lambda peer: peer.name)
def fragmenting_peer(request):
    yield from _running(request.param)


@pytest.fixture(params=[None, True], ids=['plain', 'deflate'])
def ws(peer, request):
    """A connection to ``peer``, without and with permessage-deflate (offered by default)."""
    ws = connect(peer.url, timeout=TIMEOUT, close_timeout=TIMEOUT, compression=request.param)
    assert ('permessage-deflate' in ws.extensions) == bool(request.param)
    yield ws
    ws.close()


def test_text_round_trip(ws):
    for text in ['Hello, world!', '', 'ünïcödé ✓ 🎉', 'x' * 70000]:
        ws.send(text)
        assert ws.receive() == text


@pytest.mark.parametrize('size', [0, 1, 125, 126, 65535, 65536, 2 * 1024 * 1024])
def test_binary_round_trip(ws, size):
    data = os.urandom(size)
    ws.send(data)
    received = ws.receive()
    assert type(received) is bytes and received == data


def test_fragmented_send_is_one_message(ws):
    ws.send(['frag', 'men', 'ted ✓'])
    assert ws.receive() == 'fragmented ✓'
    ws.send(iter([b'\x00\x01', b'', b'\x02']))
    assert ws.receive() == b'\x00\x01\x02'


def test_fragmented_receive(fragmenting_peer):
    ws = connect(fragmenting_peer.url, timeout=TIMEOUT)
    ws.send('!fragments alpha beta gamma')
    assert ws.receive() == 'alphabetagamma'
    ws.send('after')
    assert ws.receive() == 'after'
    ws.close()


def test_server_ping_is_answered(ws):
    ws.send('!ping are-you-there')
    assert ws.receive() == 'pong are-you-there'


def test_client_ping_gets_its_pong(ws):
    pong = ws.ping(b'abc')
    ws.send('next')                      # read on: the pong comes before this echo
    assert ws.receive() == 'next'
    assert pong.is_set()


def test_server_closes_with_code_and_reason(peer, ws):
    ws.send('!close 4001 server says bye')
    assert ws.receive() is None
    assert (ws.close_code, ws.close_reason) == (4001, 'server says bye')
    with pytest.raises(ConnectionClosed):
        ws.send('too late')


@pytest.mark.parametrize('code, reason', [(1000, 'bye'), (1001, ''), (4999, 'custom')])
def test_client_closes_with_code_and_reason(peer, code, reason):
    ws = connect(peer.url, timeout=TIMEOUT, close_timeout=TIMEOUT)
    ws.send('before close')
    ws.close(code, reason)
    assert ws.ready_state == ws.CLOSED
    assert peer.close_received() == (code, reason)
    with pytest.raises(ConnectionClosed):
        ws.send('too late')


def test_subprotocol_accepted(peer):
    ws = connect(peer.url, protocols=['superchat', 'chat'], timeout=TIMEOUT)
    assert ws.protocol == 'superchat'
    ws.send('hi')
    assert ws.receive() == 'hi'
    ws.close()


def test_subprotocol_refused(peer):
    with pytest.raises(HandshakeError) as info:
        connect(peer.url, protocols=['nope'], timeout=TIMEOUT)
    assert info.value.status == 101
    assert 'none of the subprotocols' in info.value.reason


def test_event_style(peer):
    ws = WebSocketClient(peer.url, protocols=['chat'], timeout=TIMEOUT)
    seen = []
    ws.onopen = lambda event: (seen.append(('open', ws.protocol)), ws.send('hi'))

    def onmessage(event):
        seen.append(('message', event.data))
        ws.close(1000, 'done')

    ws.onmessage = onmessage
    ws.onerror = lambda event: seen.append(('error', event.message))
    ws.onclose = lambda event: seen.append(('close', event.code, event.was_clean))
    ws.start()
    assert ws.join(TIMEOUT * 3)
    assert seen == [('open', 'chat'), ('message', 'hi'), ('close', 1000, True)]
    assert peer.close_received() == (1000, 'done')
