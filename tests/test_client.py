"""The client's own part, against small raw-socket servers written here: the request it sends
(RFC 6455 4.1), each way a server's answer can fail the handshake, masking, frames that
arrive with the 101, protocol errors from the server, timeouts, URLs and the event style.
"""
import base64
import hashlib
import socket
import struct
import threading

import pytest

from geventws import (ConnectionClosed, HandshakeError, HandshakeTimeout, WebSocketClient,
                      connect)
from geventws.io.client import Target
from helpers import close_frame, frame, free_port

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
TIMEOUT = 10


# -- a raw server: one connection, a script, on a plain socket in a thread ------------------

class RawServer:
    """Accepts one connection, reads the request head, then runs ``script(conn, request)``;
    the script's result (or exception) is kept for the test."""

    def __init__(self, script, family=socket.AF_INET, host='127.0.0.1'):
        self.script = script
        self.listener = socket.socket(family)
        self.listener.bind((host, 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.url = 'ws://%s:%d/' % ('[%s]' % host if family == socket.AF_INET6 else host,
                                   self.port)
        self.request = None
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.listener.settimeout(TIMEOUT)
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                self.request = Request(_read_head(conn))
                self.result = self.script(conn, self.request)
        except Exception as exc:  # reported by outcome()
            self.error = exc

    def outcome(self):
        """The script's result, once it has finished."""
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), 'raw server script still running'
        if self.error is not None:
            raise self.error
        return self.result

    def stop(self):
        self.listener.close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def raw_server():
    servers = []

    def start(script, **kw):
        server = RawServer(script, **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Request:
    def __init__(self, head):
        lines = head.decode('latin-1').split('\r\n')
        self.request_line = lines[0]
        self.headers = [tuple(part.strip() for part in line.split(':', 1))
                        for line in lines[1:] if line]

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ', '.join(values) if values else None

    @property
    def accept(self):
        key = self.header('Sec-WebSocket-Key').encode()
        return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def _read_head(conn):
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError('client closed before the end of its request')
        data += chunk
    return data.split(b'\r\n\r\n', 1)[0]


def _answer(request, status='101 Switching Protocols', headers=None, body=b''):
    if headers is None:
        headers = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
                   ('Sec-WebSocket-Accept', request.accept)]
    lines = ['HTTP/1.1 ' + status] + ['%s: %s' % h for h in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


def _frame(opcode, payload=b'', fin=True, rsv=0, masked=False):
    """A frame as a server (unmasked) or a rogue server (``masked``) would send it."""
    return frame(opcode, payload, fin=fin, rsv=rsv, masked=masked)


def _read_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError('connection closed after %d of %d bytes' % (len(data), n))
        data += chunk
    return data


def _read_client_frame(conn):
    """``(fin, opcode, masked, key, payload)`` of the next client frame, unmasked."""
    b0, b1 = _read_exact(conn, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack('!H', _read_exact(conn, 2))[0]
    elif n == 127:
        n = struct.unpack('!Q', _read_exact(conn, 8))[0]
    key = _read_exact(conn, 4) if b1 & 0x80 else None
    payload = _read_exact(conn, n)
    if key is not None:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), key, payload


def _finish_close(conn):
    """Answer the client's close frame, then close TCP first as a server does; the close
    code the client sent is the result."""
    while True:
        fin, opcode, masked, key, payload = _read_client_frame(conn)
        if opcode == 0x8:
            conn.sendall(_frame(0x8, payload[:2]))
            return struct.unpack('!H', payload[:2])[0] if payload else 1005


# -- the request --------------------------------------------------------------------------

def test_request_follows_rfc6455_4_1(raw_server):
    keys = []

    def script(conn, request):
        keys.append(request.header('Sec-WebSocket-Key'))
        conn.sendall(_answer(request, headers=[
            ('Upgrade', 'WebSocket'), ('Connection', 'keep-alive, Upgrade'),
            ('Sec-WebSocket-Accept', request.accept), ('Sec-WebSocket-Protocol', 'b')]))
        return _finish_close(conn)

    server = raw_server(script)
    ws = connect(server.url + 'chat/room%201?user=ann&x=%C3%A9', protocols=['a', 'b'],
                 headers={'Authorization': 'Bearer x', 'X-Trace': '42'},
                 origin='https://example.com', timeout=TIMEOUT)
    assert ws.protocol == 'b'
    assert ws.path == '/chat/room%201'
    ws.close()
    assert server.outcome() == 1000
    request = server.request
    assert request.request_line == 'GET /chat/room%201?user=ann&x=%C3%A9 HTTP/1.1'
    assert request.header('Host') == '127.0.0.1:%d' % server.port
    assert request.header('Upgrade') == 'websocket'
    assert request.header('Connection') == 'Upgrade'
    assert request.header('Sec-WebSocket-Version') == '13'
    assert request.header('Sec-WebSocket-Protocol') == 'a, b'
    assert request.header('Origin') == 'https://example.com'
    assert request.header('Authorization') == 'Bearer x'
    assert request.header('X-Trace') == '42'
    assert len(base64.b64decode(keys[0], validate=True)) == 16


def test_key_is_fresh_per_connection(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request))
        _finish_close(conn)
        return request.header('Sec-WebSocket-Key')

    keys = set()
    for _ in range(3):
        server = raw_server(script)
        connect(server.url, timeout=TIMEOUT).close()
        keys.add(server.outcome())
    assert len(keys) == 3


def test_host_header_may_be_replaced(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request))
        _finish_close(conn)
        return request.header('Host')

    server = raw_server(script)
    connect(server.url, headers=[('Host', 'chat.example')], timeout=TIMEOUT).close()
    assert server.outcome() == 'chat.example'


