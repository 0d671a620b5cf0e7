"""permessage-deflate against peers no one here wrote, with compression checked on the wire.

Every connection goes through ``WireTap`` (helpers.py), a TCP relay that records both byte
streams, so a test sees the RSV1 bit of each data frame instead of trusting what either end
reports.
Peers: the ``websockets`` client and server, Node's ``ws`` client and server
(``tests/node/deflate_*.js``), headless Chromium, and ``websocket-client`` (which offers no
compression). Our client role is driven by ``CoreClient`` (helpers.py), the core's client
``Connection`` over a plain socket, and by ``geventws.io.client`` when it takes
``compression=``.
"""
import json
import os
import socket
import subprocess
import threading
import zlib

import pytest

from geventws import WebSocketHandler
from geventws.protocol.events import CloseReceived
from geventws.protocol.frames import OP_BINARY
from helpers import NODE_DIR, CoreClient, WireTap, echo_app, require_node_ws

TIMEOUT = 20


# -- the wire tap -------------------------------------------------------------------------------

@pytest.fixture
def tap():
    taps = []

    def start(port):
        taps.append(WireTap(port))
        return taps[-1]

    yield start
    for each in taps:
        each.close()


# -- what every peer echoes ---------------------------------------------------------------------

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


@pytest.mark.node
def test_node_ws_client_to_our_server(serve, tap):
    node = require_node_ws()
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
    client = CoreClient(wire.port)
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
    client = CoreClient(wire.port, compression)
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
    client = CoreClient(server.port)
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
    client = CoreClient(serve(echo_app).port)
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
    """The port of Node's ws (tests/node/deflate_server.js), an echo with compression."""
    node = require_node_ws()
    proc = subprocess.Popen([node, os.path.join(NODE_DIR, 'deflate_server.js')], cwd=NODE_DIR,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


#: The ``node_server`` fixture's name as a parameter, marked: it needs Node.js.
NODE_SERVER = pytest.param('node_server', marks=pytest.mark.node)


@pytest.mark.parametrize('compression', [
    True,
    dict(server_no_context_takeover=True, client_no_context_takeover=True,
         server_max_window_bits=10, client_max_window_bits=9),
])
@pytest.mark.parametrize('peer', ['websockets_server', NODE_SERVER])
def test_raw_client_role_to_other_servers(request, tap, peer, compression):
    wire = tap(request.getfixturevalue(peer))
    client = CoreClient(wire.port, compression)
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
@pytest.mark.parametrize('peer', ['websockets_server', NODE_SERVER, 'our_server'])
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
