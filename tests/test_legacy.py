"""The hixie drafts without sockets: the framing and opening handshakes of
geventws.protocol.hixie (draft-75 and draft-76), including both known answers of
draft-hixie-thewebsocketprotocol-76, and the choice of the protocol family."""
import pytest

from geventws.errors import ConnectionClosed, HandshakeError, UnsupportedOperation
from geventws.protocol.events import CloseReceived, Failure, MessageEvent
from geventws.protocol.handshake import ServerRequest, validate_upgrade_request
from geventws.protocol.hixie import (CLOSING_FRAME, HIXIE_75, HIXIE_76, HixieRequest,
                                     hixie76_answer, hixie76_key_number)
from geventws.protocol.hixie import HixieConnection as Connection
from geventws.limits import JOIN_LIMIT
from helpers import KNOWN_ANSWERS

DRAFTS = [75, 76]


def only_messages(events):
    """The data of ``events``, which must all be message events."""
    assert all(type(e) is MessageEvent for e in events), events
    return [e.data for e in events]


def feed_in_pieces(conn, data, size):
    events = []
    for i in range(0, len(data), size):
        events.extend(conn.receive_data(data[i:i + size]))
    return events


def failure_code(events):
    assert type(events[-1]) is Failure, events
    return events[-1].error.code


# -- incoming frames --------------------------------------------------------------------

TEXTS = ['hello', '', 'h\u00e9llo w\u00f6rld \u20ac \U0001f600', 'x' * 70000]


@pytest.mark.parametrize('draft', DRAFTS)
@pytest.mark.parametrize('size', [1, 2, 3, 7, 1 << 20])
def test_text_frames_split_anywhere(draft, size):
    wire = b''.join(b'\x00' + t.encode('utf-8') + b'\xff' for t in TEXTS)
    conn = Connection(draft)
    assert only_messages(feed_in_pieces(conn, wire, size)) == TEXTS


@pytest.mark.parametrize('draft', DRAFTS)
def test_two_messages_in_one_chunk_and_a_third_begun(draft):
    conn = Connection(draft)
    assert only_messages(conn.receive_data(b'\x00one\xff\x00two\xff\x00thr')) == ['one', 'two']
    assert only_messages(conn.receive_data(b'ee\xff')) == ['three']


@pytest.mark.parametrize('draft', DRAFTS)
def test_kept_bytes_are_copied_from_a_reused_buffer(draft):
    buffer = bytearray(b'\x00abc')
    conn = Connection(draft)
    assert conn.receive_data(memoryview(buffer)) == []
    buffer[:] = b'XXXX'
    assert only_messages(conn.receive_data(memoryview(bytearray(b'def\xff')))) == ['abcdef']


@pytest.mark.parametrize('draft', DRAFTS)
@pytest.mark.parametrize('frame', [
    b'\x80\x00',                              # length-prefixed, empty
    b'\x80\x03abc',                           # length-prefixed, 3 bytes
    b'\x81\x81\x01' + b'\xff' * 129,          # length 129 in two 7-bit groups, 0xFF inside
    b'\x01ignored\xff',                       # sentinel-framed, type 1: not text
    b'\x7f\xff',                              # sentinel-framed, empty
])
@pytest.mark.parametrize('size', [1, 1000])
def test_other_frames_are_read_and_discarded(draft, frame, size):
    conn = Connection(draft)
    wire = b'\x00before\xff' + frame + b'\x00after\xff'
    assert only_messages(feed_in_pieces(conn, wire, size)) == ['before', 'after']


@pytest.mark.parametrize('size', [1, 1000])
def test_draft76_closing_frame(size):
    conn = Connection(76)
    events = feed_in_pieces(conn, b'\x00bye\xff\xff\x00\x00ignored\xff', size)
    assert only_messages(events[:1]) == ['bye']
    assert [(type(e), e.code) for e in events[1:]] == [(CloseReceived, 1000)]
    assert conn.close_received == (1000, '') and conn.state == 'CLOSING'
    assert conn.receive_data(b'\x00more\xff') == []
    assert conn.send_close() == [CLOSING_FRAME]
    assert conn.state == 'CLOSED'


def test_draft75_has_no_closing_frame():
    conn = Connection(75)
    assert only_messages(conn.receive_data(b'\xff\x00\x00still open\xff')) == ['still open']
    assert conn.close_received is None


