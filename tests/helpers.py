"""What several test modules share: plain functions, classes and data (the fixtures built on
them are in conftest.py). No test module imports another test module; they import from here.

Sections: tools and implementations; servers in a thread; frames as a client sends them; a
raw-socket client and a recording app; one end of a socket pair; request heads; the hixie
drafts' known answers; leak counting; permessage-deflate on the wire; programs started by
the deployment tests (tests/apps/ holds the apps they serve), Redis among them.
"""
import base64
import contextlib
import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import websocket

from geventws import WebSocketHandler
from geventws.protocol import Connection
from geventws.protocol.deflate import client_negotiate, client_offer
from geventws.protocol.events import Failure, MessageEvent
from geventws.protocol.frames import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG,
                                      OP_TEXT, frame_header, mask)

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


# -- tools and implementations ------------------------------------------------------------

#: Under CI=true a missing tool fails its tests instead of skipping them.
CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
#: This run of the suite is the pure-Python one (``GEVENTWS_NO_EXTENSIONS=1``); servers and
#: interpreters the tests start inherit it.
FORCED_PURE = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))
#: CPython 3.11 and later give each greenlet a frame stack of its own; before, there is
#: nothing to keep and the frame-stack cache (geventws._framestacks) is not installed.
FRAME_STACKS = sys.version_info >= (3, 11)
#: Node.js peers (Node's ws) live here; ``npm install`` there (make test does) fetches ws.
NODE_DIR = os.path.join(TESTS, 'node')


def require_tool(path_or_name, why=''):
    """Skip when a tool is missing on a developer machine; fail under CI=true, where a
    missing tool means the CI install is broken (a skipped test hides that)."""
    found = shutil.which(path_or_name) or (os.path.exists(path_or_name) and path_or_name)
    if found:
        return found
    message = '%s not installed%s' % (path_or_name, ' (%s)' % why if why else '')
    if CI:
        pytest.fail(message + ' under CI=true')
    pytest.skip(message)


def require_node_ws():
    """The ``node`` executable, with Node's ws installed in tests/node."""
    node = require_tool('node', 'Node.js runs the ws peers')
    require_tool(os.path.join(NODE_DIR, 'node_modules', 'ws', 'package.json'),
                 "tests/node: run 'npm install' (make test does)")
    return node


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter, compiled unless ``env`` says otherwise."""
    environ = dict(os.environ, **env)
    environ.pop('GEVENTWS_NO_EXTENSIONS', None)
    environ.update(env)
    return subprocess.run([sys.executable, '-W', 'default', '-c', code], env=environ,
                          capture_output=True, text=True, timeout=60)


def free_port():
    with contextlib.closing(socket.socket()) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# -- servers in a thread ------------------------------------------------------------------

def cooperative_server_context(ca, *names):
    """A server's TLS context whose sockets cooperate with gevent's hub: gevent's own
    ``SSLContext`` class. (``gevent.ssl.create_default_context`` gives the standard library's
    class in a process that is not monkey-patched, and with it every read of a connection
    blocks the server's whole thread.)"""
    import gevent.ssl
    context = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    return context


class ThreadedServer:
    """A gevent WSGIServer serving ``app`` from its own thread.

    The server's hub is created inside that thread (see ../shared/RECIPES.md), so tests can
    drive it with ordinary blocking clients written by others (websocket-client, websockets,
    aiohttp, node ws) without monkey-patching the test process."""

    def __init__(self, app, handler_class=None, **server_kw):
        self.app = app
        self.handler_class = handler_class or WebSocketHandler
        self.server_kw = server_kw
        self.server = None
        self.hub = None
        self.port = None
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import gevent
        from gevent.pywsgi import WSGIServer
        try:
            self.hub = gevent.get_hub()
            self.server = WSGIServer(('127.0.0.1', 0), self.app, handler_class=self.handler_class,
                                     log=None, error_log=None, **self.server_kw)
            self.server.start()
            self.port = self.server.server_port
        except BaseException as exc:  # report start-up failures to the test
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.server.serve_forever()

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def call(self, func, *args):
        """Run ``func`` inside the server's thread (its hub) and return its result."""
        result = {}
        done = threading.Event()

        def run():
            try:
                result['value'] = func(*args)
            except BaseException as exc:
                result['error'] = exc
            done.set()

        self.hub.loop.run_callback_threadsafe(lambda: __import__('gevent').spawn(run))
        if not done.wait(30):
            raise TimeoutError('server thread did not answer')
        if 'error' in result:
            raise result['error']
        return result['value']

    def stop(self):
        if self.server is not None and self._thread.is_alive():
            self.hub.loop.run_callback_threadsafe(lambda: self.server.stop(timeout=1))
            self._thread.join(10)

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/' % self.port


def echo_app(environ, start_response):
    """Echo every message back with its type; plain HTTP gets 'Hello'."""
    ws = environ.get('wsgi.websocket')
    if ws is None:
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'Hello']
    for message in ws:
        ws.send(message)
    return []