@pytest.mark.parametrize('headers', [{'Sec-WebSocket-Key': 'x'}, [('Upgrade', 'h2c')],
                                     {'X-Evil': 'a\r\nInjected: 1'}])
def test_headers_that_would_break_the_handshake_are_refused(headers):
    with pytest.raises(ValueError):
        connect('ws://127.0.0.1:1/', headers=headers)


def test_subprotocol_must_be_a_token():
    with pytest.raises(ValueError):
        connect('ws://127.0.0.1:1/', protocols=['two words'])


# -- the answer: every way it can fail the handshake --------------------------------------

def _bad_answers():
    def with_headers(**changes):
        def answer(request):
            headers = {'Upgrade': 'websocket', 'Connection': 'Upgrade',
                       'Sec-WebSocket-Accept': request.accept}
            headers.update((name.replace('_', '-'), value) for name, value in changes.items())
            return _answer(request, headers=[h for h in headers.items() if h[1] is not None])
        return answer

    return [
        ('200', lambda r: _answer(r, '200 OK', [('Content-Length', '5')], b'Hello'), 200,
         'instead of 101'),
        ('403', lambda r: _answer(r, '403 Forbidden', [('Content-Length', '0')]), 403,
         '403 Forbidden'),
        ('bad-accept', with_headers(Sec_WebSocket_Accept=base64.b64encode(b'x' * 20).decode()),
         101, 'Sec-WebSocket-Accept'),
        ('no-accept', with_headers(Sec_WebSocket_Accept=None), 101, 'Sec-WebSocket-Accept'),
        ('bad-upgrade', with_headers(Upgrade='h2c'), 101, 'Upgrade'),
        ('no-upgrade', with_headers(Upgrade=None), 101, 'Upgrade'),
        ('bad-connection', with_headers(Connection='close'), 101, 'Connection'),
        ('protocol-not-offered', with_headers(Sec_WebSocket_Protocol='other'), 101,
         "'other', which was not offered"),
        ('extension-not-offered', with_headers(Sec_WebSocket_Extensions='x-unknown'), 101,
         "'x-unknown', which was not offered"),
        ('bad-status-line', lambda r: b'SPDY/3 nope\r\n\r\n', None, 'status line'),
    ]


@pytest.mark.parametrize('answer, status, words', [case[1:] for case in _bad_answers()],
                         ids=[case[0] for case in _bad_answers()])
def test_bad_answer_is_a_handshake_error(raw_server, answer, status, words):
    def script(conn, request):
        conn.sendall(answer(request))
        return conn.recv(1)   # b'': the client dropped the connection

    server = raw_server(script)
    with pytest.raises(HandshakeError) as info:
        connect(server.url, protocols=['chat'], timeout=TIMEOUT)
    error = info.value
    assert error.status == status
    assert words in error.reason
    assert bool(error.headers) == (status is not None)
    assert server.outcome() == b''


def test_error_page_is_kept(raw_server):
    server = raw_server(lambda conn, request: conn.sendall(_answer(
        request, '401 Unauthorized', [('WWW-Authenticate', 'Bearer'),
                                      ('Content-Length', '12')], b'who are you?')))
    with pytest.raises(HandshakeError) as info:
        connect(server.url, timeout=TIMEOUT)
    assert info.value.status == 401
    assert ('WWW-Authenticate', 'Bearer') in info.value.headers
    assert info.value.body == b'who are you?'


