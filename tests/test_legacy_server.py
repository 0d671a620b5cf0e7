"""The hixie drafts through the real server, driven by raw sockets: draft-75 and draft-76
handshakes (the 8 bytes of key3 with the headers, apart from them, cut in two), echo of text
split across TCP segments or several to a segment, the closing frame, abrupt ends, failures,
the event and blocking APIs, hixie and RFC 6455 clients on one app at once, and no leaks."""
import contextlib
import socket
import ssl
import threading
import time

import pytest
import trustme

import geventws.io.handler
from geventws import UnsupportedOperation, WebSocketHandler
from geventws.protocol.frames import OP_TEXT
from helpers import (KNOWN_ANSWERS, RawClient, Recorder, TrackingHandler, close_frame,
                     cooperative_server_context,
                     echo_app, fd_count, frame, greenlet_count, settled)

KEY1, KEY2, KEY3, ANSWER = KNOWN_ANSWERS[1]
ORIGIN = 'http://example.com'
DRAFTS = [75, 76]
STATUS_LINES = {
    75: b'HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\n'
        b'Connection: Upgrade\r\n',
    76: b'HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\n'
        b'Connection: Upgrade\r\n',
}


def hixie_headers(draft, protocol=None, **overrides):
    """The request headers of a draft-75 or draft-76 client (76: the worked example's keys)."""
    headers = {'Upgrade': 'WebSocket', 'Connection': 'Upgrade', 'Host': 'example.com',
               'Origin': ORIGIN}
    if draft == 76:
        headers.update({'Sec-WebSocket-Key1': KEY1, 'Sec-WebSocket-Key2': KEY2})
    if protocol:
        headers['Sec-WebSocket-Protocol' if draft == 76 else 'WebSocket-Protocol'] = protocol
    headers.update((name.replace('_', '-'), value) for name, value in overrides.items())
    return [(name, value) for name, value in headers.items() if value is not None]


class HixieClient(RawClient):
    """A draft-75 or draft-76 client made of a socket: it sends what the test says and reads
    exactly what the server sends."""

    def __init__(self, port, draft):
        super().__init__(port)
        self.draft = draft
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_request(self, headers=None, path='/demo', key3_pieces=1, extra=b''):
        """The request head, then (draft-76) key3 in ``key3_pieces`` TCP segments (1: with
        the headers, 2: apart from them, 3: apart and cut in two), then ``extra``."""
        head = 'GET %s HTTP/1.1\r\n' % path
        head += ''.join('%s: %s\r\n' % h for h in headers or hixie_headers(self.draft))
        head = (head + '\r\n').encode('latin-1')
        key3 = KEY3 if self.draft == 76 else b''
        if key3_pieces == 1:
            self.sock.sendall(head + key3 + extra)
            return
        self.sock.sendall(head)
        for piece in (key3,) if key3_pieces == 2 else (key3[:4], key3[4:]):
            time.sleep(0.05)   # separate TCP segments
            self.sock.sendall(piece)
        self.sock.sendall(extra)

    def open(self, **kw):
        """Handshake, checking the answer as a client of the draft would."""
        self.send_request(**kw)
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        assert self.buf.startswith(STATUS_LINES[self.draft]), self.buf
        status, headers = self.read_head()
        assert status == 101
        if self.draft == 76:
            assert self._take(16) == ANSWER
        self.response_headers = headers

    def send_text(self, text):
        self.sock.sendall(b'\x00' + text.encode('utf-8') + b'\xff')

    def recv_text(self):
        assert self._take(1) == b'\x00', 'a text frame must come next'
        while b'\xff' not in self.buf:
            self._fill()
        data, self.buf = self.buf.split(b'\xff', 1)
        return data.decode('utf-8')

    def recv_closing_frame(self):
        assert self._take(2) == b'\xff\x00'

    def close_cleanly(self):
        """Close as the draft says: 76 sends its closing frame and gets the server's back,
        75 closes TCP; either way the server then closes TCP."""
        if self.draft == 76:
            self.sock.sendall(b'\xff\x00')
            self.recv_closing_frame()
        else:
            self.sock.shutdown(socket.SHUT_WR)
        self.assert_eof()


@pytest.fixture(params=DRAFTS, ids=['hixie-75', 'hixie-76'])
def draft(request):
    return request.param


@pytest.fixture
def hixie_client(draft):
    """``hixie_client(server, **open_kw)``: an open HixieClient of the test's draft."""
    with contextlib.ExitStack() as stack:
        def connect(server, **kw):
            client = stack.enter_context(contextlib.closing(HixieClient(server.port, draft)))
            client.open(**kw)
            return client
        yield connect


def _describe(environ, start_response):
    ws = environ['wsgi.websocket']
    ws.accept(protocols=['chat'], headers=[('X-Server', 'geventws')])
    ws.send('%s|%s|%s' % (environ['wsgi.websocket_version'], ws.protocol, ws.path))
    ws.receive()
    return []