# -- frames as a client sends them, and what the core makes of them ------------------------

MASK_KEY = b'\x12\x34\x56\x78'


def frame(opcode, payload=b'', fin=True, rsv=0, masked=True, length=None):
    """A frame as a client sends it; ``rsv`` (bits 4-6 of byte 0) and ``length`` may lie."""
    n = len(payload) if length is None else length
    b0 = opcode | (0x80 if fin else 0) | (rsv << 4)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mask_bit | n))
    elif n < 65536:
        head = struct.pack('!BBH', b0, mask_bit | 126, n)
    else:
        head = struct.pack('!BBQ', b0, mask_bit | 127, n)
    return head + MASK_KEY + mask(payload, MASK_KEY) if masked else head + payload


def close_frame(code, reason=b'', masked=False):
    return frame(OP_CLOSE, struct.pack('!H', code) + reason, masked=masked)


def message_data(events):
    """The data of the message events among a connection's ``events`` (pings, pongs and
    closes pass unseen); the connection must not have failed."""
    assert not [e for e in events if type(e) is Failure], events
    return [e.data for e in events if type(e) is MessageEvent]


# Every framing error (code 1002), invalid payload (1007) and over-size message (1009), for
# a server with max_message_size=1024: (name, bytes, code).
PROTOCOL_ERRORS = [
    ('unmasked client frame', frame(OP_TEXT, b'hi', masked=False), 1002),
    ('rsv1 without extension', frame(OP_TEXT, b'hi', rsv=4), 1002),
    ('rsv2', frame(OP_BINARY, b'hi', rsv=2), 1002),
    ('rsv3', frame(OP_PING, b'', rsv=1), 1002),
    ('rsv all', frame(OP_TEXT, b'', rsv=7), 1002),
    ('fragmented ping', frame(OP_PING, b'x', fin=False), 1002),
    ('fragmented close', frame(OP_CLOSE, b'', fin=False), 1002),
    ('ping of 126 bytes', frame(OP_PING, b'x' * 126), 1002),
    ('pong of 126 bytes', frame(OP_PONG, b'x' * 126), 1002),
    ('close of 126 bytes', frame(OP_CLOSE, b'\x03\xe8' + b'x' * 124), 1002),
    ('continuation without a start', frame(OP_CONTINUATION, b'x'), 1002),
    ('non-final continuation without a start', frame(OP_CONTINUATION, b'x', fin=False), 1002),
    ('text inside a fragmented message',
     frame(OP_TEXT, b'a', fin=False) + frame(OP_TEXT, b'b'), 1002),
    ('binary inside a fragmented message',
     frame(OP_BINARY, b'a', fin=False) + frame(OP_BINARY, b'b', fin=False), 1002),
    ('close with 1-byte payload', frame(OP_CLOSE, b'\x03'), 1002),
    ('64-bit length with its top bit set',
     frame(OP_BINARY, length=1 << 63)[:14], 1002),
    ('invalid UTF-8 text', frame(OP_TEXT, b'\xce\xba\xff'), 1007),
    ('invalid UTF-8 across fragments',
     frame(OP_TEXT, b'\xce', fin=False) + frame(OP_CONTINUATION, b'\x41'), 1007),
    ('truncated UTF-8 at the end of a message', frame(OP_TEXT, b'a\xe2\x82'), 1007),
    ('surrogate in text', frame(OP_TEXT, b'\xed\xa0\x80'), 1007),
    ('code point over U+10FFFF', frame(OP_TEXT, b'\xf4\x90\x80\x80'), 1007),
    ('invalid UTF-8 close reason', close_frame(1000, b'\xff', masked=True), 1007),
    ('message over max_message_size', frame(OP_BINARY, b'x' * 1025), 1009),
    ('fragments over max_message_size',
     frame(OP_TEXT, b'x' * 1000, fin=False) + frame(OP_CONTINUATION, b'x' * 25), 1009),
] + [('reserved opcode %d' % op, frame(op, b''), 1002) for op in (3, 4, 5, 6, 7, 11, 12, 13,
                                                                   14, 15)] + [
    ('invalid close code %d' % code, close_frame(code, masked=True), 1002)
    for code in (0, 999, 1004, 1005, 1006, 1012 + 4, 1015, 1100, 2000, 2999, 5000, 65535)]


