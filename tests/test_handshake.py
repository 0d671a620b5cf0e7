"""The RFC 6455 opening handshake, server side (section 4.2): request validation with a
one-line 400, the 426 for an unsupported version, token matching without regard to case, and
subprotocol selection; first on the environ (sans I/O), then through the real server."""
import pytest

from geventws.errors import HandshakeError
from geventws.protocol.handshake import accept_key, validate_request
from geventws.protocol.http import is_websocket_upgrade
from helpers import RawClient, upgrade_headers

KEY = 'dGhlIHNhbXBsZSBub25jZQ=='


def environ(**overrides):
    env = {'REQUEST_METHOD': 'GET', 'SERVER_PROTOCOL': 'HTTP/1.1', 'HTTP_HOST': 'example.com',
           'HTTP_UPGRADE': 'websocket', 'HTTP_CONNECTION': 'Upgrade',
           'HTTP_SEC_WEBSOCKET_KEY': KEY, 'HTTP_SEC_WEBSOCKET_VERSION': '13'}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


BAD_REQUESTS = [
    ('POST', dict(REQUEST_METHOD='POST'), 'GET'),
    ('HTTP/1.0', dict(SERVER_PROTOCOL='HTTP/1.0'), 'HTTP/1.1'),
    ('no Connection', dict(HTTP_CONNECTION=None), 'Connection'),
    ('Connection without upgrade', dict(HTTP_CONNECTION='keep-alive'), 'Connection'),
    ('no Host', dict(HTTP_HOST=None), 'Host'),
    ('no key', dict(HTTP_SEC_WEBSOCKET_KEY=None), 'Sec-WebSocket-Key'),
    ('key not base64', dict(HTTP_SEC_WEBSOCKET_KEY='not base64 at all!!'), 'Sec-WebSocket-Key'),
    ('key of 15 bytes', dict(HTTP_SEC_WEBSOCKET_KEY='AAAAAAAAAAAAAAAAAAAA'), 'Sec-WebSocket-Key'),
    ('key of 17 bytes', dict(HTTP_SEC_WEBSOCKET_KEY='AAAAAAAAAAAAAAAAAAAAAAA='),
     'Sec-WebSocket-Key'),
    ('key not ASCII', dict(HTTP_SEC_WEBSOCKET_KEY='\u00e9' * 24), 'Sec-WebSocket-Key'),
    ('protocol not a token', dict(HTTP_SEC_WEBSOCKET_PROTOCOL='chat, a\x1bb'),
     'Sec-WebSocket-Protocol'),
    ('method with a line break', dict(REQUEST_METHOD='G\r\nX'), "'G\\r\\nX'"),
    ('a body', dict(CONTENT_LENGTH='5'), 'Content-Length'),
    ('a chunked body', dict(HTTP_TRANSFER_ENCODING='chunked'), 'Transfer-Encoding'),
]