# -- the opening handshake --------------------------------------------------------------

@pytest.mark.parametrize('key3_pieces', [1, 2, 3])
@pytest.mark.parametrize('protocol,selected', [('chat', 'chat'), ('other', ''), (None, '')])
def test_handshake(serve, hixie_client, draft, key3_pieces, protocol, selected):
    client = hixie_client(serve(_describe), headers=hixie_headers(draft, protocol),
                          path='/demo?room=1', key3_pieces=key3_pieces)
    headers = client.response_headers
    prefix = 'sec-websocket-' if draft == 76 else 'websocket-'
    assert headers[prefix + 'origin'] == ORIGIN
    assert headers[prefix + 'location'] == 'ws://example.com/demo?room=1'
    assert headers.get(prefix + 'protocol', '') == selected
    assert headers['x-server'] == 'geventws'
    assert client.recv_text() == 'hixie-%d|%s|/demo' % (draft, selected)


@pytest.mark.parametrize('key3_pieces', [1, 3])
def test_wss_location_and_key3_over_tls(serve, draft, key3_pieces):
    ca = trustme.CA()
    server_context = cooperative_server_context(ca, 'localhost')
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client = HixieClient(serve(echo_app, ssl_context=server_context).port, draft)
    client.sock = client_context.wrap_socket(client.sock, server_hostname='localhost')
    try:
        client.open(key3_pieces=key3_pieces)
        prefix = 'sec-websocket-' if draft == 76 else 'websocket-'
        assert client.response_headers[prefix + 'location'] == 'wss://example.com/demo'
        client.send_text('secret')
        assert client.recv_text() == 'secret'
    finally:
        client.close()


def test_frames_right_behind_key3_are_read(serve, hixie_client):
    client = hixie_client(serve(echo_app), extra=b'\x00early\xff\x00bird\xff')
    assert [client.recv_text(), client.recv_text()] == ['early', 'bird']


def _rejected(client, **kw):
    client.send_request(**kw)
    status, headers = client.read_head()
    body = client.read_body()
    assert body.endswith(b'\n') and body.count(b'\n') == 1
    assert len(body) == int(headers['content-length'])
    return status, body.decode()


@pytest.mark.parametrize('overrides,mention', [
    (dict(Sec_WebSocket_Key1='12345678'), 'Sec-WebSocket-Key1 must contain digits and spaces'),
    (dict(Sec_WebSocket_Key2='no digits here'), 'Sec-WebSocket-Key2 must contain digits'),
    (dict(Sec_WebSocket_Key1='1 2 3'), 'not a multiple of its 2 spaces'),
    (dict(Sec_WebSocket_Key2=None), 'Sec-WebSocket-Key2'),
    (dict(Origin=None), 'Origin'),
])
def test_bad_draft76_request_is_400(serve, overrides, mention):
    client = HixieClient(serve(echo_app).port, 76)
    try:
        status, body = _rejected(client, headers=hixie_headers(76, **overrides))
    finally:
        client.close()
    assert status == 400 and mention in body


@pytest.mark.parametrize('headers', [
    [('Host', 'x'), ('Upgrade', 'websocket'), ('Connection', 'keep-alive')],
    [('Host', 'x'), ('Upgrade', 'websocket, h2c'), ('Connection', 'Upgrade'), ('Origin', 'o')],
])
def test_request_of_no_family_is_400(serve, headers):
    client = HixieClient(serve(echo_app).port, 75)
    try:
        status, body = _rejected(client, headers=headers)
    finally:
        client.close()
    assert status == 400 and 'matches no WebSocket version' in body


def test_key3_cut_short_is_400(serve):
    client = HixieClient(serve(echo_app).port, 76)
    try:
        client.sock.sendall(b'GET / HTTP/1.1\r\n' + b''.join(
            b'%s: %s\r\n' % (n.encode(), v.encode()) for n, v in hixie_headers(76)) +
            b'\r\n' + KEY3[:5])
        client.sock.shutdown(socket.SHUT_WR)
        status, _ = client.read_head()
    finally:
        client.close()
    assert status == 400


def test_key3_that_never_comes_is_400(serve):
    client = HixieClient(serve(echo_app, WebSocketHandler.configure(handshake_timeout=0.2)).port,
                         76)
    try:
        client.sock.sendall(b'GET / HTTP/1.1\r\n' + b''.join(
            b'%s: %s\r\n' % (n.encode(), v.encode()) for n, v in hixie_headers(76)) +
            b'\r\n' + KEY3[:7])
        status, _ = client.read_head()
        body = client.read_body()
    finally:
        client.close()
    assert status == 400 and b'did not arrive within the handshake timeout (0.2 s)' in body