@pytest.mark.parametrize('draft', DRAFTS)
@pytest.mark.parametrize('payload', [
    b'\xc3',                  # truncated two-byte sequence
    b'\xc0\xaf',              # overlong '/'
    b'\xed\xa0\x80',          # surrogate
    b'\xf4\x90\x80\x80',      # over U+10FFFF
    b'ok \x80',               # stray continuation byte
])
def test_invalid_utf8_fails_after_the_messages_before_it(draft, payload):
    conn = Connection(draft)
    events = conn.receive_data(b'\x00fine\xff\x00' + payload + b'\xff\x00never\xff')
    assert only_messages(events[:-1]) == ['fine']
    assert failure_code(events) == 1007
    assert conn.failure is not None and conn.state == 'CLOSING'
    assert conn.receive_data(b'\x00more\xff') == []
    assert conn.send_failure_close() == [] and conn.state == 'CLOSED'


@pytest.mark.parametrize('draft', DRAFTS)
def test_message_at_the_limit_passes(draft):
    conn = Connection(draft, max_message_size=100)
    assert only_messages(conn.receive_data(b'\x00' + b'a' * 100 + b'\xff')) == ['a' * 100]


@pytest.mark.parametrize('draft', DRAFTS)
@pytest.mark.parametrize('wire', [
    b'\x00' + b'a' * 101 + b'\xff',     # a whole text frame
    b'\x00' + b'a' * 101,               # no terminator yet: fails without waiting for it
    b'\x05' + b'a' * 101,               # a sentinel frame that would be discarded
    b'\x80\x81\x00',                    # a length-prefixed frame announcing 128 bytes
    b'\x80' + b'\xff' * 1000,           # a length that never ends
])
@pytest.mark.parametrize('size', [1, 10000])
def test_over_the_limit_fails_with_1009(draft, wire, size):
    conn = Connection(draft, max_message_size=100)
    events = feed_in_pieces(conn, wire, size)
    assert failure_code(events) == 1009
    assert conn._buf == bytearray()   # nothing kept once failed


@pytest.mark.parametrize('wire,clean', [
    (b'', True), (b'\x00done\xff', True), (b'\x80\x02ab', True),
    (b'\x00half', False), (b'\x80', False), (b'\x80\x05ab', False), (b'\x00\xc3\xff', False),
])
def test_draft75_tcp_close_is_clean_between_frames(wire, clean):
    conn = Connection(75)
    conn.receive_data(wire)
    assert conn.tcp_close_is_clean is clean


def test_draft76_tcp_close_is_never_clean():
    conn = Connection(76)
    conn.receive_data(b'\x00done\xff')
    assert conn.tcp_close_is_clean is False


# -- outgoing frames --------------------------------------------------------------------

@pytest.mark.parametrize('draft', DRAFTS)
@pytest.mark.parametrize('text', ['', 'hello', '\u00e9\u20ac\U0001f600', 'y' * (JOIN_LIMIT + 1)])
def test_text_frame_round_trip(draft, text):
    wire = b''.join(Connection(draft).send_message(text))
    assert wire == b'\x00' + text.encode('utf-8') + b'\xff'
    assert only_messages(Connection(draft).receive_data(wire)) == [text]


@pytest.mark.parametrize('draft', DRAFTS)
def test_fragments_go_out_as_one_message(draft):
    conn = Connection(draft)
    assert conn.send_message('ab', fin=False) == []
    assert conn.send_message('cd', fin=False) == []
    assert conn.send_message('ef') == [b'\x00abcdef\xff']
    assert conn.send_message('g') == [b'\x00g\xff']


@pytest.mark.parametrize('draft', DRAFTS)
@pytest.mark.parametrize('data', [b'bytes', bytearray(b'x'), memoryview(b'x')])
def test_binary_is_a_clear_error(draft, data):
    with pytest.raises(UnsupportedOperation, match='hixie-%d has no binary' % draft):
        Connection(draft).send_message(data)


@pytest.mark.parametrize('draft', DRAFTS)
def test_ping_is_a_clear_error(draft):
    with pytest.raises(UnsupportedOperation, match='hixie-%d has no ping' % draft):
        Connection(draft).send_ping(b'')


