"""The sans-I/O core (``geventws.protocol.Connection``): bytes in, events and bytes out.

Each protocol error must fail the connection with its close code (RFC 6455 7.4.1) as soon as
the bytes prove it, UTF-8 included (Autobahn 6.x fail-fast); control frames may come between
fragments; pings are answered; the closing handshake moves through its states (section 7).
"""
import struct

import pytest

from geventws.errors import ConnectionClosed
from geventws.protocol.events import CloseReceived, Failure, MessageEvent, Ping, Pong
from geventws.protocol import CLOSED, CLOSING, OPEN, Connection
from geventws.protocol.frames import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG,
                                      OP_TEXT, mask)
from helpers import PROTOCOL_ERRORS, close_frame, frame, message_data


def feed(conn, data, bytewise=False):
    if not bytewise:
        return conn.receive_data(data)
    return [event for i in range(len(data)) for event in conn.receive_data(data[i:i + 1])]


def assert_failed(conn, events, code):
    """The connection failed with ``code``: a Failure event, nothing more is read, and the
    close frame that fails the connection (sent by the I/O layer in turn) has that code."""
    assert type(events[-1]) is Failure, events
    assert events[-1].error.code == code
    assert conn.receive_data(frame(OP_TEXT, b'more')) == []
    assert conn.data_to_send() == b''
    assert conn.state == CLOSING
    close = b''.join(conn.send_failure_close())
    assert close[:2] == b'\x88' + bytes([len(close) - 2])
    assert struct.unpack('!H', close[2:4])[0] == code
    assert conn.state == CLOSED


@pytest.mark.parametrize('data,code', [e[1:] for e in PROTOCOL_ERRORS],
                         ids=[e[0] for e in PROTOCOL_ERRORS])
@pytest.mark.parametrize('bytewise', [False, True], ids=['whole', 'bytewise'])
def test_protocol_error_fails_with_its_code(data, code, bytewise):
    conn = Connection(max_message_size=1024)
    assert_failed(conn, feed(conn, data, bytewise), code)


@pytest.mark.parametrize('prefix', [
    b'\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0',    # Autobahn 6.4.1: surrogate
    b'\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90',    # 6.4.2: over U+10FFFF
    b'\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xff',        # invalid byte
    b'\xc0',                                                    # overlong lead byte
    b'\xe0\x80',                                                # overlong 3-byte
])
def test_utf8_fails_fast_inside_an_unfinished_frame(prefix):
    """Only the header and the first payload bytes of a long frame have arrived."""
    conn = Connection()
    data = frame(OP_TEXT, prefix + b'a' * 100)
    events = conn.receive_data(data[:6 + len(prefix)])
    assert_failed(conn, events, 1007)


def test_utf8_fails_fast_across_fragments_before_the_message_ends():
    conn = Connection()
    assert conn.receive_data(frame(OP_TEXT, b'\xce\xba\xed', fin=False)) == []
    events = conn.receive_data(frame(OP_CONTINUATION, b'\xa0\x80', fin=False))
    assert_failed(conn, events, 1007)


def test_valid_utf8_split_at_every_point():
    text = 'κόσμε \U0001F600 € a'
    payload = text.encode('utf-8')
    for cut in range(len(payload) + 1):
        conn = Connection()
        data = (frame(OP_TEXT, payload[:cut], fin=False) +
                frame(OP_CONTINUATION, payload[cut:]))
        assert message_data(feed(conn, data, bytewise=cut % 2 == 1)) == [text]


@pytest.mark.parametrize('data,expected', [
    (frame(OP_TEXT, b''), ['']),
    (frame(OP_BINARY, b''), [b'']),
    (frame(OP_TEXT, b'', fin=False) + frame(OP_CONTINUATION, b''), ['']),
    (frame(OP_BINARY, b'a', fin=False) + frame(OP_CONTINUATION, b'', fin=False) +
     frame(OP_CONTINUATION, b'b'), [b'ab']),
    (frame(OP_TEXT, b'x' * 126) + frame(OP_BINARY, b'y' * 65536),
     ['x' * 126, b'y' * 65536]),
])
def test_messages(data, expected):
    for bytewise in (False, True):
        conn = Connection()
        events = feed(conn, data, bytewise)
        assert message_data(events) == expected
        assert [type(m) for m in message_data(events)] == [type(m) for m in expected]


def test_control_frames_between_fragments():
    conn = Connection()
    events = conn.receive_data(
        frame(OP_TEXT, b'frag', fin=False) + frame(OP_PING, b'p1') +
        frame(OP_CONTINUATION, b'ment', fin=False) + frame(OP_PONG, b'p2') +
        frame(OP_CONTINUATION, b'ed'))
    assert [type(e) for e in events] == [Ping, Pong, MessageEvent]
    assert events[0].payload == b'p1' and events[1].payload == b'p2'
    assert events[2].data == 'fragmented'
    assert conn.data_to_send() == b'\x8a\x02p1'