# -- a raw-socket client and a recording app ----------------------------------------------

#: How long a raw-socket test waits for the server.
TIMEOUT = 5


class RawClient:
    """A WebSocket client made of a socket and nothing else: it sends what the test says,
    however wrong, and reads exactly what the server sends."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT)
        self.buf = b''

    def request(self, headers=None, path='/', method='GET', version='HTTP/1.1', extra=b''):
        """Send a request head (and ``extra`` bytes right behind it); return the status and
        the lower-cased response headers."""
        if headers is None:
            headers = upgrade_headers()
        head = '%s %s %s\r\n' % (method, path, version)
        head += ''.join('%s: %s\r\n' % h for h in headers) + '\r\n'
        self.sock.sendall(head.encode('latin-1') + extra)
        return self.read_head()

    def read_head(self):
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(':', 1)
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def handshake(self, **kw):
        status, headers = self.request(**kw)
        assert status == 101, (status, headers, self.buf)
        return headers

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError('server closed the connection; buffered %r' % self.buf[:100])
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_body(self):
        """Everything until the server closes the connection."""
        try:
            while True:
                self._fill()
        except EOFError:
            data, self.buf = self.buf, b''
            return data

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """(opcode, payload, fin) of the next server frame, which must be unmasked with no
        reserved bit set."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, 'server frames must not be masked'
        assert not b0 & 0x70, 'reserved bits set by the server'
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack('!H', self._take(2))[0]
        elif n == 127:
            n = struct.unpack('!Q', self._take(8))[0]
        return b0 & 0x0F, self._take(n), bool(b0 & 0x80)

    def recv_message(self):
        """The next data message (str or bytes), reassembled; control frames are skipped."""
        parts, kind = [], None
        while True:
            opcode, payload, fin = self.recv_frame()
            if opcode >= 8:
                assert opcode != OP_CLOSE, 'close frame %r instead of a message' % payload
                continue
            if kind is None:
                kind = opcode
            parts.append(payload)
            if fin:
                data = b''.join(parts)
                return data.decode('utf-8') if kind == OP_TEXT else data

    def recv_close(self):
        """(code, reason) of the server's close frame, which must come next."""
        opcode, payload, _ = self.recv_frame()
        assert opcode == OP_CLOSE, (opcode, payload[:50])
        if not payload:
            return 1005, ''
        return struct.unpack('!H', payload[:2])[0], payload[2:].decode('utf-8')

    def assert_eof(self):
        """The server closed (at least its side of) the TCP connection, sending nothing more."""
        assert self.buf == b''
        assert self.sock.recv(1) == b''

    def reset(self):
        """Abort the connection: the server sees a TCP RST, not a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()


def upgrade_headers(key=None, version='13', protocols=None, **overrides):
    headers = {'Host': '127.0.0.1', 'Upgrade': 'websocket', 'Connection': 'Upgrade',
               'Sec-WebSocket-Key': key or base64.b64encode(os.urandom(16)).decode(),
               'Sec-WebSocket-Version': version}
    if protocols:
        headers['Sec-WebSocket-Protocol'] = protocols
    headers.update((name.replace('_', '-'), value) for name, value in overrides.items())
    return [(name, value) for name, value in headers.items() if value is not None]


class Recorder:
    """An event-style app that records what it sees and echoes messages, with a way for the
    test thread to wait until the handler is completely done with the connection (served
    with ``TrackingHandler``; the ``recorder_server`` fixture does both)."""

    def __init__(self, on_open=None):
        self.events = []
        self.handled = threading.Semaphore(0)
        self.on_open = on_open
        self.websockets = []

    def __call__(self, environ, start_response):
        ws = environ['wsgi.websocket']
        self.websockets.append(ws)
        ws.onopen = lambda event: self._opened(ws)
        ws.onmessage = lambda event: (self.events.append(('message', event.data)),
                                      ws.send(event.data))
        ws.onerror = lambda event: self.events.append(('error', event.error.code))
        ws.onclose = lambda event: self.events.append(('close', event.code, event.reason))
        return []

    def _opened(self, ws):
        self.events.append('open')
        if self.on_open is not None:
            self.on_open(ws)

    def wait_handled(self, count=1):
        for _ in range(count):
            assert self.handled.acquire(timeout=TIMEOUT), 'handler did not finish'
        return self.events


class TrackingHandler(WebSocketHandler):
    """Tells the app (a Recorder) when pywsgi's handler has finished with a connection."""

    def handle(self):
        try:
            super().handle()
        finally:
            handled = getattr(self.application, 'handled', None)
            if handled is not None:
                handled.release()