def test_draft76_close_sends_the_closing_frame_and_waits():
    conn = Connection(76)
    assert conn.send_close() == [CLOSING_FRAME]
    assert conn.state == 'CLOSING' and conn.close_received is None
    assert only_messages(conn.receive_data(b'\x00late\xff')) == ['late']
    assert type(conn.receive_data(CLOSING_FRAME)[0]) is CloseReceived
    assert conn.state == 'CLOSED'


def test_draft75_close_is_complete_at_once():
    conn = Connection(75)
    assert conn.send_close() == []
    assert conn.state == 'CLOSED' and conn.close_received == (1000, '')


@pytest.mark.parametrize('draft', DRAFTS)
def test_nothing_is_sent_after_close(draft):
    conn = Connection(draft)
    conn.send_close()
    with pytest.raises(ConnectionClosed):
        conn.send_message('late')
    with pytest.raises(ConnectionClosed):
        conn.send_close()


def test_only_the_two_drafts():
    with pytest.raises(ValueError):
        Connection(74)


# -- the draft-76 challenge -------------------------------------------------------------

@pytest.mark.parametrize('key1,key2,key3,answer', KNOWN_ANSWERS)
def test_known_answers(key1, key2, key3, answer):
    assert hixie76_answer(hixie76_key_number(key1), hixie76_key_number(key2), key3) == answer


def test_worked_example_numbers():
    assert hixie76_key_number(KNOWN_ANSWERS[1][0]) == 155712099
    assert hixie76_key_number(KNOWN_ANSWERS[1][1]) == 173347027


@pytest.mark.parametrize('key,why', [
    ('12345678', 'digits and spaces'),                 # no spaces
    ('a b c d', 'digits and spaces'),                  # no digits
    ('\u00b2 \u00b3 \u00b9', 'digits and spaces'),     # superscripts are not ASCII digits
    ('1 2 3', 'not a multiple'),                       # 123 over 2 spaces
    ('4294967296 ', '32 bits'),                        # 2**32 over 1 space
    ('9' * 5000 + '   ', '32 bits'),                   # a huge number, never parsed
])
def test_bad_keys_are_400(key, why):
    with pytest.raises(HandshakeError, match=why) as info:
        hixie76_key_number(key, 'Sec-WebSocket-Key2')
    assert info.value.status == 400 and 'Sec-WebSocket-Key2' in info.value.reason


# -- requests and their family ----------------------------------------------------------

def environ(**overrides):
    env = {'REQUEST_METHOD': 'GET', 'SERVER_PROTOCOL': 'HTTP/1.1', 'HTTP_HOST': 'example.com',
           'HTTP_UPGRADE': 'WebSocket', 'HTTP_CONNECTION': 'Upgrade',
           'HTTP_ORIGIN': 'http://example.com', 'PATH_INFO': '/demo', 'QUERY_STRING': '',
           'wsgi.url_scheme': 'http'}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def hixie76_environ(key1=KNOWN_ANSWERS[1][0], key2=KNOWN_ANSWERS[1][1], **overrides):
    return environ(HTTP_SEC_WEBSOCKET_KEY1=key1, HTTP_SEC_WEBSOCKET_KEY2=key2, **overrides)


def test_worked_example_answer_through_the_request():
    request = validate_upgrade_request(hixie76_environ(HTTP_SEC_WEBSOCKET_PROTOCOL='chat'))
    assert isinstance(request, HixieRequest) and request.version == HIXIE_76
    assert request.select_protocol(['other', 'chat']) == 'chat'
    request.key3 = KNOWN_ANSWERS[1][2]
    headers, status, body = request.response('chat', extra=[('X-Extra', '1')])
    assert status == '101 WebSocket Protocol Handshake'
    assert headers == [('Upgrade', 'WebSocket'), ('Connection', 'Upgrade'),
                       ('Sec-WebSocket-Origin', 'http://example.com'),
                       ('Sec-WebSocket-Location', 'ws://example.com/demo'),
                       ('Sec-WebSocket-Protocol', 'chat'), ('X-Extra', '1')]
    assert body == b'fQJ,fN/4F4!~K~MH'