def test_ping_is_answered_with_the_same_payload_and_pong_ignored():
    conn = Connection()
    events = conn.receive_data(frame(OP_PING, b'Hello') + frame(OP_PING, b''))
    assert [type(e) for e in events] == [Ping, Ping]
    assert conn.data_to_send() == b'\x8a\x05Hello\x8a\x00'
    assert conn.data_to_send() == b''
    events = conn.receive_data(frame(OP_PONG, b'unsolicited'))
    assert [type(e) for e in events] == [Pong]
    assert conn.data_to_send() == b''
    assert conn.state == OPEN


@pytest.mark.parametrize('payload,code,reason,echo', [
    (b'\x03\xe8bye', 1000, 'bye', b'\x88\x02\x03\xe8'),
    (b'\x0b\xb8', 3000, '', b'\x88\x02\x0b\xb8'),
    (b'', 1005, '', b'\x88\x00'),
])
def test_peer_close_is_answered_with_its_code(payload, code, reason, echo):
    """The answer is the I/O layer's to send once the messages before the close were handled
    (RFC 6455 5.5.1); until then the connection may still send."""
    conn = Connection()
    events = conn.receive_data(frame(OP_TEXT, b'last') + frame(OP_CLOSE, payload) +
                               frame(OP_TEXT, b'after close'))
    assert [type(e) for e in events] == [MessageEvent, CloseReceived]
    assert (events[1].code, events[1].reason) == (code, reason)
    assert conn.data_to_send() == b''
    assert conn.state == CLOSING
    assert b''.join(conn.send_message('answer to last')) == b'\x81\x0eanswer to last'
    assert b''.join(conn.send_close(events[1].code)) == echo
    assert conn.state == CLOSED
    assert conn.receive_data(frame(OP_TEXT, b'x')) == []
    with pytest.raises(ConnectionClosed):
        conn.send_message('too late')


def test_our_close_then_peer_close():
    conn = Connection()
    assert b''.join(conn.send_close(1001, 'going')) == b'\x88\x07\x03\xe9going'
    assert conn.state == CLOSING
    with pytest.raises(ConnectionClosed) as info:
        conn.send_message('x')
    assert (info.value.code, info.value.reason) == (1001, 'going')
    with pytest.raises(ConnectionClosed):
        conn.send_close()
    # Messages still arrive while closing; pings are no longer answered.
    events = conn.receive_data(frame(OP_TEXT, b'in flight') + frame(OP_PING, b'p') +
                               close_frame(1001, masked=True))
    assert message_data(events) == ['in flight']
    assert type(events[-1]) is CloseReceived and events[-1].code == 1001
    assert conn.data_to_send() == b''
    assert conn.state == CLOSED


def test_max_message_size_is_inclusive():
    conn = Connection(max_message_size=10)
    assert message_data(conn.receive_data(frame(OP_BINARY, b'x' * 10))) == [b'x' * 10]
    assert message_data(conn.receive_data(frame(OP_TEXT, b'12345', fin=False) +
                                          frame(OP_CONTINUATION, b'67890'))) == ['1234567890']
    assert_failed(conn, conn.receive_data(frame(OP_TEXT, b'x' * 11)), 1009)


def test_size_limit_fails_on_the_header_alone():
    conn = Connection(max_message_size=1000)
    assert_failed(conn, conn.receive_data(frame(OP_BINARY, length=1 << 40)[:14]), 1009)


@pytest.mark.parametrize('data,fin,expected', [
    ('Hello', True, b'\x81\x05Hello'),
    (b'\x00\xff', True, b'\x82\x02\x00\xff'),
    (bytearray(b'ab'), True, b'\x82\x02ab'),
    (memoryview(b'ab'), True, b'\x82\x02ab'),
    ('', True, b'\x81\x00'),
])
def test_server_frames_are_not_masked(data, fin, expected):
    assert b''.join(Connection().send_message(data, fin)) == expected


def test_large_server_frame():
    payload = b'z' * (2 << 20)
    assert b''.join(Connection().send_message(payload)) == (
        b'\x82\x7f' + struct.pack('!Q', len(payload)) + payload)


def test_fragmented_send():
    conn = Connection()
    out = [b''.join(conn.send_message(part, fin)) for part, fin in
           [('Hel', False), ('l', False), ('o', True), (b'next', True)]]
    assert out == [b'\x01\x03Hel', b'\x00\x01l', b'\x80\x01o', b'\x82\x04next']


def test_control_frame_payload_limit_on_send():
    conn = Connection()
    assert b''.join(conn.send_ping(b'x' * 125))[:2] == b'\x89\x7d'
    with pytest.raises(ValueError):
        conn.send_ping(b'x' * 126)


def test_client_role_masks_and_refuses_masked_frames():
    conn = Connection(client=True)
    sent = b''.join(conn.send_message('Hello'))
    assert sent[:2] == b'\x81\x85' and mask(sent[6:], sent[2:6]) == b'Hello'
    assert message_data(conn.receive_data(frame(OP_TEXT, b'hi', masked=False))) == ['hi']
    events = conn.receive_data(frame(OP_TEXT, b'hi', masked=True))
    assert type(events[-1]) is Failure and events[-1].error.code == 1002
    close = b''.join(conn.send_failure_close())
    assert close[0] == 0x88 and close[1] & 0x80    # a client's close frame is masked too
