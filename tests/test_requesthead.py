"""geventws.io.requesthead reads request heads exactly as gevent.pywsgi's default MessageClass
(http.client.parse_headers and the email package) does: same fields, same errors, same bytes
left in rfile, and the same WSGI environ from a real server; plain heads skip the email parser."""
import io
import socket

import pytest
from gevent.pywsgi import WSGIHandler, headers_factory

from geventws import WebSocketHandler
from geventws.io import requesthead
from helpers import BROWSER_UPGRADE, without_date

# (head followed by what the server must leave unread, whether the fast path reads it)
HEADS = {
    'browser upgrade': (BROWSER_UPGRADE + b'\x81\x85', True),
    'no fields': (b'\r\n', True),
    'duplicates and case': (b'X-A: 1\r\nx-a: 2\r\nCOOKIE: a=1\r\nCookie: b=2\r\n\r\nbody', True),
    'whitespace': (b'A:no space\r\nB: \t lead\r\nC: trail \t\r\nD:\t\r\nE:\r\n'
                   b'F: x  \r\n\r\n', True),
    'latin-1 and controls': (b'X-Name: caf\xe9 \xff\x85\x0b\x0c\x00\r\n\r\n', True),
    'colon in value, odd name': (b'Host: h:80\r\n!#$%&\'*+-.^_`|~09: v\r\n\r\n', True),
    'content headers': (b'Content-Type: multipart/form-data; boundary=x\r\n'
                        b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello', True),
    'LF line ends': (b'A: 1\nB: 2\n\nrest', False),
    'obs-fold': (b'A: 1\r\n  folded\r\n\tmore\r\nB: 2\r\n\r\n', False),
    'fold first': (b' A: 1\r\nB: 2\r\n\r\n', False),
    'line without colon': (b'A: 1\r\nnot a field\r\nB: 2\r\n\r\n', False),
    'space before colon': (b'A : 1\r\nB: 2\r\n\r\n', False),
    'empty name': (b': 1\r\nB: 2\r\n\r\n', False),
    'bare CR': (b'A: 1\rB: 2\r\nC: 3\r\n\r\n', False),
    'CR CR LF': (b'A: 1\r\r\nC: 3\r\n\r\n', False),
    'unix from': (b'From nobody\r\nA: 1\r\n\r\n', False),
    'EOF mid-head': (b'A: 1\r\nB: 2\r\n', False),
    'EOF mid-line': (b'A: 1\r\nB: 2', False),
    'EOF at once': (b'', False),
}


def _read(factory, head):
    rfile = io.BytesIO(head)
    message = factory(rfile, 0)
    return message, rfile.read()


def _as_seen(message):
    """Everything pywsgi, geventws and gunicorn read from a head."""
    names = {name.lower() for name, _ in message.items()} | {'content-type', 'connection'}
    return {
        'status': message.status,
        'items': message.items(),
        'lines': list(message.headers),
        'typeheader': message.typeheader,
        'content-length': message.getheader('content-length'),
        'get': {name: (message.get(name), message.get(name.upper()), message.get_all(name))
                for name in names},
        'type': type(message),
    }


@pytest.mark.parametrize('name', sorted(HEADS))
def test_same_fields_as_pywsgi(name, monkeypatch):
    head, fast = HEADS[name]
    expected, expected_rest = _read(headers_factory, head)
    parsed_by_email = []
    real_parser = requesthead.Parser
    monkeypatch.setattr(requesthead, 'Parser',
                        lambda **kw: parsed_by_email.append(1) or real_parser(**kw))
    message, rest = _read(requesthead.read_request_head, head)
    assert _as_seen(message) == _as_seen(expected)
    assert rest == expected_rest
    assert parsed_by_email == ([] if fast else [1])


def test_deleting_a_field_as_pywsgi_does():
    head = b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\ncontent-length: 6\r\n\r\n'
    message, _ = _read(requesthead.read_request_head, head)
    del message['content-length']
    assert message.items() == [('Transfer-Encoding', 'chunked')]


@pytest.mark.parametrize('head, limit', [
    (b'A: 1\r\nX-Long: ' + b'x' * 70000 + b'\r\n\r\n', 'line'),
    (b''.join(b'X-%d: v\r\n' % i for i in range(101)) + b'\r\n', 'fields'),
    (b'X: ' + b'x' * 60000 + b'\r\nY: ' + b'y' * 6000 + b'\r\n\r\n', 'size'),
])
def test_heads_over_the_limits_are_refused(head, limit):
    with pytest.raises(requesthead.HeadTooLarge) as caught:
        _read(requesthead.read_request_head, head)
    assert {'line': 'line is longer than 65536', 'fields': 'more than 100 header fields',
            'size': 'head is longer than 65536 bytes'}[limit] in str(caught.value)


def test_heads_at_the_limits_are_read():
    fields = b''.join(b'X-%d: v\r\n' % i for i in range(100)) + b'\r\n'
    assert len(_read(requesthead.read_request_head, fields)[0].items()) == 100
    line = b'X: ' + b'x' * (65536 - 5) + b'\r\n\r\n'   # a line of 65536 bytes, and 2 more
    assert len(_read(lambda rfile, _: requesthead.read_request_head(rfile, max_size=65538),
                     line)[0].items()) == 1
    assert _read(lambda rfile, _: requesthead.read_request_head(
        rfile, max_size=11, max_line=6, max_headers=1, read=3), b'A: 1\r\n\r\nrest')[1] == b'rest'


def test_no_more_than_a_line_past_the_limit_is_read():
    rfile = io.BytesIO(b'X: ' + b'x' * 70000 + b'\r\n' * 1000)
    with pytest.raises(requesthead.HeadTooLarge):
        requesthead.read_request_head(rfile)
    assert rfile.tell() == 65537


class PywsgiHeadHandler(WebSocketHandler):
    """WebSocketHandler with gevent.pywsgi's own header parsing, for comparison."""
    MessageClass = WSGIHandler.MessageClass


def _environ_app(environ, start_response):
    body = environ['wsgi.input'].read()
    seen = sorted((key, value) for key, value in environ.items()
                  if isinstance(value, str) and key not in ('REMOTE_PORT', 'SERVER_PORT'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [repr((seen, body)).encode()]


def _exchange(port, request):
    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)


REQUESTS = {
    'GET': b'GET /a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n'
           b'Cookie: a=1\r\ncookie: b=2\r\nX-Dup: 1\r\nX-Dup: 2\r\nX_Under: dropped\r\n'
           b'X-Latin: caf\xe9\r\nX-Trail: v  \r\nConnection: close\r\n\r\n',
    'POST': b'POST /form HTTP/1.1\r\nHost: example.org\r\nContent-Type: application/'
            b'x-www-form-urlencoded\r\nContent-Length: 7\r\nConnection: close\r\n\r\na=1&b=2',
    'chunked POST': b'POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n'
                    b'Content-Length: 99\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'HTTP/1.0 folded': b'GET / HTTP/1.0\r\nHost: h\r\nX-Fold: one\r\n two\r\n\r\n',
}


@pytest.mark.parametrize('name', sorted(REQUESTS))
def test_same_environ_as_pywsgi(name, serve):
    ours = serve(_environ_app)
    pywsgis = serve(_environ_app, PywsgiHeadHandler)
    responses = [_exchange(server.port, REQUESTS[name]) for server in (ours, pywsgis)]
    # The Date header may tick between the two responses.
    assert without_date(responses[0]) == without_date(responses[1])
    assert b' 200 ' in responses[0].split(b'\r\n', 1)[0]


OVERSIZED = {
    'too many fields': b'GET / HTTP/1.1\r\n' + b'X: y\r\n' * 101 + b'\r\n',
    'line too long': b'GET / HTTP/1.1\r\nX: ' + b'y' * 70000 + b'\r\n\r\n',
    'long head': b'GET / HTTP/1.1\r\n' + (b'X: ' + b'y' * 40000 + b'\r\n') * 2 + b'\r\n',
    'upgrade with 1 MB': b'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n'
                         b'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
                         b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
                         b''.join(b'X-%d: %s\r\n' % (i, b'v' * 65000) for i in range(16)) +
                         b'\r\n',
}


@pytest.mark.parametrize('name', sorted(OVERSIZED))
def test_heads_over_the_limits_get_431(name, serve):
    response = _exchange(serve(_environ_app).port, OVERSIZED[name])
    status, _, rest = response.partition(b'\r\n')
    assert status == b'HTTP/1.1 431 Request Header Fields Too Large'
    assert rest.endswith(b'\r\n\r\n') or rest.count(b'\n', rest.index(b'\r\n\r\n') + 4) == 1


def test_the_head_limit_counts_the_request_line(serve):
    server = serve(_environ_app, WebSocketHandler.configure(max_request_head=120))
    line = b'GET /' + b'p' * 60 + b' HTTP/1.1\r\n'
    assert b' 200 ' in _exchange(server.port, line + b'Host: h\r\nConnection: close\r\n\r\n')
    assert b' 431 ' in _exchange(server.port, line + b'Host: h\r\nX: ' + b'x' * 20 +
                                 b'\r\nConnection: close\r\n\r\n')


def test_every_geventws_handler_reads_heads_with_it():
    from geventws.gunicorn import GunicornWebSocketHandler   # gunicorn: a test extra
    for handler in (WebSocketHandler, WebSocketHandler.configure(max_message_size=1),
                    GunicornWebSocketHandler):
        assert handler.MessageClass is WebSocketHandler.MessageClass
