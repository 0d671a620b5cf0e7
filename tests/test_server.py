"""The real server (gevent WSGIServer + WebSocketHandler on 127.0.0.1) driven by raw sockets,
so every byte the server sends can be checked: close codes for each protocol error and the TCP
close after them, the closing handshake, ordering, concurrency, the event API and the
gevent-websocket compatible API, and plain HTTP through the same handler.

Its raw-socket client and recording app (``RawClient``, ``Recorder``, ``TrackingHandler``)
are in helpers.py, for the other modules that drive the server byte by byte.
"""
import os
import socket
import struct
import threading
import time

import gevent
import pytest
from gevent.pywsgi import WSGIHandler

from geventws import ConnectionClosed, ProtocolError, WebSocketError, WebSocketHandler
from geventws.protocol.frames import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG,
                                      OP_TEXT)
from helpers import (PROTOCOL_ERRORS, TIMEOUT, RawClient, Recorder, close_frame, echo_app,
                     frame)


@pytest.fixture
def client_of():
    clients = []

    def connect(server, handshake=True, **kw):
        client = RawClient(server.port)
        clients.append(client)
        if handshake:
            client.handshake(**kw)
        return client
    yield connect
    for client in clients:
        client.close()


# -- protocol errors ---------------------------------------------------------------------

@pytest.mark.parametrize('data,code', [e[1:] for e in PROTOCOL_ERRORS],
                         ids=[e[0] for e in PROTOCOL_ERRORS])
def test_protocol_error_closes_with_its_code_then_tcp(recorder_server, client_of, data, code):
    server, app = recorder_server(max_message_size=1024)
    client = client_of(server)
    # In one write, as Autobahn's "all sent in one chop" cases (3.2, 5.15): the message
    # before the error is answered, then the connection fails.
    client.send(frame(OP_TEXT, b'before') + data)
    assert client.recv_message() == 'before'
    assert client.recv_close()[0] == code
    client.assert_eof()
    client.close()
    assert app.wait_handled() == ['open', ('message', 'before'), ('error', code),
                                  ('close', 1006, app.events[-1][2])]


def test_protocol_error_fails_fast_on_a_partial_frame(recorder_server, client_of):
    """Autobahn 6.4.x: an invalid UTF-8 prefix of a frame fails before the frame is whole."""
    server, app = recorder_server()
    client = client_of(server)
    client.send(frame(OP_TEXT, b'\xce\xba\xed\xa0\x80' + b'a' * 1000)[:12])   # 8-byte header
    assert client.recv_close()[0] == 1007
    client.assert_eof()


def test_error_event_carries_the_protocol_error(serve, client_of):
    errors = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.onerror = lambda event: errors.append(event.error)
        return []
    client = client_of(serve(app))
    client.send(frame(OP_TEXT, b'x', masked=False))
    assert client.recv_close()[0] == 1002
    client.assert_eof()
    client.close()
    for _ in range(100):
        if errors:
            break
        time.sleep(0.05)
    assert isinstance(errors[0], ProtocolError) and errors[0].code == 1002


# -- the closing handshake (RFC 6455 section 7) ------------------------------------------

@pytest.mark.parametrize('payload,code,reason', [
    (struct.pack('!H', 1000) + b'bye', 1000, 'bye'),
    (struct.pack('!H', 4321) + 'αβγ'.encode(), 4321, 'αβγ'),
    (b'', 1005, ''),
])
def test_client_initiated_close(recorder_server, client_of, payload, code, reason):
    server, app = recorder_server()
    client = client_of(server)
    client.send(frame(OP_CLOSE, payload))
    assert client.recv_close() == (code, reason)   # the echo carries its reason too
    client.assert_eof()
    assert app.wait_handled() == ['open', ('close', code, reason)]


def test_server_initiated_close(recorder_server, client_of):
    server, app = recorder_server(Recorder(on_open=lambda ws: ws.close(1001, 'going away')))
    client = client_of(server)
    assert client.recv_close() == (1001, 'going away')
    client.send(close_frame(1001, masked=True))
    client.assert_eof()
    assert app.wait_handled() == ['open', ('close', 1001, '')]
    assert app.websockets[0].close_code == 1001


