"""What a hostile or broken peer meets before the WebSocket opens: deadlines for request heads
and idle connections, upgrades that may not carry a body, an Origin policy, RFC 6455 only on
request, and resets that leave no traceback in the log."""
import socket
import time

import pytest

from geventws import WebSocketHandler
from helpers import RawClient, echo_app, upgrade_headers


def _closed_after(sock, limit=10):
    """Seconds until the server closes ``sock`` (EOF or a reset), reading what it sends."""
    sock.settimeout(limit)
    start = time.monotonic()
    data = b''
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - start, data


def _connect(server):
    return socket.create_connection(('127.0.0.1', server.port), timeout=10)


# -- deadlines ----------------------------------------------------------------------------

@pytest.mark.parametrize('sent', [b'', b'GET / HTTP/1.1\r\nHost: x\r\n'])
def test_a_head_that_does_not_arrive_in_time_is_closed_without_an_answer(serve, sent):
    server = serve(echo_app, WebSocketHandler.configure(handshake_timeout=0.5))
    with _connect(server) as sock:
        sock.sendall(sent)
        waited, answer = _closed_after(sock)
    print('closed after %.2f s' % waited)
    assert answer == b''
    assert 0.3 < waited < 5


def test_a_head_sent_a_byte_at_a_time_is_closed_at_the_deadline(serve):
    server = serve(echo_app, WebSocketHandler.configure(handshake_timeout=1))
    head = b'GET / HTTP/1.1\r\n' + b''.join(b'%s: %s\r\n' % (n.encode(), v.encode())
                                             for n, v in upgrade_headers()) + b'\r\n'
    start = time.monotonic()
    with _connect(server) as sock:
        try:
            for byte in head:   # every 0.1 s: each read comes well within any read timeout
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        waited, answer = _closed_after(sock)
    elapsed = time.monotonic() - start
    print('closed after %.2f s' % elapsed)
    assert answer == b'' and 0.8 < elapsed < 5


def test_the_deadline_ends_with_the_head(serve):
    """An open WebSocket (or a slow app) lives past handshake_timeout."""
    server = serve(echo_app, WebSocketHandler.configure(handshake_timeout=0.3))
    client = RawClient(server.port)
    client.handshake()
    time.sleep(0.8)
    client.send(b'\x81\x82abcd' + bytes(a ^ b for a, b in zip(b'hi', b'ab')))
    assert client.recv_message() == 'hi'
    client.close()


def _get(sock):
    """The response to a GET of _plain_app."""
    sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    response = b''
    while not response.endswith(b'\r\n\r\nok'):
        response += sock.recv(65536)
    return response


def _plain_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']


def test_an_idle_keepalive_connection_is_closed_after_keepalive_timeout(serve):
    server = serve(_plain_app, WebSocketHandler.configure(keepalive_timeout=0.5,
                                                          handshake_timeout=30))
    with _connect(server) as sock:
        assert _get(sock).startswith(b'HTTP/1.1 200')
        time.sleep(0.2)
        assert _get(sock).startswith(b'HTTP/1.1 200')   # within keepalive_timeout: served
        waited, rest = _closed_after(sock)
    print('idle connection closed after %.2f s' % waited)
    assert rest == b'' and 0.3 < waited < 5


def test_keepalive_timeout_zero_serves_one_request_per_connection(serve):
    server = serve(_plain_app, WebSocketHandler.configure(keepalive_timeout=0))
    with _connect(server) as sock:
        assert _get(sock).startswith(b'HTTP/1.1 200')
        waited, rest = _closed_after(sock)
    assert rest == b'' and waited < 1


# -- strict upgrades ----------------------------------------------------------------------

def _refusal(server, headers, extra=b''):
    client = RawClient(server.port)
    try:
        status, response_headers = client.request(headers=headers, extra=extra)
        body = client.read_body()
    finally:
        client.close()
    assert body.endswith(b'\n') and body.count(b'\n') == 1   # one line of reason
    return status, response_headers, body.decode()


@pytest.mark.parametrize('fields, extra, mention', [
    ({'Content-Length': '5'}, b'hello', 'Content-Length'),
    ({'Transfer-Encoding': 'chunked'}, b'0\r\n\r\n', 'Transfer-Encoding'),
    ({'Content-Length': '5', 'Transfer-Encoding': 'chunked'}, b'0\r\n\r\n', 'Transfer-Encoding'),
])
def test_an_upgrade_with_a_body_is_400(serve, fields, extra, mention):
    status, _, reason = _refusal(serve(echo_app), upgrade_headers(**fields), extra)
    assert status == 400 and mention in reason


def test_an_upgrade_with_content_length_zero_is_fine(serve):
    client = RawClient(serve(echo_app).port)
    client.handshake(headers=upgrade_headers(**{'Content-Length': '0'}))
    client.close()


# -- Origin -------------------------------------------------------------------------------

ALLOWED = ['https://chat.example', None]


@pytest.mark.parametrize('origin, field, status', [
    ('https://chat.example', 'Origin', 101),
    ('https://chat.example', 'Sec-WebSocket-Origin', 101),   # hybi-07/08's name
    (None, 'Origin', 101),
    ('https://evil.example', 'Origin', 403),
    ('https://chat.example.evil.example', 'Origin', 403),
    ('http://chat.example', 'Origin', 403),
    ('null', 'Origin', 403),
])
def test_origins(serve, origin, field, status):
    server = serve(echo_app, WebSocketHandler.configure(origins=ALLOWED))
    headers = upgrade_headers(**{field: origin})
    if status == 101:
        client = RawClient(server.port)
        client.handshake(headers=headers)
        client.close()
    else:
        got, _, reason = _refusal(server, headers)
        assert got == 403 and 'not allowed' in reason


def test_origins_from_a_string(serve):
    server = serve(echo_app, WebSocketHandler.configure(
        origins='https://a.example, https://b.example'))
    for origin, status in [('https://b.example', 101), (None, 403)]:
        client = RawClient(server.port)
        assert client.request(headers=upgrade_headers(Origin=origin))[0] == status
        client.close()


# -- quiet resets -------------------------------------------------------------------------

def test_resets_leave_no_traceback(serve, capfd):
    server = serve(echo_app, WebSocketHandler.configure(handshake_timeout=0.3))
    head = b'GET / HTTP/1.1\r\n' + b''.join(b'%s: %s\r\n' % (n.encode(), v.encode())
                                             for n, v in upgrade_headers()) + b'\r\n'
    for sent in (b'', head[:10], head[:-20], head, head + b'\x81\x85abcd'):
        client = RawClient(server.port)
        client.send(sent)
        time.sleep(0.05)
        client.reset()
    client = RawClient(server.port)
    client.handshake()
    client.reset()
    big = RawClient(server.port)   # refused (431) while still sending
    try:
        big.send(b'GET / HTTP/1.1\r\n' + b'X: ' + b'x' * 60000 + b'\r\n' * 2000)
    except OSError:
        pass
    big.reset()
    time.sleep(0.5)   # the deadlines of the silent ones too
    # The server still serves, and said nothing.
    client = RawClient(server.port)
    client.handshake()
    client.close()
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err and 'Error' not in out + err, out + err