def test_server_that_hangs_up_is_a_handshake_error(raw_server):
    server = raw_server(lambda conn, request: None)
    with pytest.raises(HandshakeError) as info:
        connect(server.url, timeout=TIMEOUT)
    assert info.value.status is None
    assert 'without answering' in info.value.reason


def test_handshake_failure_in_event_style_is_onerror_then_onclose(raw_server):
    server = raw_server(lambda conn, request: conn.sendall(
        _answer(request, '403 Forbidden', [('Content-Length', '0')])))
    ws = WebSocketClient(server.url, timeout=TIMEOUT)
    seen = []
    ws.onopen = lambda event: seen.append('open')
    ws.onerror = lambda event: seen.append(('error', event.error.status))
    ws.onclose = lambda event: seen.append(('close', event.code, event.was_clean))
    ws.run_forever()
    assert seen == [('error', 403), ('close', 1006, False)]
    assert ws.closed
    with pytest.raises(ConnectionClosed):
        ws.send('nobody is there')


# -- after the handshake --------------------------------------------------------------------

def test_frames_sent_with_the_101_are_not_lost(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request) + b''.join(
            _frame(0x1, b'early %d' % i) for i in range(50)) + _frame(0x2, b'\x00\xff') +
            close_frame(1001, b'going'))
        return _read_client_frame(conn)

    server = raw_server(script)
    ws = connect(server.url, timeout=TIMEOUT)
    assert list(ws) == ['early %d' % i for i in range(50)] + [b'\x00\xff']
    assert (ws.close_code, ws.close_reason) == (1001, 'going')
    fin, opcode, masked, key, payload = server.outcome()
    assert (opcode, masked, payload) == (0x8, True, struct.pack('!H', 1001) + b'going')


def test_client_frames_are_masked_with_a_fresh_key(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request))
        frames = [_read_client_frame(conn) for _ in range(3)]
        _finish_close(conn)
        return frames

    server = raw_server(script)
    ws = connect(server.url, timeout=TIMEOUT)
    ws.send('same')
    ws.send('same')
    ws.send(b'\x00' * 70000)
    ws.close()
    frames = server.outcome()
    assert [(f[0], f[1], f[2], f[4]) for f in frames] == [
        (True, 0x1, True, b'same'), (True, 0x1, True, b'same'), (True, 0x2, True, b'\x00' * 70000)]
    assert len({f[3] for f in frames}) == 3


def test_client_fragments_are_continuation_frames(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request))
        frames = [_read_client_frame(conn)[:2] for _ in range(3)]
        _finish_close(conn)
        return frames

    server = raw_server(script)
    ws = connect(server.url, timeout=TIMEOUT)
    ws.send(['a', 'b', 'c'])
    ws.close()
    assert server.outcome() == [(False, 0x1), (False, 0x0), (True, 0x0)]


@pytest.mark.parametrize('frame, code', [
    (_frame(0x1, b'masked', masked=True), 1002),      # RFC 6455 5.1
    (_frame(0x1, b'\xc3\x28'), 1007),                              # invalid UTF-8 (8.1)
    (_frame(0x1, b'\xe2\x82', fin=False) + _frame(0x0, b'\x28'), 1007),
    (_frame(0x3, b''), 1002),                                      # reserved opcode (5.2)
    (_frame(0x1, b'x', rsv=4), 1002),                           # RSV1, no extension
    (_frame(0x9, b'', fin=False), 1002),                           # fragmented ping (5.5)
    (_frame(0x9, b'x' * 126), 1002),                               # ping over 125 bytes
    (_frame(0x0, b'x'), 1002),                                     # continuation, no start
    (_frame(0x1, b'a', fin=False) + _frame(0x1, b'b'), 1002),      # new message mid-message
    (_frame(0x8, b'\x03\xe8\xff'), 1007),                          # close reason not UTF-8
    (_frame(0x8, b'\x03\xed'), 1002),                              # close code 1005
    (_frame(0x8, b'\x03'), 1002),                                  # 1-byte close payload
], ids=['masked', 'utf8', 'utf8-fragments', 'opcode', 'rsv1', 'fragmented-ping', 'big-ping',
        'continuation', 'interleaved', 'close-utf8', 'close-1005', 'close-1-byte'])
