"""A connection's first request: a plain RFC 6455 upgrade head is parsed from the first read
(requesthead.plain_upgrade_head) and must give the app exactly what pywsgi's own reading
gives; everything else is read by pywsgi, with nothing lost of what the first read took."""
import io
import socket
import threading

import pytest
from gevent.pywsgi import WSGIHandler

from geventws import WebSocketHandler
from geventws.io import handler as handler_module
from geventws.io.requesthead import plain_upgrade_head
from geventws.protocol.frames import OP_TEXT
from helpers import (BROWSER_UPGRADE, TIMEOUT, RawClient, close_frame, echo_app, frame,
                     upgrade_headers, without_date)

KEY = b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
UPGRADE = b'Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
PLAIN = b'GET / HTTP/1.1\r\n' + UPGRADE + KEY + b'Sec-WebSocket-Version: 13\r\n\r\n'


@pytest.mark.parametrize('data', [
    PLAIN,
    PLAIN + frame(OP_TEXT, b'early'),
    b'GET /a%20b?x=1 HTTP/1.1\r\n' + BROWSER_UPGRADE,
    b'GET / HTTP/1.1\r\n' + UPGRADE + KEY + b'\r\n',                       # no version: 426
    b'GET / HTTP/1.1\r\nUpgrade: h2c, WebSocket\r\nSec-WebSocket-Version: 99\r\n\r\n',
    b'GET  /x\tHTTP/1.1\r\n' + UPGRADE + KEY + b'\r\n',                    # odd spacing
    b'GET / HTTP/1.1\r\n' + UPGRADE + KEY + b'X_Under: 1\r\nCookie: a\r\ncookie: b\r\n\r\n',
    PLAIN.replace(b'\r\n\r\n', b'\r\nContent_Length: 5\r\n\r\n'),   # no body field: no '-'
])
def test_plain_upgrade_heads_are_taken(data):
    head = plain_upgrade_head(data)
    assert head is not None
    assert data.startswith(head.requestline.encode('latin-1'))
    assert head.rest == data[data.index(b'\r\n\r\n') + 4:]


@pytest.mark.parametrize('data', [
    b'',
    PLAIN[:-2],                                                          # not complete
    PLAIN.replace(b'HTTP/1.1', b'HTTP/1.0'),
    PLAIN.replace(b'GET', b'POST'),
    b'GET / HTTP/1.1 extra\r\n' + UPGRADE + KEY + b'\r\n',
    b'GET / HTTP/1.1\r\n' + KEY + b'Host: h\r\n\r\n',                     # plain HTTP
    b'GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',   # hixie-75
    b'GET / HTTP/1.1\r\n' + UPGRADE + b'Sec-WebSocket-Key1: 1 2\r\n\r\n',  # hixie-76
    PLAIN.replace(b'\r\n\r\n', b'\r\nContent-Length: 0\r\n\r\n'),
    PLAIN.replace(b'\r\n\r\n', b'\r\nTransfer-Encoding: chunked\r\n\r\n'),
    PLAIN.replace(b'\r\n\r\n', b'\r\nExpect: 100-continue\r\n\r\n'),
    PLAIN.replace(b'\r\n\r\n', b'\r\ncontent-type: text/plain\r\n\r\n'),
    PLAIN.replace(b'Host: h\r\n', b'Host: h\r\n folded\r\n'),
    PLAIN.replace(b'Host: h\r\n', b'Host: h\rX: y\r\n'),                  # bare CR
    PLAIN.replace(b'Host: h\r\n', b'Host : h\r\n'),
    PLAIN.replace(b'GET / HTTP/1.1\r\n', b'GET / HTTP/1.1\n'),
    PLAIN.replace(b'GET / HTTP/1.1\r\n', b'GET /\r HTTP/1.1\r\n'),
    PLAIN.replace(b'\r\n\r\n', b'\r\n' + b'X: y\r\n' * 96 + b'\r\n'),     # 101 fields: 431
])
def test_other_first_requests_are_left_to_pywsgi(data):
    assert plain_upgrade_head(data) is None


def test_a_hundred_fields_are_still_plain():
    assert plain_upgrade_head(PLAIN.replace(b'\r\n\r\n', b'\r\n' + b'X: y\r\n' * 95 + b'\r\n'))