# -- messages ---------------------------------------------------------------------------

TEXTS = ['hello', 'h\u00e9llo w\u00f6rld \u20ac \U0001f600', '', 'z' * 100000]


def test_echo(serve, hixie_client):
    client = hixie_client(serve(echo_app))
    for text in TEXTS:
        client.send_text(text)
        assert client.recv_text() == text


def test_message_split_across_segments(serve, hixie_client):
    client = hixie_client(serve(echo_app))
    wire = b'\x00\xe2\x82\xac and \xf0\x9f\x98\x80\xff'
    for i in range(len(wire)):
        client.sock.sendall(wire[i:i + 1])
        time.sleep(0.002)
    assert client.recv_text() == '\u20ac and \U0001f600'


def test_two_messages_in_one_segment(serve, hixie_client):
    client = hixie_client(serve(echo_app))
    client.sock.sendall(b'\x00one\xff\x00two\xff')
    assert [client.recv_text(), client.recv_text()] == ['one', 'two']


def test_discarded_frames_between_messages(serve, hixie_client):
    client = hixie_client(serve(echo_app))
    client.sock.sendall(b'\x80\x03abc\x00one\xff\x05skip\xff\x00two\xff')
    assert [client.recv_text(), client.recv_text()] == ['one', 'two']


def test_binary_and_ping_are_clear_errors_to_the_app(serve, hixie_client, draft):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        for call in (lambda: ws.send(b'bytes'), ws.ping):
            try:
                call()
            except UnsupportedOperation as exc:
                ws.send(str(exc))
        assert not ws._pings   # a refused ping leaves no waiter behind
        ws.send(b'bytes as text', binary=False)
        ws.send(iter(['frag', 'ments']))
        ws.receive()
        return []

    client = hixie_client(serve(app))
    assert [client.recv_text() for _ in range(4)] == [
        'hixie-%d has no binary messages: send str (bytes with binary=False are decoded as '
        'UTF-8)' % draft, 'hixie-%d has no ping frames' % draft, 'bytes as text', 'fragments']


# -- closing ----------------------------------------------------------------------------

def test_client_closes_cleanly(recorder_server, hixie_client):
    server, app = recorder_server()
    client = hixie_client(server)
    client.send_text('hi')
    assert client.recv_text() == 'hi'
    client.close_cleanly()
    assert app.wait_handled() == ['open', ('message', 'hi'), ('close', 1000, '')]


def test_draft76_server_closes(serve):
    received = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.close()
        received.extend([ws.receive(), ws.receive(), ws.close_code])
        return []

    app.handled = threading.Semaphore(0)
    client = HixieClient(serve(app, TrackingHandler).port, 76)
    try:
        client.open()
        client.send_text('before the close')
        client.recv_closing_frame()
        client.sock.sendall(b'\xff\x00')
        client.assert_eof()
    finally:
        client.close()
    assert app.handled.acquire(timeout=5)
    # what the peer sent before answering the close is still delivered
    assert received == ['before the close', None, 1000]


def test_draft76_server_close_unanswered_is_1006(recorder_server):
    server, app = recorder_server(Recorder(on_open=lambda ws: ws.close()), close_timeout=0.2)
    client = HixieClient(server.port, 76)
    try:
        client.open()
        client.recv_closing_frame()
        client.assert_eof()
    finally:
        client.close()
    assert app.wait_handled() == ['open', ('close', 1006, 'closing handshake timed out')]


def test_draft75_server_closes_tcp(recorder_server):
    server, app = recorder_server(Recorder(on_open=lambda ws: ws.close()))
    client = HixieClient(server.port, 75)
    try:
        client.open()
        client.assert_eof()
    finally:
        client.close()
    assert app.wait_handled() == ['open', ('close', 1000, '')]


@pytest.mark.parametrize('draft,how', [(75, 'reset'), (75, 'eof mid-frame'), (76, 'reset'),
                                       (76, 'eof mid-frame'), (76, 'eof')])
def test_abrupt_end_is_1006_once(recorder_server, draft, how):
    server, app = recorder_server()
    client = HixieClient(server.port, draft)
    try:
        client.open()
        client.send_text('hi')
        assert client.recv_text() == 'hi'
        if how == 'reset':
            client.reset()
        else:
            client.sock.sendall(b'\x00unfinished' if how == 'eof mid-frame' else b'')
            client.sock.shutdown(socket.SHUT_WR)
    finally:
        client.close()
    assert app.wait_handled() == ['open', ('message', 'hi'), ('close', 1006, '')]