def test_server_close_times_out_without_the_peer_close(recorder_server, client_of):
    server, app = recorder_server(Recorder(on_open=lambda ws: ws.close(1000)), close_timeout=0.3)
    client = client_of(server)
    assert client.recv_close() == (1000, '')
    client.assert_eof()
    assert app.wait_handled() == ['open', ('close', 1006, 'closing handshake timed out')]


def test_nothing_is_lost_before_a_clean_close(recorder_server, client_of):
    server, app = recorder_server()
    client = client_of(server)
    sent = ['m%d' % i for i in range(200)]
    client.send(b''.join(frame(OP_TEXT, m.encode()) for m in sent) + close_frame(1000, masked=True))
    assert [client.recv_message() for _ in sent] == sent
    assert client.recv_close() == (1000, '')
    client.assert_eof()
    assert app.wait_handled() == ['open'] + [('message', m) for m in sent] + [
        ('close', 1000, '')]


def test_blocking_app_gets_every_message_then_none(serve, client_of):
    got = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        while True:
            message = ws.receive()
            got.append(message)
            if message is None:
                break
        got.append(ws.receive())       # still None, no error
        return []
    client = client_of(serve(app))
    client.send(frame(OP_BINARY, b'a') + frame(OP_TEXT, b'b') + close_frame(1000, masked=True))
    assert client.recv_close() == (1000, '')
    client.assert_eof()
    for _ in range(100):
        if len(got) == 4:
            break
        time.sleep(0.02)
    assert got == [b'a', 'b', None, None]


def test_server_messages_before_its_close_all_arrive(serve, client_of):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        for i in range(300):
            ws.send('n%d' % i)
        ws.close(1000, 'done')
        return []
    client = client_of(serve(app))
    assert [client.recv_message() for _ in range(300)] == ['n%d' % i for i in range(300)]
    assert client.recv_close() == (1000, 'done')
    client.send(close_frame(1000, masked=True))
    client.assert_eof()


def test_blocking_app_returning_while_open_closes_with_1000(serve, client_of):
    def app(environ, start_response):
        environ['wsgi.websocket'].send('hi')
        return []
    client = client_of(serve(app))
    assert client.recv_message() == 'hi'
    assert client.recv_close() == (1000, '')
    client.send(close_frame(1000, masked=True))
    client.assert_eof()


def test_app_exception_closes_with_1011(serve, client_of):
    def app(environ, start_response):
        environ['wsgi.websocket'].receive()
        raise RuntimeError('app bug')
    client = client_of(serve(app))
    client.send(frame(OP_TEXT, b'boom'))
    assert client.recv_close()[0] == 1011
    client.send(close_frame(1011, masked=True))
    client.assert_eof()


@pytest.mark.parametrize('how', ['reset', 'eof'])
def test_abrupt_end_fires_onclose_1006_exactly_once(recorder_server, client_of, how):
    server, app = recorder_server()
    client = client_of(server)
    client.send(frame(OP_TEXT, b'hello'))
    assert client.recv_message() == 'hello'
    if how == 'reset':
        client.reset()
    else:
        client.sock.shutdown(socket.SHUT_WR)
    assert app.wait_handled() == ['open', ('message', 'hello'), ('close', 1006, '')]


# -- pings, sending ---------------------------------------------------------------------

def test_ping_is_answered_and_unsolicited_pong_ignored(serve, client_of):
    client = client_of(serve(echo_app))
    client.send(frame(OP_PONG, b'unsolicited') + frame(OP_PING, b'are you there') +
                frame(OP_TEXT, b'frag', fin=False) + frame(OP_PING, b'') +
                frame(OP_CONTINUATION, b'ment'))
    assert client.recv_frame() == (OP_PONG, b'are you there', True)
    assert client.recv_frame() == (OP_PONG, b'', True)
    assert client.recv_message() == 'fragment'


def test_server_ping_event_is_set_by_the_pong(serve, client_of):
    result = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        pong = ws.ping(b'123')
        message = ws.receive()           # the pong is read (by whoever reads) before it
        result.append((pong.is_set(), message))
        ws.send('pinged')
        return []
    client = client_of(serve(app))
    assert client.recv_frame() == (OP_PING, b'123', True)
    client.send(frame(OP_PONG, b'123') + frame(OP_TEXT, b'after'))
    assert client.recv_message() == 'pinged'
    assert result == [(True, 'after')]


