"""permessage-deflate in the sans-I/O core (``geventws.protocol.deflate``): RFC 7692's examples, the
negotiation tables of both roles, and the limits that make a decompression bomb harmless.
"""
import os
import tracemalloc
import zlib

import pytest

from geventws.errors import HandshakeError
from geventws.protocol import Connection
from geventws.protocol.deflate import (DeflateOptions, PerMessageDeflate, client_negotiate,
                                       client_offer, compression_options, negotiate)
from geventws.protocol.events import Failure
from geventws.protocol.frames import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT
from geventws.protocol.handshake import parse_extension_header
from helpers import frame, message_data

DEFAULTS = DeflateOptions()


def extension(send_bits=15, receive_bits=15, send_reset=False, receive_reset=False, **options):
    options.setdefault('min_size', 0)
    return PerMessageDeflate(DeflateOptions(**options), send_bits, receive_bits, send_reset,
                             receive_reset)


def client(**kw):
    """A client-role connection: it reads the RFC's unmasked server frames as they are."""
    return Connection(client=True, extension=extension(**kw))


def server(max_message_size=2 ** 20, **kw):
    return Connection(client=False, max_message_size=max_message_size,
                      extension=extension(**kw))


def failure(events):
    assert type(events[-1]) is Failure, events
    return events[-1].error


def sent(buffers):
    return b''.join(buffers)


# -- RFC 7692 section 7.2.3: the examples, byte for byte ------------------------------------------

HELLO = bytes.fromhex('f248cdc9c90700')


@pytest.mark.parametrize('wire, expected', [
    # 7.2.3.1: "Hello" in one compressed frame, then in two fragments.
    (bytes.fromhex('c107') + HELLO, ['Hello']),
    (bytes.fromhex('4103f248cd' '8004c9c90700'), ['Hello']),
    # 7.2.3.2: the second "Hello" refers to the first through the shared LZ77 window.
    (bytes.fromhex('c107') + HELLO + bytes.fromhex('c105f200110000'), ['Hello', 'Hello']),
    # 7.2.3.3: a DEFLATE block with no compression.
    (bytes.fromhex('c10b000500faff48656c6c6f00'), ['Hello']),
    # 7.2.3.4: a block with BFINAL set, then one more octet.
    (bytes.fromhex('c108f348cdc9c9070000'), ['Hello']),
    # 7.2.3.5: two DEFLATE blocks in one message.
    (bytes.fromhex('c10df248050000' '00ffffcac9c90700'), ['Hello']),
    # 7.2.3.6: an empty message is one 0x00 octet; and an empty uncompressed one.
    (bytes.fromhex('c10100') + bytes.fromhex('8100'), ['', '']),
])
@pytest.mark.parametrize('bytewise', [False, True])
def test_rfc7692_examples_decode(wire, expected, bytewise):
    conn = client()
    chunks = [wire[i:i + 1] for i in range(len(wire))] if bytewise else [wire]
    assert message_data([e for chunk in chunks for e in conn.receive_data(chunk)]) == expected


def test_rfc7692_hello_encodes_as_the_rfc_shows_with_context_takeover():
    conn = server()
    assert sent(conn.send_message('Hello')) == bytes.fromhex('c107') + HELLO
    assert sent(conn.send_message('Hello')) == bytes.fromhex('c105f200110000')


def test_no_context_takeover_compresses_each_message_alone():
    conn = server(send_reset=True)
    assert sent(conn.send_message('Hello')) == bytes.fromhex('c107') + HELLO
    assert sent(conn.send_message('Hello')) == bytes.fromhex('c107') + HELLO


def test_a_final_block_does_not_break_the_next_message():
    """After a BFINAL block zlib's inflater is finished: the next message, which still refers
    to "Hello" through the window (7.2.3.2's second frame), must decode."""
    conn = client()
    wire = bytes.fromhex('c108f348cdc9c9070000') + bytes.fromhex('c105f200110000')
    assert message_data(conn.receive_data(wire)) == ['Hello', 'Hello']
    peer = zlib.compressobj(6, zlib.DEFLATED, -15)
    for text in ('again', 'Hello again', 'x' * 1000):
        data = peer.compress(text.encode()) + peer.flush(zlib.Z_SYNC_FLUSH)
        assert message_data(conn.receive_data(frame(OP_TEXT, data[:-4], rsv=4,
                                                    masked=False))) == [text]


