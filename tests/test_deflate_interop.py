"""permessage-deflate against peers no one here wrote, with compression checked on the wire.

Every connection goes through ``WireTap``, a TCP relay that records both byte streams, so a
test sees the RSV1 bit of each data frame instead of trusting what either end reports.
Peers: the ``websockets`` client and server, Node's ``ws`` client and server
(``tests/node/deflate_*.js``), headless Chromium, and ``websocket-client`` (which offers no
compression). Our client role is driven by ``RawClient``, the core's client ``Connection``
over a plain socket, and by ``geventws.io.client`` when it takes ``compression=``.
"""
import base64
import json
import os
import selectors
import socket
import subprocess
import threading
import zlib

import pytest

from conftest import echo_app, require_tool
from geventws import WebSocketHandler
from geventws.protocol.deflate import client_negotiate, client_offer
from geventws.protocol.events import CloseReceived, MessageEvent
from geventws.protocol.frames import OP_BINARY, frame_header, mask
from geventws.protocol import Connection

NODE_DIR = os.path.join(os.path.dirname(__file__), 'node')
TIMEOUT = 20


# -- the wire tap -------------------------------------------------------------------------------

class WireTap:
    """Relays every connection made to ``port`` to ``upstream_port`` and records what each
    side sent: ``streams`` holds one ``(client_bytes, server_bytes)`` pair per connection."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.streams = []
        self._listener = socket.create_server(('127.0.0.1', 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopping = False
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/' % self.port

    def _accept_loop(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(('127.0.0.1', self.upstream_port), TIMEOUT)
            record = (bytearray(), bytearray())
            self.streams.append(record)
            thread = threading.Thread(target=self._relay, args=(client, upstream, record),
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client, upstream, record):
        peers = {client: (upstream, record[0]), upstream: (client, record[1])}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setblocking(True)
                selector.register(sock, selectors.EVENT_READ)
            open_sides = 2
            while open_sides and not self._stopping:
                for key, _ in selector.select(0.2):
                    other, recorded = peers[key.fileobj]
                    try:
                        data = key.fileobj.recv(262144)
                    except OSError:
                        data = b''
                    if data:
                        recorded += data
                        try:
                            other.sendall(data)
                        except OSError:
                            pass
                        continue
                    selector.unregister(key.fileobj)
                    open_sides -= 1
                    try:
                        other.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        client.close()
        upstream.close()

    def close(self):
        self._stopping = True
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def data_frames(self, which):
        """(opcode, rsv1) of every data frame that client (0) or server (1) sent."""
        return [(op, rsv1) for stream in self.streams if stream[1].startswith(b'HTTP/1.1 101')
                for op, rsv1 in parse_frames(bytes(stream[which])) if op < 8]

    def assert_compressed_both_ways(self):
        for which in (0, 1):
            frames = self.data_frames(which)
            assert any(rsv1 for _, rsv1 in frames), ('no compressed frame from the %s'
                                                     % ('client', 'server')[which])


def parse_frames(stream):
    """(opcode, rsv1) of the frames after the HTTP head of a recorded stream."""
    i, frames = stream.find(b'\r\n\r\n') + 4, []
    while i + 2 <= len(stream):
        b0, b1 = stream[i], stream[i + 1]
        n, i = b1 & 0x7F, i + 2
        if n == 126:
            n, i = int.from_bytes(stream[i:i + 2], 'big'), i + 2
        elif n == 127:
            n, i = int.from_bytes(stream[i:i + 8], 'big'), i + 8
        i += n + (4 if b1 & 0x80 else 0)
        frames.append((b0 & 0x0F, bool(b0 & 0x40)))
    return frames


@pytest.fixture
def tap():
    taps = []

    def start(port):
        taps.append(WireTap(port))
        return taps[-1]

    yield start
    for each in taps:
        each.close()


# -- our client role over a plain socket ----------------------------------------------------------

class RawClient:
    """The core's client ``Connection`` with ``deflate.client_offer``/``client_negotiate``
    over a blocking socket: our client role, without the client module."""

    def __init__(self, port, compression=True, max_message_size=2 ** 24, offer=None):
        self.sock = socket.create_connection(('127.0.0.1', port), TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = client_offer(compression) if offer is None else offer
        request = ('GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
                   'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                   'Sec-WebSocket-Version: 13\r\n' % (port, key))
        if offer:
            request += 'Sec-WebSocket-Extensions: %s\r\n' % offer
        self.sock.sendall((request + '\r\n').encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = self.sock.recv(4096)
            assert chunk, 'server closed during the handshake'
            data += chunk
        head, self._pending = data.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        assert lines[0].split()[1] == '101', lines
        headers = dict(line.split(': ', 1) for line in lines[1:])
        self.extensions = {k.lower(): v for k, v in headers.items()}.get(
            'sec-websocket-extensions', '')
        self.conn = Connection(client=True, max_message_size=max_message_size,
                               extension=client_negotiate(self.extensions, compression))
        self._events = []

    def send(self, data, fin=True):
        self.sock.sendall(b''.join(self.conn.send_message(data, fin)))

    def send_compressed(self, opcode, payload):
        """One frame with RSV1 and ``payload`` as it is: deflate data made by the test."""
        key = os.urandom(4)
        self.sock.sendall(frame_header(opcode, len(payload), True, True, key) +
                          mask(payload, key))

    def next_event(self):
        while not self._events:
            data, self._pending = self._pending or self.sock.recv(262144), b''
            if not data:
                return None
            self._events.extend(self.conn.receive_data(data))
            owed = self.conn.data_to_send()
            if owed:
                self.sock.sendall(owed)
        return self._events.pop(0)

    def recv(self):
        event = self.next_event()
        assert type(event) is MessageEvent, event
        return event.data

    def close(self):
        try:
            if self.conn.close_sent is None:
                self.sock.sendall(b''.join(self.conn.send_close(1000)))
            while self.next_event() is not None:
                pass
        except OSError:
            pass
        self.sock.close()


PAYLOADS = ['Hello, compressed world! ' * 4, 'é☺' * 5000,
            bytes(range(256)) * 40, b'\x00' * (2 ** 20), os.urandom(100000)]


def echo_all(send, recv):
    for data in PAYLOADS:
        send(data)
        assert recv() == data


# -- our server -----------------------------------------------------------------------------------

def test_websockets_client_to_our_server(serve, tap):
    from websockets.sync.client import connect
    wire = tap(serve(echo_app).port)
    with connect(wire.url, max_size=None, open_timeout=TIMEOUT) as ws:
        assert ws.response.headers['Sec-WebSocket-Extensions'] == (
            'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12')
        echo_all(ws.send, lambda: ws.recv(TIMEOUT))
    wire.assert_compressed_both_ways()


def test_node_ws_client_to_our_server(serve, tap):
    node = require_tool('node')
    wire = tap(serve(echo_app).port)
    sizes = ['1', '64', '1000', '70000', str(2 ** 20)]
    out = subprocess.run([node, os.path.join(NODE_DIR, 'deflate_client.js'), wire.url] + sizes,
                         capture_output=True, text=True, timeout=60, cwd=NODE_DIR)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result['ok'] and not result['errors'], (result, out.stderr)
    assert result['close'][0] == 1000
    assert 'permessage-deflate' in result['extensions']
    wire.assert_compressed_both_ways()


def test_websocket_client_without_an_offer_gets_no_compression(serve, tap):
    import websocket
    wire = tap(serve(echo_app).port)
    ws = websocket.create_connection(wire.url, timeout=TIMEOUT)
    try:
        for data in ('text ' * 100, b'\x01' * 5000):
            if isinstance(data, bytes):
                ws.send_binary(data)
            else:
                ws.send(data)
            assert ws.recv() == data
        assert 'sec-websocket-extensions' not in ws.getheaders()
    finally:
        ws.close()
    assert wire.data_frames(1) and not any(rsv1 for _, rsv1 in wire.data_frames(1))


def test_compression_can_be_disabled(serve, tap):
    wire = tap(serve(echo_app, WebSocketHandler.configure(compression=None)).port)
    client = RawClient(wire.port)
    try:
        assert client.extensions == '' and client.conn.extension is None
        echo_all(client.send, client.recv)
    finally:
        client.close()
    assert not any(rsv1 for which in (0, 1) for _, rsv1 in wire.data_frames(which))


@pytest.mark.parametrize('compression', [
    True,
    dict(server_no_context_takeover=True, client_no_context_takeover=True),
    dict(server_max_window_bits=8, client_max_window_bits=8, level=1),
])
def test_raw_client_role_to_our_server(serve, tap, compression):
    handler = WebSocketHandler.configure(compression=compression)
    wire = tap(serve(echo_app, handler).port)
    client = RawClient(wire.port, compression)
    try:
        echo_all(client.send, client.recv)
        # One fragmented message: RSV1 on its first frame only.
        for i, part in enumerate((b'abc' * 1000, b'', b'def' * 1000)):
            client.send(part, fin=i == 2)
        assert client.recv() == b'abc' * 1000 + b'def' * 1000
    finally:
        client.close()
    wire.assert_compressed_both_ways()
    frames = wire.data_frames(0)
    assert frames[-3:] == [(2, True), (0, False), (0, False)]


def bomb_payloads():
    """A 10 KiB message inflating to 10 MiB, and one under 1 MiB inflating to 1 GiB (one
    sync-flushed block of 4 MiB of zeros, repeated: each copy refers back to zeros)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    small = deflater.compress(bytes(10 * 2 ** 20)) + deflater.flush(zlib.Z_SYNC_FLUSH)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflater.compress(bytes(4 * 2 ** 20)) + deflater.flush(zlib.Z_SYNC_FLUSH)
    large = block * 256
    assert len(small) < 11 * 1024 and len(large) < 2 ** 20
    return [small[:-4], large[:-4]]