def test_concurrent_sends_never_interleave(serve, client_of):
    senders, per_sender = 20, 30

    def app(environ, start_response):
        ws = environ['wsgi.websocket']

        def sender(n):
            for i in range(per_sender):
                size = (n * 7919 + i * 104729) % 200000
                ws.send(bytes([n]) * size if i % 2 else ('%d:' % n) + 'x' * size)
        gevent.joinall([gevent.spawn(sender, n) for n in range(senders)], raise_error=True)
        ws.send('end')
        ws.receive()
        return []
    client = client_of(serve(app))
    counts = {}
    while True:
        message = client.recv_message()
        if message == 'end':
            break
        if isinstance(message, str):
            n, rest = message.split(':', 1)
            assert rest == 'x' * len(rest)
            n = int(n)
        else:
            n = message[0] if message else None
            assert message == bytes([n]) * len(message) if message else True
        counts[n] = counts.get(n, 0) + 1
    assert sum(counts.values()) == senders * per_sender


def test_fragmented_send_from_an_iterable(serve, client_of):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.send(iter(['Hel', 'lo']))
        ws.send([b'\x00', b'\x01\x02'])
        return []
    client = client_of(serve(app))
    assert client.recv_frame() == (OP_TEXT, b'Hel', False)
    assert client.recv_frame() == (OP_CONTINUATION, b'lo', True)
    assert client.recv_message() == b'\x00\x01\x02'


@pytest.mark.parametrize('how,code', [('peer close', 1000), ('server close', 1000),
                                      ('reset', 1006)])
def test_send_after_close_raises_connection_closed(serve, client_of, how, code):
    raised = []
    done = threading.Event()

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        try:
            if how == 'server close':
                ws.close()
            else:
                assert ws.receive() is None
            assert ws.closed
            try:
                ws.send('too late')
            except ConnectionClosed as exc:
                raised.append(exc)
        finally:
            done.set()
        return []
    client = client_of(serve(app))
    if how == 'peer close':
        client.send(close_frame(1000, masked=True))
    elif how == 'server close':
        assert client.recv_close() == (1000, '')
        client.send(close_frame(1000, masked=True))
    else:
        client.reset()
    assert done.wait(TIMEOUT)
    assert len(raised) == 1 and raised[0].code == code
    assert isinstance(raised[0], WebSocketError)


# -- the two API styles -------------------------------------------------------------------

def test_event_style_of_the_issue(serve, client_of):
    closes = []
    done = threading.Event()

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.onopen = lambda event: ws.send('welcome')
        ws.onmessage = lambda event: ws.send(event.data)
        ws.onclose = lambda event: (closes.append((event.code, event.reason)), done.set())
        return []
    client = client_of(serve(app))
    assert client.recv_message() == 'welcome'
    client.send(frame(OP_TEXT, 'ünïcode'.encode()) + frame(OP_BINARY, b'\x00\xff'))
    assert client.recv_message() == 'ünïcode'
    assert client.recv_message() == b'\x00\xff'
    client.send(close_frame(4000, b'finished', masked=True))
    assert client.recv_close() == (4000, 'finished')
    client.assert_eof()
    assert done.wait(TIMEOUT)
    assert closes == [(4000, 'finished')]


def test_gevent_websocket_compatible_api(serve, client_of):
    seen = {}
    done = threading.Event()

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        seen['version'] = environ['wsgi.websocket_version']
        seen['closed before'] = ws.closed
        message = ws.receive()
        ws.send(message, binary=True)       # text received, sent back as binary
        ws.send(b'bytes as text', binary=False)
        ws.send('plain')
        ws.close(3001, b'bye')
        seen['closed after'] = ws.closed
        seen['receive after close'] = ws.receive()
        done.set()
        return []
    client = client_of(serve(app))
    client.send(frame(OP_TEXT, b'abc'))
    assert client.recv_frame() == (OP_BINARY, b'abc', True)
    assert client.recv_frame() == (OP_TEXT, b'bytes as text', True)
    assert client.recv_frame() == (OP_TEXT, b'plain', True)
    assert client.recv_close() == (3001, 'bye')
    client.send(close_frame(3001, masked=True))
    client.assert_eof()
    assert done.wait(TIMEOUT)
    assert seen['version'] == '13' and seen['version'] == 13
    assert seen['closed before'] is False and seen['closed after'] is True
    assert seen['receive after close'] is None
    assert issubclass(ConnectionClosed, WebSocketError)
    assert issubclass(ProtocolError, WebSocketError)