@pytest.mark.parametrize('wire,code,reason', [
    (b'\x00ok\xff\x00bad \xc3\x28\xff', 1007, 'invalid UTF-8 in a text frame'),
    (b'\x00ok\xff\x00' + b'x' * 200, 1009, 'message over the limit of 100 bytes'),
])
def test_failure_closes_tcp_with_1006_after_onerror(recorder_server, hixie_client, wire, code,
                                                      reason):
    server, app = recorder_server(max_message_size=100)
    client = hixie_client(server)
    client.sock.sendall(wire)
    assert client.recv_text() == 'ok'
    client.assert_eof()
    client.close()
    assert app.wait_handled() == ['open', ('message', 'ok'), ('error', code),
                                  ('close', 1006, reason)]


def test_blocking_app_iterates_until_the_close(serve, hixie_client):
    received = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        for message in ws:
            received.append(message)
            ws.send(message.upper())
        received.append(ws.receive())
        return []

    app.handled = threading.Semaphore(0)   # released by TrackingHandler when it is done
    client = hixie_client(serve(app, TrackingHandler))
    for text in ['a', 'b', 'c']:
        client.send_text(text)
        assert client.recv_text() == text.upper()
    client.close_cleanly()
    assert app.handled.acquire(timeout=5)
    assert received == ['a', 'b', 'c', None]


# -- all families at once ---------------------------------------------------------------

def test_hixie75_hixie76_and_rfc6455_on_one_echo_app_at_once(serve):
    server = serve(echo_app)
    hixie75, hixie76 = HixieClient(server.port, 75), HixieClient(server.port, 76)
    rfc6455 = RawClient(server.port)
    clients = [hixie75, hixie76, rfc6455]
    try:
        hixie75.open()
        hixie76.open()
        rfc6455.handshake()
        for round_ in range(20):
            text = '%d \u00e9\U0001f600' % round_
            hixie75.send_text('75 ' + text)
            hixie76.send_text('76 ' + text)
            rfc6455.send(frame(OP_TEXT, ('6455 ' + text).encode()))
            assert hixie75.recv_text() == '75 ' + text
            assert hixie76.recv_text() == '76 ' + text
            assert rfc6455.recv_message() == '6455 ' + text
        hixie76.close_cleanly()
        rfc6455.send(close_frame(1000, masked=True))
        assert rfc6455.recv_close() == (1000, '')
        rfc6455.assert_eof()
        hixie75.close_cleanly()
    finally:
        for client in clients:
            client.close()


def test_many_hixie_clients_in_threads(serve):
    server = serve(echo_app)
    failures = []

    def run(draft, n):
        try:
            client = HixieClient(server.port, draft)
            client.open()
            for i in range(20):
                client.send_text('%d-%d' % (n, i))
                assert client.recv_text() == '%d-%d' % (n, i)
            client.close()
        except BaseException as exc:   # reported to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(DRAFTS[n % 2], n)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []


# -- no leaks ---------------------------------------------------------------------------

def _clean_end(client):
    client.send_text('hello')
    assert client.recv_text() == 'hello'
    client.close_cleanly()
    client.close()


def _invalid_utf8(client):
    client.send_text('hello')
    assert client.recv_text() == 'hello'
    client.sock.sendall(b'\x00\xc3\xff')
    client.assert_eof()
    client.close()


def _reset_mid_frame(client):
    client.sock.sendall(b'\x00' + b'x' * 100)
    client.reset()


def test_no_greenlet_or_fd_left(serve):
    server = serve(echo_app)
    greenlets_before = server.call(greenlet_count)
    fds_before = fd_count()
    endings = [_clean_end, _invalid_utf8, _reset_mid_frame]
    for i in range(300):
        client = HixieClient(server.port, DRAFTS[i % 2])
        client.open()
        endings[i % 3](client)
    assert settled(lambda: server.call(greenlet_count), greenlets_before) <= greenlets_before
    assert settled(fd_count, fds_before) <= fds_before


@pytest.mark.parametrize('field, value', [
    ('Origin', 'http://example.com\r\n Set-Cookie: a=1'),   # obs-fold: a line break in it
    ('Host', 'example.com\r\n\tX: y'),
    ('Origin', 'http://example.com\x0bX'),
    ('X-Other', 'one\r\n two'),
])
def test_hixie_fields_with_a_line_break_or_control_are_400_and_never_repeated(
        serve, draft, field, value):
    client = HixieClient(serve(echo_app).port, draft)
    try:
        status, body = _rejected(client, headers=hixie_headers(draft, **{field: value}))
    finally:
        client.close()
    assert status == 400 and 'control character or a folded line' in body
    assert 'Set-Cookie' not in body and 'X: y' not in body


def test_legacy_off_answers_the_drafts_with_426(serve, draft):
    client = HixieClient(serve(echo_app, WebSocketHandler.configure(legacy=False)).port, draft)
    try:
        client.send_request()
        status, headers = client.read_head()
    finally:
        client.close()
    assert status == 426 and headers['sec-websocket-version'] == '13, 8, 7'