def rss_bytes():
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


@pytest.mark.parametrize('payload', bomb_payloads(), ids=['10KiB-to-10MiB', '1MiB-to-1GiB'])
def test_decompression_bomb_closes_with_1009_and_memory_stays_bounded(serve, payload):
    server = serve(echo_app, WebSocketHandler.configure(max_message_size=2 ** 20))
    client = RawClient(server.port)
    try:
        before = rss_bytes()
        client.send_compressed(OP_BINARY, payload)
        event = client.next_event()
        grown = rss_bytes() - before
    finally:
        client.close()
    assert type(event) is CloseReceived and event.code == 1009, event
    assert grown < 64 * 2 ** 20, 'RSS grew by %d MiB' % (grown >> 20)


def test_corrupt_message_closes_with_1007(serve):
    client = RawClient(serve(echo_app).port)
    try:
        client.send_compressed(OP_BINARY, b'\xff\xff\xff\xff')
        event = client.next_event()
    finally:
        client.close()
    assert type(event) is CloseReceived and event.code == 1007, event
    assert 'invalid compressed data' in event.reason


# -- other servers, our client role ---------------------------------------------------------------

@pytest.fixture
def websockets_server():
    from websockets.sync.server import serve as ws_serve

    def echo(ws):
        for message in ws:
            ws.send(message)

    server = ws_serve(echo, '127.0.0.1', 0, max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.socket.getsockname()[1]
    server.shutdown()
    thread.join(10)


@pytest.fixture
def node_server():
    node = require_tool('node')
    proc = subprocess.Popen([node, os.path.join(NODE_DIR, 'deflate_server.js')], cwd=NODE_DIR,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize('compression', [
    True,
    dict(server_no_context_takeover=True, client_no_context_takeover=True,
         server_max_window_bits=10, client_max_window_bits=9),
])
@pytest.mark.parametrize('peer', ['websockets_server', 'node_server'])
def test_raw_client_role_to_other_servers(request, tap, peer, compression):
    wire = tap(request.getfixturevalue(peer))
    client = RawClient(wire.port, compression)
    try:
        assert client.conn.extension is not None, client.extensions
        echo_all(client.send, client.recv)
    finally:
        client.close()
    wire.assert_compressed_both_ways()


# -- geventws.io.client ------------------------------------------------------------------------------

@pytest.mark.parametrize('compression', [
    True,
    dict(server_no_context_takeover=True, client_no_context_takeover=True,
         server_max_window_bits=10, client_max_window_bits=9),
])
@pytest.mark.parametrize('peer', ['websockets_server', 'node_server', 'our_server'])
def test_our_client_with_compression(request, serve, tap, peer, compression):
    from geventws.io.client import connect
    port = serve(echo_app).port if peer == 'our_server' else request.getfixturevalue(peer)
    wire = tap(port)
    ws = connect(wire.url, compression=compression, timeout=TIMEOUT)
    try:
        assert ws.extensions.startswith('permessage-deflate'), ws.extensions
        for data in PAYLOADS:
            ws.send(data)
            assert ws.receive() == data
    finally:
        ws.close()
    wire.assert_compressed_both_ways()


def test_our_client_without_compression_offers_nothing(serve, tap):
    from geventws.io.client import connect
    wire = tap(serve(echo_app).port)
    ws = connect(wire.url, compression=None, timeout=TIMEOUT)
    try:
        ws.send(b'x' * 5000)
        assert ws.receive() == b'x' * 5000
        assert ws.extensions == ''
    finally:
        ws.close()
    assert b'Sec-WebSocket-Extensions' not in bytes(wire.streams[0][0])
    assert not any(rsv1 for which in (0, 1) for _, rsv1 in wire.data_frames(which))


def bad_response_server(extensions):
    """A server that answers the handshake with ``extensions``, whatever was offered."""
    from geventws.protocol.handshake import accept_key
    listener = socket.create_server(('127.0.0.1', 0))

    def answer():
        conn, _ = listener.accept()
        with conn:
            data = b''
            while b'\r\n\r\n' not in data:
                data += conn.recv(4096)
            key = [line.split(b': ', 1)[1] for line in data.split(b'\r\n')
                   if line.lower().startswith(b'sec-websocket-key')][0].decode()
            conn.sendall(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
                          'Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n'
                          'Sec-WebSocket-Extensions: %s\r\n\r\n'
                          % (accept_key(key), extensions)).encode())
            conn.recv(4096)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener


@pytest.mark.parametrize('compression, extensions', [
    (True, 'permessage-deflate; server_max_window_bits=7'),
    (True, 'permessage-deflate; unknown_parameter'),
    (None, 'permessage-deflate'),                              # nothing was offered
])
def test_our_client_fails_the_handshake_on_a_bad_response(compression, extensions):
    from geventws import HandshakeError
    from geventws.io.client import connect
    listener = bad_response_server(extensions)
    try:
        with pytest.raises(HandshakeError):
            connect('ws://127.0.0.1:%d/' % listener.getsockname()[1],
                    compression=compression, timeout=TIMEOUT)
    finally:
        listener.close()