@pytest.mark.parametrize('overrides,mention', [c[1:] for c in BAD_REQUESTS],
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_is_400_with_a_reason(overrides, mention):
    with pytest.raises(HandshakeError) as info:
        validate_request(environ(**overrides))
    assert info.value.status == 400
    assert mention in info.value.reason and '\n' not in info.value.reason


@pytest.mark.parametrize('version', ['12', '14', '0', 'thirteen', '', None])
def test_unsupported_version_is_426_listing_ours(version):
    with pytest.raises(HandshakeError) as info:
        validate_request(environ(HTTP_SEC_WEBSOCKET_VERSION=version))
    assert info.value.status == 426
    assert info.value.headers == [('Sec-WebSocket-Version', '13, 8, 7')]


@pytest.mark.parametrize('version', ['13', '8', '7', ' 13 '])
def test_supported_versions(version):
    assert validate_request(environ(HTTP_SEC_WEBSOCKET_VERSION=version)).version == int(version)


@pytest.mark.parametrize('upgrade,connection', [
    ('websocket', 'Upgrade'), ('WebSocket', 'upgrade'), ('WEBSOCKET', 'UPGRADE'),
    ('websocket', 'keep-alive, Upgrade'), ('websocket', 'Upgrade,keep-alive'),
    ('websocket, h2c', 'Keep-Alive,  uPgRaDe '),
])
def test_tokens_match_without_regard_to_case(upgrade, connection):
    env = environ(HTTP_UPGRADE=upgrade, HTTP_CONNECTION=connection)
    assert is_websocket_upgrade(env)
    assert validate_request(env).key == KEY


@pytest.mark.parametrize('upgrade', [None, '', 'h2c', 'websocketx', 'web socket'])
def test_other_upgrades_are_not_websocket(upgrade):
    assert not is_websocket_upgrade(environ(HTTP_UPGRADE=upgrade))


@pytest.mark.parametrize('offered,supported,selected', [
    ('chat, superchat', ['chat', 'superchat'], 'chat'),
    ('superchat, chat', ['chat', 'superchat'], 'superchat'),      # the client's order wins
    ('superchat,chat', ['chat'], 'chat'),
    ('a, b', ['c'], ''),
    (None, ['chat'], ''),
    ('chat', None, ''),
    ('chat, superchat', 'superchat', 'superchat'),                # one name as a string
])
def test_subprotocol_selection(offered, supported, selected):
    request = validate_request(environ(HTTP_SEC_WEBSOCKET_PROTOCOL=offered))
    assert request.select_protocol(supported) == selected


def test_response_headers():
    headers = validate_request(environ()).response_headers('chat', extra=[('X-A', '1')])
    assert headers == [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
                       ('Sec-WebSocket-Accept', accept_key(KEY)),
                       ('Sec-WebSocket-Protocol', 'chat'), ('X-A', '1')]


# -- through the real server --------------------------------------------------------------

def _app(environ, start_response):
    ws = environ.get('wsgi.websocket')
    if ws is None:
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'plain']
    ws.accept(protocols=['chat', 'superchat'], headers=[('X-Server', 'geventws')])
    ws.send('%s|%s|%s' % (ws.protocol, environ['wsgi.websocket_version'], ws.path))
    ws.receive()
    return []


@pytest.fixture
def server(serve):
    return serve(_app)


def _exchange(server, headers, **kw):
    client = RawClient(server.port)
    try:
        status, response_headers = client.request(headers, **kw)
        body = client.read_body() if status != 101 else b''
        return status, response_headers, body
    finally:
        client.close()


SERVER_REJECTIONS = [
    ('POST', dict(method='POST'), {}, 400),
    ('HTTP/1.0', dict(version='HTTP/1.0'), {}, 400),
    ('no upgrade token', {}, dict(Connection='keep-alive'), 400),
    ('bad key', {}, dict(Sec_WebSocket_Key='short'), 400),
    ('no key', {}, dict(Sec_WebSocket_Key=''), 400),
    ('version 12', {}, dict(version='12'), 426),
    ('no version', {}, dict(Sec_WebSocket_Version=None), 426),
]


@pytest.mark.parametrize('request_kw,header_kw,status', [c[1:] for c in SERVER_REJECTIONS],
                         ids=[c[0] for c in SERVER_REJECTIONS])
def test_server_rejects_with_a_one_line_reason(server, request_kw, header_kw, status):
    got, headers, body = _exchange(server, upgrade_headers(**header_kw), **request_kw)
    assert got == status
    assert body.endswith(b'\n') and body.count(b'\n') == 1 and b'Traceback' not in body
    assert len(body) == int(headers['content-length'])
    if status == 426:
        assert headers['sec-websocket-version'] == '13, 8, 7'
    assert 'sec-websocket-accept' not in headers


@pytest.mark.parametrize('offered,selected', [
    ('superchat, chat', 'superchat'), ('chat', 'chat'), ('other', ''), (None, ''),
])
@pytest.mark.parametrize('version', ['13', '8', '7'])
def test_server_handshake(server, offered, selected, version):
    client = RawClient(server.port)
    try:
        headers = client.handshake(headers=upgrade_headers(key=KEY, protocols=offered,
                                                           version=version,
                                                           Upgrade='WebSocket',
                                                           Connection='keep-alive, upgrade'),
                                   path='/room')
        assert headers['sec-websocket-accept'] == accept_key(KEY)
        assert headers['upgrade'].lower() == 'websocket'
        assert 'upgrade' in headers['connection'].lower()
        assert headers.get('sec-websocket-protocol', '') == selected
        assert headers['x-server'] == 'geventws'
        assert client.recv_message() == '%s|%s|/room' % (selected, version)
    finally:
        client.close()


def test_plain_request_next_to_upgrades(server):
    status, _, body = _exchange(server, [('Host', 'x'), ('Connection', 'close')])
    assert (status, body) == (200, b'plain')