# -- one end of a socket pair (the ``pair`` fixture) ---------------------------------------

def written_now(peer):
    """What the peer can read right now, without waiting."""
    peer.setblocking(False)
    try:
        return peer.recv(1 << 20)
    except BlockingIOError:
        return b''
    finally:
        peer.setblocking(True)


def send_messages(peer, client, *messages):
    """Send ``messages`` from the peer's socket in one write, framed by ``client`` (a client
    ``Connection``)."""
    peer.sendall(b''.join(b''.join(client.send_message(m)) for m in messages))


# -- request heads ------------------------------------------------------------------------

#: The fields of Chromium's upgrade request, after its request line.
BROWSER_UPGRADE = (
    b'Host: 127.0.0.1:8000\r\nConnection: Upgrade\r\nPragma: no-cache\r\n'
    b'Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36'
    b' (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\n'
    b'Origin: http://127.0.0.1:8000\r\nSec-WebSocket-Version: 13\r\n'
    b'Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n'
    b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
    b'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n')


def without_date(response):
    """An HTTP response without its Date header, which may tick between two responses."""
    return b'\r\n'.join(line for line in response.split(b'\r\n')
                        if not line.startswith(b'Date: '))


# -- the hixie drafts ---------------------------------------------------------------------

# draft-hixie-thewebsocketprotocol-76's two known answers: (key1, key2, key3, answer).
KNOWN_ANSWERS = [
    # draft-76 section 1.3, the handshake example
    ('4 @1  46546xW%0l 1 5', '12998 5 Y3 1  .P00', b'^n:ds[4U', b"8jKS'y:G*Co,Wxa-"),
    # draft-76, the worked example of the server's opening handshake
    ('18x 6]8vM;54 *(5:  {   U1]8  z [  8', '1_ tx7X d  <  nw  334J702) 7]o}` 0', b'Tm[K T2u',
     b'fQJ,fN/4F4!~K~MH'),
]


# -- leak counting ------------------------------------------------------------------------

def rss_kib():
    """This process's resident memory in KiB (the servers of ThreadedServer run in it)."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise RuntimeError('no VmRSS in /proc/self/status')


def greenlet_count():
    """How many greenlets exist in this process (after a full collection)."""
    import gc
    import greenlet
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet))


def fd_count():
    """How many file descriptors this process holds."""
    return len(os.listdir('/proc/self/fd'))


def settled(measure, baseline, timeout=10):
    """``measure()`` once it is back to ``baseline`` or below (connections that were reset
    end in the server a moment after the client is gone), else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = measure()
        if value <= baseline or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# -- permessage-deflate on the wire -------------------------------------------------------

