"""Known-answer vectors of RFC 6455: the accept key of section 1.3, every framing example of
section 5.7 (encoded by ``frames`` and parsed by the reader in use), and masking (5.3)."""
import pytest

from geventws.protocol.events import MessageEvent
from geventws.protocol.frames import (OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
                             encode_close_payload, frame_header, is_valid_close_code, mask,
                             parse_close_payload)
from geventws.errors import ProtocolError
from geventws.protocol.handshake import accept_key
from geventws.speedups import MessageReader
from geventws import speedups

KEY_5_7 = bytes([0x37, 0xfa, 0x21, 0x3d])
HELLO_MASKED = bytes([0x7f, 0x9f, 0x4d, 0x51, 0x58])


def test_accept_key_of_section_1_3():
    assert accept_key('dGhlIHNhbXBsZSBub25jZQ==') == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


# (description, frame as on the wire, opcode, fin, mask key, payload): RFC 6455 section 5.7.
EXAMPLES = [
    ('single-frame unmasked text', bytes([0x81, 0x05]) + b'Hello', OP_TEXT, True, None,
     b'Hello'),
    ('single-frame masked text', bytes([0x81, 0x85]) + KEY_5_7 + HELLO_MASKED, OP_TEXT, True,
     KEY_5_7, b'Hello'),
    ('fragmented unmasked text, first', bytes([0x01, 0x03]) + b'Hel', OP_TEXT, False, None,
     b'Hel'),
    ('fragmented unmasked text, last', bytes([0x80, 0x02]) + b'lo', OP_CONTINUATION, True, None,
     b'lo'),
    ('unmasked ping', bytes([0x89, 0x05]) + b'Hello', OP_PING, True, None, b'Hello'),
    ('masked pong', bytes([0x8a, 0x85]) + KEY_5_7 + HELLO_MASKED, OP_PONG, True, KEY_5_7,
     b'Hello'),
    ('256 bytes binary, 16-bit length', bytes([0x82, 0x7e, 0x01, 0x00]) + bytes(256),
     OP_BINARY, True, None, bytes(256)),
    ('64 KiB binary, 64-bit length', bytes([0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]) + bytes(65536),
     OP_BINARY, True, None, bytes(65536)),
]


@pytest.mark.parametrize('wire,opcode,fin,key,payload',
                         [e[1:] for e in EXAMPLES], ids=[e[0] for e in EXAMPLES])
def test_encode_section_5_7_examples(wire, opcode, fin, key, payload):
    body = mask(payload, key) if key else payload
    assert frame_header(opcode, len(payload), fin, mask_key=key) + body == wire


def _parse(wire, masked):
    """Everything the reader makes of ``wire``, fed whole and then one byte at a time."""
    whole = MessageReader(1 << 20, masked).feed(wire)
    reader = MessageReader(1 << 20, masked)
    bytewise = [item for i in range(len(wire)) for item in reader.feed(wire[i:i + 1])]
    assert _comparable(bytewise) == _comparable(whole)
    return whole


def _comparable(items):
    return [(type(i), i.data) if isinstance(i, MessageEvent) else i for i in items]


@pytest.mark.parametrize('wire,masked,expected', [
    (EXAMPLES[0][1], False, [MessageEvent('Hello')]),
    (EXAMPLES[1][1], True, [MessageEvent('Hello')]),
    (EXAMPLES[2][1] + EXAMPLES[3][1], False, [MessageEvent('Hello')]),
    (EXAMPLES[4][1], False, [(OP_PING, b'Hello')]),
    (EXAMPLES[5][1], True, [(OP_PONG, b'Hello')]),
    (EXAMPLES[6][1], False, [MessageEvent(bytes(256))]),
    (EXAMPLES[7][1], False, [MessageEvent(bytes(65536))]),
], ids=['unmasked text', 'masked text', 'fragmented text', 'ping', 'masked pong',
        '256 B binary', '64 KiB binary'])
def test_parse_section_5_7_examples(wire, masked, expected):
    assert _comparable(_parse(wire, masked)) == _comparable(expected)


def test_mask_known_answer_and_involution():
    assert mask(b'Hello', KEY_5_7) == HELLO_MASKED
    data = bytes(range(256)) * 5 + b'xyz'
    assert mask(mask(data, b'abcd'), b'abcd') == data
    assert mask(b'', b'abcd') == b''


@pytest.mark.parametrize('n', [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1000, 4099])
def test_compiled_and_pure_mask_agree(n):
    data = bytes((i * 7 + 3) & 0xFF for i in range(n))
    expected = bytes(b ^ KEY_5_7[i % 4] for i, b in enumerate(data))
    assert mask(data, KEY_5_7) == expected
    assert speedups.mask(data, KEY_5_7) == expected


@pytest.mark.parametrize('length,header', [
    (0, b'\x82\x00'), (125, b'\x82\x7d'), (126, b'\x82\x7e\x00\x7e'),
    (65535, b'\x82\x7e\xff\xff'), (65536, b'\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00'),
    (2 ** 32, b'\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00'),
])
def test_length_encodings(length, header):
    assert frame_header(OP_BINARY, length) == header


@pytest.mark.parametrize('code,valid', [
    (999, False), (1000, True), (1001, True), (1002, True), (1003, True), (1004, False),
    (1005, False), (1006, False), (1007, True), (1011, True), (1014, True), (1015, False),
    (1016, False), (2999, False), (3000, True), (4999, True), (5000, False), (0, False),
])
def test_close_code_validity(code, valid):
    assert is_valid_close_code(code) is valid


@pytest.mark.parametrize('payload,code,reason', [
    (b'', 1005, ''), (b'\x03\xe8', 1000, ''), (b'\x03\xe9bye \xce\xba', 1001, 'bye \u03ba'),
])
def test_parse_close_payload(payload, code, reason):
    assert parse_close_payload(payload) == (code, reason)


@pytest.mark.parametrize('payload,code', [
    (b'\x03', 1002), (b'\x03\xec', 1002), (b'\x03\xe8\xff', 1007),
])
def test_parse_bad_close_payload(payload, code):
    with pytest.raises(ProtocolError) as info:
        parse_close_payload(payload)
    assert info.value.code == code


@pytest.mark.parametrize('code,reason', [(1005, 'x'), (1006, ''), (999, ''), (1000, 'x' * 124)])
def test_encode_close_payload_refuses_what_may_not_be_sent(code, reason):
    with pytest.raises(ValueError):
        encode_close_payload(code, reason)