def test_heads_over_a_servers_limits_are_left_to_pywsgi():
    # (whose reading answers 431: test_requesthead)
    assert plain_upgrade_head(PLAIN, max_size=len(PLAIN) - 1) is None
    assert plain_upgrade_head(PLAIN, max_line=len(PLAIN) - 1) is None
    assert plain_upgrade_head(PLAIN, max_headers=4) is None
    assert plain_upgrade_head(PLAIN, max_size=len(PLAIN), max_line=len(PLAIN), max_headers=5)


class Recording(WebSocketHandler):
    """Adds to the environ what the handler itself holds after reading the request."""

    def get_environ(self):
        environ = super().get_environ()
        environ['test.handler'] = repr((self.requestline, self.command, self.path,
                                        self.request_version, self.headers.items(),
                                        self.content_length, self.close_connection))
        return environ


class PywsgiReading(Recording):
    """Reads every request with pywsgi's own file object (an ``rfile`` given)."""

    def __init__(self, sock, address, server, rfile=None):
        super().__init__(sock, address, server, sock.makefile('rb', -1))


def _environ_page(environ, start_response):
    """Refuses the upgrade with a page of the environ's text values."""
    seen = sorted((key, value) for key, value in environ.items()
                  if isinstance(value, str) and key not in ('REMOTE_PORT', 'SERVER_PORT'))
    body = repr((seen, environ['wsgi.input_terminated'],
                 getattr(environ['wsgi.input'], 'closed', None)))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]


def _exchange(port, request):
    with socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return without_date(b''.join(chunks))
            chunks.append(chunk)


REQUESTS = {
    'browser': b'GET /chat%20room/x?a=1&b=%41 HTTP/1.1\r\n' + BROWSER_UPGRADE,
    'repeated, odd and latin-1 fields': (
        b'GET /\xe9t\xe9 HTTP/1.1\r\n' + UPGRADE + KEY + b'Sec-WebSocket-Version: 13\r\n'
        b'Cookie: a=1\r\ncookie: b=2\r\nX-Dup: 1\r\nx-dup:2 \r\nX_Under: dropped\r\n'
        b'X-Latin: caf\xe9 \xa0\r\nX-Empty:\r\nX-Base: request\r\n\r\n'),
    'Connection: close too': PLAIN.replace(b'Connection: Upgrade', b'Connection: close'),
    'bad key': PLAIN.replace(KEY, b'Sec-WebSocket-Key: short\r\n'),
    'unsupported version': PLAIN.replace(b'Version: 13', b'Version: 99'),
}


@pytest.mark.parametrize('base', [{}, {'HTTP_X_BASE': 'server', 'HTTP_COOKIE': 'server=1'}],
                         ids=['plain base environ', 'base environ with fields'])
@pytest.mark.parametrize('name', sorted(REQUESTS))
def test_same_request_as_pywsgi_reads(name, base, serve, monkeypatch):
    taken = []
    monkeypatch.setattr(handler_module, 'plain_upgrade_head',
                        lambda *args: taken.append(plain_upgrade_head(*args)) or taken[-1])
    environ = dict(base)
    ours = serve(_environ_page, Recording, environ=environ)
    pywsgis = serve(_environ_page, PywsgiReading, environ=environ)
    responses = [_exchange(server.port, REQUESTS[name]) for server in (ours, pywsgis)]
    assert responses[0] == responses[1]
    assert len(taken) == 1 and taken[0] is not None   # the first server took the shortcut
    assert responses[0].startswith(b'HTTP/1.1 200 ' if name in (
        'browser', 'repeated, odd and latin-1 fields') else b'HTTP/1.1 4')


def test_a_head_in_pieces_and_early_frames(serve, monkeypatch):
    first_reads = []
    first_read = threading.Event()

    def recording(data, *limits):
        first_reads.append(data)
        first_read.set()
        return plain_upgrade_head(data, *limits)
    monkeypatch.setattr(handler_module, 'plain_upgrade_head', recording)
    client = RawClient(serve(echo_app).port)
    try:
        head = ('GET / HTTP/1.1\r\n%s\r\n' % ''.join(
            '%s: %s\r\n' % field for field in upgrade_headers())).encode()
        client.sock.sendall(head[:20])
        assert first_read.wait(TIMEOUT)   # the server's first read took these bytes only
        client.sock.sendall(head[20:] + frame(OP_TEXT, b'early'))
        assert client.read_head()[0] == 101
        assert client.recv_message() == 'early'
    finally:
        client.close()
    assert first_reads == [head[:20]]