class WireTap:
    """Relays every connection made to ``port`` to ``upstream_port`` and records what each
    side sent: ``streams`` holds one ``(client_bytes, server_bytes)`` pair per connection.
    A test sees the RSV1 bit of each data frame instead of trusting what either end
    reports."""

    def __init__(self, upstream_port, timeout=20):
        self.upstream_port = upstream_port
        self.timeout = timeout
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
            upstream = socket.create_connection(('127.0.0.1', self.upstream_port),
                                                self.timeout)
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
                for op, rsv1 in recorded_frames(bytes(stream[which])) if op < 8]

    def assert_compressed_both_ways(self):
        for which in (0, 1):
            frames = self.data_frames(which)
            assert any(rsv1 for _, rsv1 in frames), ('no compressed frame from the %s'
                                                     % ('client', 'server')[which])


def recorded_frames(stream):
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


class CoreClient:
    """Our client role without the client module: the core's client ``Connection`` with
    ``deflate.client_offer``/``client_negotiate`` over a blocking socket."""

    def __init__(self, port, compression=True, max_message_size=2 ** 24, offer=None,
                 timeout=20):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout)
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


# -- programs started by the deployment tests ---------------------------------------------

#: The apps the deployment tests serve (flask_app, bottle_app and their common part).
APPS_DIR = os.path.join(TESTS, 'apps')
PYTHON = sys.executable
START_TIMEOUT = 20