def test_protocol_error_from_the_server_fails_the_connection(raw_server, frame, code):
    def script(conn, request):
        conn.sendall(_answer(request) + _frame(0x1, b'fine') + frame)
        fin, opcode, masked, key, payload = _read_client_frame(conn)
        return opcode, struct.unpack('!H', payload[:2])[0], conn.recv(1)

    server = raw_server(script)
    ws = WebSocketClient(server.url, timeout=TIMEOUT, close_timeout=TIMEOUT)
    seen = []
    ws.onmessage = lambda event: seen.append(event.data)
    ws.onerror = lambda event: seen.append(('error', event.error.code))
    ws.onclose = lambda event: seen.append(('close', event.code))
    ws.run_forever()
    assert seen == ['fine', ('error', code), ('close', 1006)]
    assert server.outcome() == (0x8, code, b'')   # the client then closed TCP too


@pytest.mark.parametrize('chop', [False, True], ids=['whole', 'byte-by-byte'])
@pytest.mark.parametrize('frames, messages, replies', [
    # Autobahn 2.x: pings are answered with their payload, unsolicited pongs ignored
    (_frame(0x9, b'x' * 125) + _frame(0xA, b'unasked') + _frame(0x1, b'a'), ['a'],
     [(0xA, b'x' * 125)]),
    # 5.x: control frames between the fragments of a message; empty fragments
    (_frame(0x1, b'He', fin=False) + _frame(0x9, b'p') + _frame(0x0, b'llo'), ['Hello'],
     [(0xA, b'p')]),
    (_frame(0x2, b'', fin=False) + _frame(0x0, b'', fin=False) + _frame(0x0, b''), [b''], []),
    # 6.x: a character cut between fragments; every size of character
    (_frame(0x1, b'\xce', fin=False) + _frame(0x0, b'\xba\xe1\xbd\xb9'), ['\u03ba\u1f79'], []),
    (_frame(0x1, '\x7f\u07ff\uffff\U0010ffff'.encode()), ['\x7f\u07ff\uffff\U0010ffff'], []),
    # 9.x/10.x: a large message whose header and payload arrive in pieces
    (_frame(0x2, b'\x01' * 70000), [b'\x01' * 70000], []),
], ids=['pings', 'ping-between-fragments', 'empty-fragments', 'utf8-cut', 'utf8-sizes',
        'large'])
def test_valid_sequences_from_the_server(raw_server, frames, messages, replies, chop):
    def script(conn, request):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(_answer(request))
        data = frames + close_frame(1000, b'done \xe2\x9c\x93')
        step = 1 if chop and len(data) < 1000 else 997 if chop else len(data)
        for i in range(0, len(data), step):
            conn.sendall(data[i:i + step])
        seen = []
        while True:
            fin, opcode, masked, key, payload = _read_client_frame(conn)
            seen.append((opcode, payload))
            if opcode == 0x8:
                return seen

    server = raw_server(script)
    ws = connect(server.url, timeout=TIMEOUT)
    assert list(ws) == messages
    assert (ws.close_code, ws.close_reason) == (1000, 'done \u2713')
    assert server.outcome() == replies + [(0x8, struct.pack('!H', 1000) + 'done \u2713'.encode())]


def test_max_message_size(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request) + _frame(0x2, b'x' * 100) + _frame(0x2, b'x' * 101))
        fin, opcode, masked, key, payload = _read_client_frame(conn)
        return struct.unpack('!H', payload[:2])[0]

    server = raw_server(script)
    ws = connect(server.url, max_message_size=100, timeout=TIMEOUT)
    assert ws.receive() == b'x' * 100
    assert ws.receive() is None
    assert server.outcome() == 1009


def test_ping_from_server_is_answered_with_its_payload(raw_server):
    def script(conn, request):
        conn.sendall(_answer(request) + _frame(0x9, b'hey') + _frame(0x1, b'then'))
        return _read_client_frame(conn)

    server = raw_server(script)
    ws = connect(server.url, timeout=TIMEOUT, close_timeout=0.5)
    assert ws.receive() == 'then'
    fin, opcode, masked, key, payload = server.outcome()
    assert (opcode, masked, payload) == (0xA, True, b'hey')