def test_keep_alive_requests_after_a_first_read_of_two(serve):
    two = (b'GET /one HTTP/1.1\r\nHost: x\r\n\r\n'
           b'GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    response = _exchange(serve(_environ_page).port, two)
    assert response.count(b'HTTP/1.1 200 OK') == 2
    assert b"'/one'" in response and b"'/two'" in response


class OtherReading(WSGIHandler):
    """Another pywsgi handler with a reading of its own, mixed in after WebSocketHandler."""
    calls = []

    def read_request(self, raw_requestline):
        self.calls.append(raw_requestline)
        return super().read_request(raw_requestline)


class Mixed(WebSocketHandler, OtherReading):
    pass


def test_a_mixed_in_reading_is_not_skipped(serve):
    client = RawClient(serve(echo_app, Mixed).port)
    try:
        client.handshake()
        client.send(frame(OP_TEXT, b'hi', masked=True))
        assert client.recv_message() == 'hi'
    finally:
        client.close()
    assert OtherReading.calls == ['GET / HTTP/1.1\r\n']
    assert not Mixed._reads_plain_heads and WebSocketHandler._reads_plain_heads


class Finishing(WebSocketHandler):
    """Tells the test when pywsgi's handler is done with a connection (its access line, if
    any, is written by then)."""
    finished = None

    def handle(self):
        try:
            super().handle()
        finally:
            self.finished.release()


@pytest.mark.parametrize('log', [None, 'stream'])
def test_an_access_line_is_formatted_only_for_a_log(serve, monkeypatch, log):
    formatted = []
    real = WebSocketHandler.format_request
    monkeypatch.setattr(WebSocketHandler, 'format_request',
                        lambda self: formatted.append(1) or real(self))
    monkeypatch.setattr(Finishing, 'finished', threading.Semaphore(0))
    stream = io.StringIO()
    server = serve(echo_app, Finishing)
    if log is not None:
        server.server.log = stream
    client = RawClient(server.port)
    try:
        client.handshake()
    finally:
        client.close()
    assert Finishing.finished.acquire(timeout=TIMEOUT)
    assert formatted == ([] if log is None else [1])
    assert ('" 101 ' in stream.getvalue()) == (log is not None)


def test_the_end_of_an_upgraded_connection_is_one_close(serve, monkeypatch):
    """No file object refers to the socket after the upgrade, so close() sends the FIN at
    once: no shutdown() call before it (one system call per connection less)."""
    import gevent.socket
    shutdowns = []
    real = gevent.socket.socket.shutdown
    monkeypatch.setattr(gevent.socket.socket, 'shutdown',
                        lambda self, how: shutdowns.append(how) or real(self, how))
    client = RawClient(serve(echo_app).port)
    try:
        client.handshake()
        client.send(close_frame(1000, masked=True))
        assert client.recv_close() == (1000, '')
        client.assert_eof()
    finally:
        client.close()
    assert shutdowns == []


VOLATILE = ('HTTP_HOST', 'HTTP_ORIGIN', 'HTTP_SEC_WEBSOCKET_KEY', 'REMOTE_PORT', 'SERVER_PORT')


def _environ_message(environ, start_response):
    """Accepts the upgrade and sends the environ's text values as one message (those that
    change from one connection to the next by name only)."""
    ws = environ['wsgi.websocket']
    seen = sorted((key, '?' if key in VOLATILE else value) for key, value in environ.items()
                  if isinstance(value, str) and not key.startswith('test.'))
    ws.send(repr(seen))
    ws.close()
    return []


def _websocket_client(url):
    import websocket
    ws = websocket.create_connection(url, timeout=TIMEOUT)
    try:
        return ws.recv()
    finally:
        ws.close()


def _websockets(url):
    from websockets.sync.client import connect
    with connect(url, open_timeout=TIMEOUT) as ws:
        return ws.recv(timeout=TIMEOUT)


@pytest.mark.parametrize('client', [_websocket_client, _websockets])
def test_real_clients_take_the_shortcut_and_get_pywsgis_environ(client, serve, monkeypatch):
    taken = []
    monkeypatch.setattr(handler_module, 'plain_upgrade_head',
                        lambda *args: taken.append(plain_upgrade_head(*args)) or taken[-1])
    ours = serve(_environ_message, Recording)
    pywsgis = serve(_environ_message, PywsgiReading)
    seen = [client(server.url + 'path?q=1') for server in (ours, pywsgis)]
    assert seen[0] == seen[1]
    assert "('QUERY_STRING', 'q=1')" in seen[0]
    assert len(taken) == 1 and taken[0] is not None