def test_every_message_ending_with_a_final_block():
    """A peer that finishes a DEFLATE stream per message (zlib's Z_FINISH each time)."""
    conn = client()
    for i in range(5):
        peer = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = peer.compress(b'message %d' % i) + peer.flush(zlib.Z_FINISH)
        events = conn.receive_data(frame(OP_BINARY, data, rsv=4, masked=False))
        assert message_data(events) == [b'message %d' % i]


# -- sending ------------------------------------------------------------------------------------

def roundtrip(sender, receiver, data, fragments=None):
    if fragments is None:
        wire = sent(sender.send_message(data))
    else:
        wire = b''.join(sent(sender.send_message(part, fin=i == len(fragments) - 1))
                        for i, part in enumerate(fragments))
    return wire, message_data(receiver.receive_data(wire))


@pytest.mark.parametrize('send_reset', [False, True])
def test_text_and_binary_round_trip_with_rsv1_on_the_first_frame_only(send_reset):
    sender = server(send_reset=send_reset)
    receiver = client(receive_reset=send_reset)
    payloads = ['é☺ ' * 3000, os.urandom(70000), b'', 'short', b'x' * 200000]
    for data in payloads * 2:
        wire, got = roundtrip(sender, receiver, data)
        assert got == [data]
        assert wire[0] & 0x40
    parts = [b'abc' * 100, b'', b'def' * 100, b'ghi']
    wire, got = roundtrip(sender, receiver, None, parts)
    assert got == [b''.join(parts)]
    headers = parse_frames(wire)
    assert [(op, rsv1) for op, rsv1, _ in headers] == [(OP_BINARY, True)] + [
        (OP_CONTINUATION, False)] * 3