def test_client_waits_for_the_server_to_close_tcp(raw_server):
    """RFC 6455 7.1.1: after the close handshake the server closes TCP first; the client
    waits for it (bounded by close_timeout) rather than dropping its end at once."""
    dropped = threading.Event()

    def script(conn, request):
        conn.sendall(_answer(request))
        _read_client_frame(conn)
        conn.sendall(close_frame(1000))
        conn.settimeout(0.3)
        try:
            early = conn.recv(1)   # the client must not have closed yet
        except socket.timeout:
            early = None
        dropped.set()
        return early

    server = raw_server(script)
    ws = connect(server.url, timeout=TIMEOUT, close_timeout=TIMEOUT)
    ws.close()
    assert dropped.is_set()
    assert server.outcome() is None
    assert (ws.close_code, ws.ready_state) == (1000, ws.CLOSED)


def test_close_times_out_on_a_silent_server(raw_server):
    server = raw_server(lambda conn, request: (conn.sendall(_answer(request)),
                                               _read_client_frame(conn), conn.recv(1))[-1])
    ws = connect(server.url, timeout=TIMEOUT, close_timeout=0.3)
    ws.close(1000)
    assert (ws.close_code, ws.ready_state) == (1006, ws.CLOSED)
    assert server.outcome() == b''


# -- timeouts and connection failures -----------------------------------------------------

@pytest.mark.parametrize('partial', [b'', b'HTTP/1.1 101 Switching Protocols\r\nUpg'])
def test_silent_server_times_out_the_handshake(raw_server, partial):
    server = raw_server(lambda conn, request: (conn.sendall(partial), conn.recv(1))[1])
    with pytest.raises(HandshakeTimeout) as info:
        connect(server.url, timeout=0.3)
    assert isinstance(info.value, HandshakeError) and isinstance(info.value, TimeoutError)
    assert info.value.status is None
    assert server.outcome() == b''   # the client hung up


def test_refused_connection_is_an_oserror_naming_the_address():
    port = free_port()
    with pytest.raises(ConnectionRefusedError) as info:
        connect('ws://127.0.0.1:%d/' % port, timeout=TIMEOUT)
    assert '127.0.0.1:%d' % port in str(info.value)


def test_unknown_host_is_an_oserror():
    with pytest.raises(OSError) as info:
        connect('ws://no-such-host.invalid/', timeout=5)
    assert isinstance(info.value, (socket.gaierror, TimeoutError))
    assert 'no-such-host.invalid' in str(info.value)


def test_refused_connection_in_event_style():
    ws = WebSocketClient('ws://127.0.0.1:%d/' % free_port(), timeout=TIMEOUT)
    seen = []
    ws.onerror = lambda event: seen.append(type(event.error))
    ws.onclose = lambda event: seen.append(event.code)
    ws.run_forever()
    ws.run_forever()   # already closed: nothing dispatched twice
    assert seen == [ConnectionRefusedError, 1006]


# -- URLs ---------------------------------------------------------------------------------

@pytest.mark.parametrize('url, secure, host, port, resource, host_header', [
    ('ws://example.com', False, 'example.com', 80, '/', 'example.com'),
    ('wss://example.com/chat', True, 'example.com', 443, '/chat', 'example.com'),
    ('ws://Example.COM:80/a?b=c&d', False, 'example.com', 80, '/a?b=c&d', 'example.com'),
    ('wss://h:8443/x/y/?q=1', True, 'h', 8443, '/x/y/?q=1', 'h:8443'),
    ('ws://[::1]:9000/p', False, '::1', 9000, '/p', '[::1]:9000'),
    ('wss://[2001:db8::1]/', True, '2001:db8::1', 443, '/', '[2001:db8::1]'),
    ('WS://h/caf\u00e9 bar', False, 'h', 80, '/caf%C3%A9%20bar', 'h'),
])
def test_url(url, secure, host, port, resource, host_header):
    target = Target(url)
    assert (target.secure, target.host, target.port, target.resource, target.host_header) == \
        (secure, host, port, resource, host_header)


@pytest.mark.parametrize('url', ['http://example.com/', 'example.com', 'ws:///path',
                                 'ws://h/#fragment', 'ws://h:99999/', 'ws://h:port/'])
def test_bad_url(url):
    with pytest.raises(ValueError):
        WebSocketClient(url)


def test_ipv6_literal(raw_server):
    try:
        server = raw_server(lambda conn, request: (conn.sendall(_answer(request)),
                                                   _finish_close(conn)),
                            family=socket.AF_INET6, host='::1')
    except OSError:
        pytest.skip('no IPv6 loopback on this machine')
    connect(server.url, timeout=TIMEOUT).close()
    server.outcome()
    assert server.request.header('Host') == '[::1]:%d' % server.port