class Program:
    """One started program (gunicorn, ``python -m geventws serve``, nginx, haproxy...) on a
    127.0.0.1 port; its stdout and stderr go to ``log_path``. The ``programs`` fixture
    starts them, waits until their port accepts, and always stops them."""

    def __init__(self, argv, port, log_path, cwd=None, env=None, stop_signal=signal.SIGTERM):
        self.argv, self.port, self.log_path = argv, port, log_path
        self.stop_signal = stop_signal
        with open(log_path, 'wb') as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_for_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail('%s exited with %s:\n%s' % (self.argv[0], self.proc.returncode,
                                                        self.output()))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail('%s did not listen on %d:\n%s' % (self.argv[0], self.port,
                                                                  self.output()))
                time.sleep(0.02)

    def output(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as log:
            return log.read()

    def wait_for_output(self, text, timeout=START_TIMEOUT):
        """Wait until ``text`` appears in the output; returns the whole output."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                pytest.fail('%r never appeared in:\n%s' % (text, self.output()))
            time.sleep(0.05)
        return self.output()

    def send(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Redis:
    """A redis-server (Debian's package) in ``directory`` on a free port, append-only with
    every write synced, so that a restart keeps what was published; ``options`` are more of
    its flags. ``programs`` (the fixture) starts it, and stops it at the end of the test."""

    def __init__(self, programs, directory, *options):
        self.programs = programs
        self.binary = require_tool('redis-server', 'the Redis backend of geventws.pubsub')
        self.directory = str(directory)
        self.port = free_port()
        self.options = options
        self.url = 'redis://127.0.0.1:%d/0' % self.port
        self.program = None
        self.start()

    def start(self):
        self.program = self.programs(
            [self.binary, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'yes', '--appendfsync', 'always', '--dir', self.directory,
             *self.options], self.port)
        deadline = time.monotonic() + START_TIMEOUT
        while self.command(b'PING') != b'+PONG\r\n':   # loading its data, until PONG
            assert time.monotonic() < deadline, self.program.output()
            time.sleep(0.02)
        return self

    def stop(self):
        self.program.stop()

    def command(self, *words):
        """One command's first answer (raw RESP)."""
        with socket.create_connection(('127.0.0.1', self.port), timeout=10) as sock:
            sock.sendall(b'*%d\r\n' % len(words) +
                         b''.join(b'$%d\r\n%s\r\n' % (len(w), w) for w in words))
            return sock.recv(65536)


def python_env(**extra):
    """The environment for a Python child: this checkout and the test apps importable,
    output unbuffered. It inherits GEVENTWS_NO_EXTENSIONS: the child runs the implementation
    this run of the suite is about."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', **extra)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, APPS_DIR, env.get('PYTHONPATH')]))
    return env


def import_app(name):
    """One of the test apps (``flask_app``, ``bottle_app``) imported into this process, which
    finds their common part as gunicorn does, on the path."""
    if APPS_DIR not in sys.path:
        sys.path.insert(0, APPS_DIR)
    return importlib.import_module(name)


def ws_connect(url, cafile=None, **options):
    """A websocket-client connection (verifying against ``cafile`` for wss)."""
    sslopt = {'ca_certs': cafile} if cafile else None
    return websocket.create_connection(url, timeout=10, sslopt=sslopt, **options)


def read_until_close(ws):
    """The messages that arrive before the server's close, and that close's (code, reason);
    websocket-client answers the close."""
    messages = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return messages, (int.from_bytes(data[:2], 'big'), data[2:].decode('utf-8'))
        if opcode == websocket.ABNF.OPCODE_TEXT:
            messages.append(data.decode('utf-8'))
        elif opcode == websocket.ABNF.OPCODE_BINARY:
            messages.append(data)


def http_get(url, context=None, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return response.read().decode('utf-8')


def assert_echoes(ws):
    """A websocket-client connection to an echo echoes text and binary."""
    ws.send('hello é')
    assert ws.recv() == 'hello é'
    ws.send_binary(b'\x00\xff' * 1000)
    assert ws.recv() == b'\x00\xff' * 1000


def join_chat(port, name):
    """A member ``name`` of the chat demo's room (examples/chat) on ``port``."""
    return websocket.create_connection('ws://127.0.0.1:%d/chat?name=%s' % (port, name),
                                       timeout=10)


def assert_frame_stacks_as_expected(url):
    """``url`` is the /framestacks page of a test app (apps/common.py) in a server we
    started: the server installed the frame-stack cache exactly when it should, on the
    compiled path (which the server inherits from this run) and CPython 3.11 or later."""
    seen = json.loads(http_get(url))
    if not FORCED_PURE and FRAME_STACKS:
        assert '_framestacks' in seen['allocator'], seen   # the arena allocator is the cache
        assert seen['kept'] >= 1, seen        # which kept the stack of a finished greenlet
    else:
        assert '_framestacks' not in seen['allocator'], seen
        assert seen['kept'] in (0, None), seen   # None: the module was not built
    return seen


#: Server options that the deploy tests set in each place a server is configured, and that
#: ``assert_server_options`` then observes from outside.
SERVER_OPTIONS = {'handshake_timeout': 1.0, 'origins': ['https://chat.example', None],
                  'legacy': False, 'max_request_head': 4000}


def assert_server_options(port):
    """The server at ``port`` behaves as SERVER_OPTIONS say: a silent connection is closed
    after about a second, a foreign Origin gets 403 and the listed ones (or none) 101, a
    hixie-75 request 426, and a head over 4000 bytes 431."""
    def status_of(headers, extra_fields=()):
        client = RawClient(port)
        try:
            return client.request(headers=list(headers) + list(extra_fields),
                                  path='/echo')[0]
        finally:
            client.close()

    assert status_of(upgrade_headers(Origin='https://chat.example')) == 101
    assert status_of(upgrade_headers()) == 101
    assert status_of(upgrade_headers(Origin='https://evil.example')) == 403
    assert status_of([('Host', 'x'), ('Upgrade', 'WebSocket'), ('Connection', 'Upgrade'),
                      ('Origin', 'https://chat.example')]) == 426
    assert status_of(upgrade_headers(), [('X-Big', 'x' * 4000)]) == 431
    with socket.create_connection(('127.0.0.1', port), timeout=10) as silent:
        start = time.monotonic()
        assert silent.recv(1) == b''
        assert 0.5 < time.monotonic() - start < 5