def parse_frames(wire):
    """(opcode, rsv1, payload) of unmasked frames."""
    frames, i = [], 0
    while i < len(wire):
        b0, n = wire[i], wire[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = int.from_bytes(wire[i:i + 2], 'big'), i + 2
        elif n == 127:
            n, i = int.from_bytes(wire[i:i + 8], 'big'), i + 8
        frames.append((b0 & 0x0F, bool(b0 & 0x40), wire[i:i + n]))
        i += n
    return frames


def test_the_sync_flush_tail_is_removed():
    conn = server()
    (op, rsv1, payload), = parse_frames(sent(conn.send_message(b'a' * 1000)))
    assert rsv1 and not payload.endswith(b'\x00\x00\xff\xff')
    assert zlib.decompressobj(-15).decompress(payload + b'\x00\x00\xff\xff') == b'a' * 1000


def test_small_messages_are_sent_uncompressed():
    conn = Connection(client=False, extension=PerMessageDeflate(DEFAULTS, 12, 12, False,
                                                                False))
    small, large = b'x' * (DEFAULTS.min_size - 1), b'x' * DEFAULTS.min_size
    assert parse_frames(sent(conn.send_message(small))) == [(OP_BINARY, False, small)]
    assert parse_frames(sent(conn.send_message(large)))[0][1] is True
    # A fragmented message is compressed whatever the size of its first fragment.
    frames = parse_frames(sent(conn.send_message(b'x', fin=False)) +
                          sent(conn.send_message(b'y')))
    assert [rsv1 for _, rsv1, _ in frames] == [True, False]


def test_window_of_8_bits_is_compressed_with_9_and_inflates_with_8():
    """zlib rejects wbits=-8 for deflate; a 9-bit window never reaches back past 250 bytes,
    so its output inflates with the 256-byte window the peer agreed to."""
    sender = server(send_bits=8)
    inflater = zlib.decompressobj(-8)
    base = os.urandom(300)
    for i in range(50):
        data = (base[i:] + base[:i]) * 20
        (_, _, payload), = parse_frames(sent(sender.send_message(data)))
        assert inflater.decompress(payload + b'\x00\x00\xff\xff') == data


# -- limits and corrupt data --------------------------------------------------------------------

def test_decompression_bomb_fails_with_1009_without_inflating_it():
    """Under 10 KiB of deflate that inflates to 10 MiB, against a 1 MiB limit: 1009, and the
    inflater never holds much more than the limit."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(bytes(10 * 2 ** 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(payload) < 11 * 1024
    conn = server(max_message_size=2 ** 20)
    tracemalloc.start()
    try:
        events = conn.receive_data(frame(OP_BINARY, payload[:-4], rsv=4))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = failure(events)
    assert error.code == 1009 and 'after decompression' in error.reason
    assert peak < 3 * 2 ** 20


def test_message_at_the_limit_is_accepted():
    conn = server(max_message_size=1000)
    peer = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = peer.compress(b'a' * 1000) + peer.flush(zlib.Z_SYNC_FLUSH)
    assert message_data(conn.receive_data(frame(OP_BINARY, data[:-4], rsv=4))) == [b'a' * 1000]
    data = peer.compress(b'a' * 1001) + peer.flush(zlib.Z_SYNC_FLUSH)
    assert failure(conn.receive_data(frame(OP_BINARY, data[:-4], rsv=4))).code == 1009


@pytest.mark.parametrize('payload', [
    b'\xff\xff\xff\xff',                       # reserved block type 3
    bytes.fromhex('000500faff4865'),           # stored block with a wrong length complement
    bytes.fromhex('cac0210e00'),               # a distance before the start of the stream
])
def test_corrupt_data_fails_with_1007_and_a_clear_reason(payload):
    error = failure(server().receive_data(frame(OP_BINARY, payload, rsv=4)))
    assert error.code == 1007
    assert error.reason.startswith('invalid compressed data')


def test_compressed_text_must_be_utf8():
    peer = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = peer.compress(b'\xff\xfe') + peer.flush(zlib.Z_SYNC_FLUSH)
    assert failure(server().receive_data(frame(OP_TEXT, data[:-4], rsv=4))).code == 1007


@pytest.mark.parametrize('wire', [
    frame(OP_PING, b'', rsv=4),                                       # control frame
    frame(OP_TEXT, HELLO[:3], fin=False, rsv=4) + frame(OP_CONTINUATION, HELLO[3:], rsv=4),
])
def test_rsv1_on_a_control_frame_or_continuation_is_1002(wire):
    assert failure(server().receive_data(wire)).code == 1002


def test_rsv1_without_the_extension_is_1002():
    conn = Connection(client=False)
    assert failure(conn.receive_data(frame(OP_TEXT, HELLO, rsv=4))).code == 1002


def test_offload_hook_gets_large_payloads_only():
    calls = []

    def offload(func, *args):
        calls.append(func.__name__)
        return func(*args)

    sender, receiver = server(offload_size=1000), client(offload_size=1000)
    sender.extension.offload = receiver.extension.offload = offload
    for data in (b'a' * 999, os.urandom(5000)):
        assert roundtrip(sender, receiver, data)[1] == [data]
    assert calls == ['_deflate', '_inflate']   # the 5000 random bytes, both ways


# -- negotiation, server side (RFC 7692 7.1) ------------------------------------------------------

P = 'permessage-deflate'


@pytest.mark.parametrize('offer, response', [
    # Browsers' offer: limit the client to 12 bits, announce our 12.
    (P + '; client_max_window_bits',
     P + '; server_max_window_bits=12; client_max_window_bits=12'),
    (P, P + '; server_max_window_bits=12'),
    (P + '; client_max_window_bits=10', P + '; server_max_window_bits=12; '
                                            'client_max_window_bits=10'),
    (P + '; client_max_window_bits=15', P + '; server_max_window_bits=12; '
                                            'client_max_window_bits=12'),
    (P + '; server_max_window_bits=15', P + '; server_max_window_bits=12'),
    (P + '; server_max_window_bits=10', P + '; server_max_window_bits=10'),
    (P + '; server_max_window_bits=8', P + '; server_max_window_bits=8'),
    (P + '; server_no_context_takeover', P + '; server_no_context_takeover; '
                                             'server_max_window_bits=12'),
    (P + '; client_no_context_takeover', P + '; client_no_context_takeover; '
                                             'server_max_window_bits=12'),
    (P + '; server_no_context_takeover; client_no_context_takeover; '
         'server_max_window_bits=9; client_max_window_bits=9',
     P + '; server_no_context_takeover; client_no_context_takeover; '
         'server_max_window_bits=9; client_max_window_bits=9'),
    (P + '; client_max_window_bits="10"', P + '; server_max_window_bits=12; '
                                              'client_max_window_bits=10'),
    # Declined: unknown, repeated or malformed parameters, other extensions.
    (P + '; foo', None),
    (P + '; server_max_window_bits', None),
    (P + '; server_max_window_bits=7', None),
    (P + '; server_max_window_bits=16', None),
    (P + '; server_max_window_bits=010', None),
    (P + '; client_max_window_bits=abc', None),
    (P + '; server_no_context_takeover=1', None),
    (P + '; client_no_context_takeover; client_no_context_takeover', None),
    (P + '; server_max_window_bits=10; server_max_window_bits=10', None),
    ('x-webkit-deflate-frame', None),
    ('', None),
    # Several offers: the first acceptable one wins (Autobahn 13.7's list, then a bad first).
    (P + '; server_no_context_takeover; server_max_window_bits=8, '
         + P + '; server_no_context_takeover, ' + P,
     P + '; server_no_context_takeover; server_max_window_bits=8'),
    (P + '; bad, ' + P + '; client_max_window_bits',
     P + '; server_max_window_bits=12; client_max_window_bits=12'),
    ('foo, ' + P, P + '; server_max_window_bits=12'),
])
def test_server_negotiation(offer, response):
    result = negotiate(parse_extension_header(offer), True)
    assert (result and result[0]) == response


@pytest.mark.parametrize('options, offer, response, agreed', [
    (dict(server_max_window_bits=15, client_max_window_bits=15), P + '; client_max_window_bits',
     P, (15, 15, False, False)),
    (dict(server_no_context_takeover=True, client_no_context_takeover=True), P,
     P + '; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12',
     (12, 15, True, True)),
    (dict(server_max_window_bits=9), P + '; server_max_window_bits=14',
     P + '; server_max_window_bits=9', (9, 15, False, False)),
    (dict(client_max_window_bits=9), P + '; client_max_window_bits=11',
     P + '; server_max_window_bits=12; client_max_window_bits=9', (12, 9, False, False)),
])
def test_server_negotiation_with_options(options, offer, response, agreed):
    header, ext = negotiate(parse_extension_header(offer), options)
    assert header == response
    assert (ext.send_bits, ext.receive_bits, ext.send_reset, ext.receive_reset) == agreed


def test_server_agreed_parameters_follow_the_response():
    header, ext = negotiate(parse_extension_header(P + '; client_max_window_bits; '
                                                       'server_no_context_takeover'), True)
    assert (ext.send_bits, ext.receive_bits, ext.send_reset, ext.receive_reset) == (
        12, 12, True, False)


@pytest.mark.parametrize('compression', [None, False])
def test_compression_disabled(compression):
    assert negotiate(parse_extension_header(P), compression) is None
    assert client_offer(compression) == ''


def test_options_are_validated():
    assert compression_options(True) is compression_options(True)
    assert compression_options({'level': 1}).level == 1
    for bad in (dict(server_max_window_bits=7), dict(client_max_window_bits=16),
                dict(level=10), dict(mem_level=0)):
        with pytest.raises(ValueError):
            DeflateOptions(**bad)
    with pytest.raises(TypeError):
        compression_options('yes')


# -- negotiation, client side -------------------------------------------------------------------

@pytest.mark.parametrize('options, offer', [
    (True, P + '; client_max_window_bits=12'),
    (dict(client_max_window_bits=15), P + '; client_max_window_bits'),
    (dict(server_max_window_bits=10, server_no_context_takeover=True,
          client_no_context_takeover=True, client_max_window_bits=9),
     P + '; server_no_context_takeover; client_no_context_takeover; '
         'server_max_window_bits=10; client_max_window_bits=9'),
])
def test_client_offer(options, offer):
    assert client_offer(options) == offer
    assert parse_extension_header(offer)   # well-formed


@pytest.mark.parametrize('options, response, agreed', [
    # agreed: (send_bits, receive_bits, send_reset, receive_reset), or None when declined
    (True, '', None),
    (True, P, (12, 15, False, False)),
    (True, P + '; server_max_window_bits=10', (12, 10, False, False)),
    (True, P + '; client_max_window_bits=8', (8, 15, False, False)),
    (True, P + '; client_max_window_bits=12', (12, 15, False, False)),
    (True, P + '; client_max_window_bits=15', (12, 15, False, False)),  # over our hint
    (True, P + '; server_no_context_takeover', (12, 15, False, True)),
    (True, P + '; client_no_context_takeover', (12, 15, True, False)),
    (True, P + ';server_no_context_takeover;client_no_context_takeover;'
               'server_max_window_bits=9;client_max_window_bits=9', (9, 9, True, True)),
    (dict(client_max_window_bits=15), P + '; client_max_window_bits=14',
     (14, 15, False, False)),
    (dict(server_max_window_bits=10), P + '; server_max_window_bits=10',
     (12, 10, False, False)),
    (dict(server_max_window_bits=10), P + '; server_max_window_bits=8', (12, 8, False, False)),
    (dict(client_no_context_takeover=True), P, (12, 15, True, False)),
    (dict(server_no_context_takeover=True), P + '; server_no_context_takeover',
     (12, 15, False, True)),
])
def test_client_negotiation(options, response, agreed):
    ext = client_negotiate(response, options)
    if agreed is None:
        assert ext is None
    else:
        assert (ext.send_bits, ext.receive_bits, ext.send_reset, ext.receive_reset) == agreed


@pytest.mark.parametrize('options, response', [
    (True, 'x-webkit-deflate-frame'),
    (True, P + ', ' + P),
    (True, P + '; foo'),
    (True, P + '; client_max_window_bits'),           # a response needs the value
    (True, P + '; server_max_window_bits=16'),
    (True, P + '; server_max_window_bits'),
    (True, P + '; server_no_context_takeover=yes'),
    (True, P + '; server_no_context_takeover; server_no_context_takeover'),
    (True, P + ';;'),
    (dict(server_max_window_bits=10), P),              # requested limit not agreed
    (dict(server_max_window_bits=10), P + '; server_max_window_bits=11'),
    (dict(server_no_context_takeover=True), P),
    (None, P),                                         # nothing was offered
])
def test_client_rejects_bad_responses(options, response):
    with pytest.raises(HandshakeError) as info:
        client_negotiate(response, options)
    assert 'Sec-WebSocket-Extensions' in info.value.reason


@pytest.mark.parametrize('options', [
    True, dict(server_no_context_takeover=True, client_no_context_takeover=True),
    dict(server_max_window_bits=9, client_max_window_bits=9),
    dict(client_max_window_bits=8, server_max_window_bits=8),
])
def test_both_roles_agree_and_talk(options):
    """Our client's offer through our server's negotiation and back: both ends agree on
    mirrored parameters and exchange messages."""
    header, server_ext = negotiate(parse_extension_header(client_offer(options)), options)
    client_ext = client_negotiate(header, options)
    assert (client_ext.send_bits, client_ext.receive_bits, client_ext.send_reset,
            client_ext.receive_reset) == (server_ext.receive_bits, server_ext.send_bits,
                                          server_ext.receive_reset, server_ext.send_reset)
    srv = Connection(client=False, extension=server_ext)
    cli = Connection(client=True, extension=client_ext)
    for data in ('Hello' * 40, os.urandom(3000), b'z' * 100000, 'x'):
        assert roundtrip(cli, srv, data)[1] == [data]
        assert roundtrip(srv, cli, data)[1] == [data]