def test_draft75_request_and_answer():
    request = validate_upgrade_request(environ(HTTP_WEBSOCKET_PROTOCOL='sample'))
    assert isinstance(request, HixieRequest) and request.version == HIXIE_75
    assert request.select_protocol(['other']) == ''
    headers, status, body = request.response(request.select_protocol('sample'))
    assert status == '101 Web Socket Protocol Handshake' and body == b''
    assert headers == [('Upgrade', 'WebSocket'), ('Connection', 'Upgrade'),
                       ('WebSocket-Origin', 'http://example.com'),
                       ('WebSocket-Location', 'ws://example.com/demo'),
                       ('WebSocket-Protocol', 'sample')]


@pytest.mark.parametrize('overrides,location', [
    (dict(QUERY_STRING='a=1&b=2'), 'ws://example.com/demo?a=1&b=2'),
    (dict(HTTP_HOST='example.com:8443', **{'wsgi.url_scheme': 'https'}),
     'wss://example.com:8443/demo'),
    (dict(PATH_INFO='/a b/\u00e9'), 'ws://example.com/a%20b/%E9'),   # PATH_INFO is latin-1
    (dict(SCRIPT_NAME='/app', PATH_INFO='/ws'), 'ws://example.com/app/ws'),
    (dict(RAW_URI='/d%65mo?x', PATH_INFO='/demo'), 'ws://example.com/d%65mo?x'),
])
@pytest.mark.parametrize('make', [environ, hixie76_environ])
def test_location_is_the_url_the_client_opened(make, overrides, location):
    assert validate_upgrade_request(make(**overrides)).location == location


@pytest.mark.parametrize('overrides,family', [
    (dict(HTTP_SEC_WEBSOCKET_VERSION='13', HTTP_SEC_WEBSOCKET_KEY='dGhlIHNhbXBsZSBub25jZQ==',
          HTTP_SEC_WEBSOCKET_KEY1='1 1', HTTP_SEC_WEBSOCKET_KEY2='1 1'), ServerRequest),
    (dict(HTTP_SEC_WEBSOCKET_VERSION='8', HTTP_SEC_WEBSOCKET_KEY='dGhlIHNhbXBsZSBub25jZQ=='),
     ServerRequest),
    (dict(HTTP_SEC_WEBSOCKET_KEY1='1 1', HTTP_SEC_WEBSOCKET_KEY2='1 1'), HixieRequest),
    ({}, HixieRequest),
])
def test_family_from_the_headers_alone(overrides, family):
    assert type(validate_upgrade_request(environ(**overrides))) is family


@pytest.mark.parametrize('overrides,status,mention', [
    # hybi requests keep their own rejections
    (dict(HTTP_SEC_WEBSOCKET_VERSION='12', HTTP_SEC_WEBSOCKET_KEY='dGhlIHNhbXBsZSBub25jZQ=='),
     426, 'Sec-WebSocket-Version'),
    (dict(HTTP_SEC_WEBSOCKET_KEY='dGhlIHNhbXBsZSBub25jZQ=='), 426, 'Sec-WebSocket-Version'),
    (dict(HTTP_SEC_WEBSOCKET_VERSION='13'), 400, 'Sec-WebSocket-Key'),
    # no family
    (dict(HTTP_CONNECTION='keep-alive'), 400, 'matches no WebSocket version'),
    (dict(HTTP_UPGRADE='websocket, h2c'), 400, 'matches no WebSocket version'),
    # hixie requests
    (dict(HTTP_ORIGIN=None), 400, 'Origin'),
    (dict(REQUEST_METHOD='POST'), 400, 'GET'),
    (dict(SERVER_PROTOCOL='HTTP/1.0'), 400, 'HTTP/1.1'),
    (dict(HTTP_HOST=None), 400, 'Host'),
    (dict(HTTP_SEC_WEBSOCKET_KEY1='1 1'), 400, 'Sec-WebSocket-Key2'),
    (dict(HTTP_SEC_WEBSOCKET_KEY1='1 1', HTTP_SEC_WEBSOCKET_KEY2='12'), 400,
     'Sec-WebSocket-Key2'),
    (dict(HTTP_SEC_WEBSOCKET_KEY1='1 1', HTTP_SEC_WEBSOCKET_KEY2='1 1', HTTP_ORIGIN=None),
     400, 'hixie-76 handshake needs an Origin'),
])
def test_rejections(overrides, status, mention):
    with pytest.raises(HandshakeError) as info:
        validate_upgrade_request(environ(**overrides))
    assert info.value.status == status
    assert mention in info.value.reason and '\n' not in info.value.reason