def test_early_frames_sent_with_the_handshake_are_delivered(serve):
    client = RawClient(serve(echo_app).port)
    try:
        client.handshake(extra=frame(OP_TEXT, b'pipelined') + frame(OP_BINARY, b'too'))
        assert client.recv_message() == 'pipelined'
        assert client.recv_message() == b'too'
    finally:
        client.close()


@pytest.mark.parametrize('size', [0, 125, 126, 65535, 65536, 3 << 20])
def test_echo_sizes(serve, client_of, size):
    client = client_of(serve(echo_app))
    payload = os.urandom(size)
    client.send(frame(OP_BINARY, payload))
    assert client.recv_message() == payload


# -- plain HTTP and refusals --------------------------------------------------------------

def _http_app(environ, start_response):
    if environ['PATH_INFO'] == '/echo-body':
        body = environ['wsgi.input'].read()
        start_response('201 Created', [('Content-Type', 'application/octet-stream')])
        return [body]
    if environ['PATH_INFO'] == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (b'chunk %d\n' % i for i in range(3))
    if environ['PATH_INFO'] == '/missing':
        start_response('404 Not Found', [('Content-Type', 'text/plain'),
                                         ('Content-Length', '9')])
        return [b'not found']
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Path', environ['PATH_INFO'])])
    return [b'hello ' + environ['QUERY_STRING'].encode()]


PLAIN_REQUESTS = [
    b'GET /?a=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n'
    b'Connection: close\r\n\r\n',
    b'POST /echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n'
    b'hello',
    b'POST /echo-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
    b'Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    b'GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    b'GET /missing HTTP/1.0\r\n\r\n',
    b'GET / HTTP/1.0\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n',
]


@pytest.mark.parametrize('request_bytes', PLAIN_REQUESTS)
def test_plain_http_is_served_exactly_as_pywsgi_does(serve, request_bytes):
    def exchange(handler_class):
        client = RawClient(serve(_http_app, handler_class).port)
        try:
            client.send(request_bytes)
            return b'\r\n'.join(line for line in client.read_body().split(b'\r\n')
                                if not line.startswith(b'Date: '))
        finally:
            client.close()
    ours = exchange(WebSocketHandler)
    assert ours == exchange(WSGIHandler)
    assert ours.startswith(b'HTTP/1.')


@pytest.mark.parametrize('request_bytes, reason', [
    (b'NONSENSE\r\n\r\n', "Invalid HTTP method: 'NONSENSE\\\\r\\\\n'"),
    (b'GET / HTTP/1\r\nHost: x\r\n\r\n', "Invalid http version: 'GET / HTTP/1\\\\r\\\\n'"),
    (b'GET / HTTP/1.1\x01\r\nHost: x\r\n\r\n', "Invalid http version"),
    (b'GET /' + b'x' * 9000 + b' HTTP/1.1\r\n\r\n', 'the request line is longer than 8192'),
])
def test_malformed_requests_get_a_reason_in_one_line(serve, request_bytes, reason, capfd):
    """Where pywsgi answers with an empty body (and, for 'HTTP/1', a traceback in the log)."""
    client = RawClient(serve(_http_app).port)
    try:
        client.send(request_bytes)
        response = client.read_body()
    finally:
        client.close()
    head, _, body = response.partition(b'\r\n\r\n')
    assert head.split(b'\r\n')[0] in (b'HTTP/1.1 400 Bad Request', b'HTTP/1.1 414 URI Too Long')
    assert body.endswith(b'\n') and body.count(b'\n') == 1 and reason.encode() in body, body
    assert 'Traceback' not in ''.join(capfd.readouterr())


def test_app_refusing_with_403_does_not_upgrade(serve, client_of):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        assert ws.path == '/private' and not ws.closed
        start_response('403 Forbidden', [('Content-Type', 'text/plain')])
        return [b'go away']
    client = RawClient(serve(app).port)
    try:
        status, headers = client.request(path='/private')
        assert status == 403
        assert 'sec-websocket-accept' not in headers and 'upgrade' not in headers
        assert client.read_body().endswith(b'go away')
    finally:
        client.close()
