"""The compiled reader and its pure-Python twin agree on every byte stream, split anywhere.

Hypothesis builds frame streams from messages (fragmented or not, text valid or broken,
control frames between the fragments), damages some of them (random header bytes, reserved
bits and opcodes, wrong masking, 126/127 length encodings, lengths over the limit or with the
top bit set, streams cut short), splits them at random points and feeds the same chunks to
both readers. After every chunk the items must be identical: same messages with the same
types, same control frames, same ProtocolError code and reason, at the same chunk (so the
compiled reader fails exactly as early as the pure one).
"""
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geventws.protocol import frames, reader
from geventws.errors import ProtocolError
from geventws.protocol.events import MessageEvent
from geventws.protocol.frames import mask
from geventws.limits import JOIN_LIMIT

try:
    from geventws.protocol import _reader as _speedups
except ImportError:  # not built: a failure where the build is part of the job
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        raise
    pytest.skip('geventws.protocol._reader is not built', allow_module_level=True)

TWINS = (reader.MessageReader, _speedups.MessageReader)

#: Byte strings that break UTF-8 in every way a validator must catch: overlong forms,
#: surrogates (caught at their second byte), code points over U+10FFFF, bytes that never
#: appear, stray continuation bytes, and sequences cut short.
BROKEN_UTF8 = [b'\xc0\x80', b'\xc1\xbf', b'\xe0\x80\xaf', b'\xe0\x9f\xbf', b'\xed\xa0\x80',
               b'\xed\xbf\xbf', b'\xf0\x80\x80\x80', b'\xf0\x8f\xbf\xbf', b'\xf4\x90\x80\x80',
               b'\xf5\x80\x80\x80', b'\xff', b'\xfe', b'\x80', b'\xbf', b'\xce', b'\xe2\x82',
               b'\xf0\x9f\x98', b'\xed', b'\xed\xa0', b'\xe0\xa0', b'\xf4\x8f']


def normalized(items):
    """Items as comparable values: the type of a message's data is part of its identity."""
    result = []
    for item in items:
        if type(item) is MessageEvent:
            result.append(('message', type(item.data).__name__, item.data))
        elif isinstance(item, ProtocolError):
            result.append(('error', item.code, item.reason))
        else:
            opcode, payload = item
            result.append(('frame', opcode, type(payload).__name__, bytes(payload)))
    return result


def encode_frame(b0, payload, key, length_form='minimal', length=None):
    """A frame with header byte ``b0``; ``length_form`` picks the 7-bit, 16-bit or 64-bit
    length encoding (non-minimal ones are legal), or a 64-bit length with the top bit set."""
    n = len(payload) if length is None else length
    mask_bit = 0x80 if key is not None else 0
    if length_form == 'msb':
        header = struct.pack('!BBQ', b0, mask_bit | 127, n | (1 << 63))
    elif length_form == '127' or n > 0xFFFF:
        header = struct.pack('!BBQ', b0, mask_bit | 127, n)
    elif length_form == '126' or (length_form == 'minimal' and n > 125):
        header = struct.pack('!BBH', b0, mask_bit | 126, n)
    else:
        header = bytes((b0, mask_bit | n))
    if key is None:
        return header + payload
    return header + key + mask(payload, key)


@st.composite
def text_payloads(draw):
    data = draw(st.text(max_size=40)).encode('utf-8')
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BROKEN_UTF8)) + data[at:]
    return data


@st.composite
def data_payloads(draw):
    if draw(st.integers(0, 15)) == 0:   # sometimes large: 16-bit and 64-bit lengths
        return bytes(range(256)) * draw(st.sampled_from([1, 300]))
    return draw(st.binary(max_size=60))


@st.composite
def frame_streams(draw, masked):
    """Bytes of a stream of frames: well-formed messages, in half of the streams damaged."""
    damaged = draw(st.booleans())

    def rarely():
        return damaged and draw(st.integers(0, 12)) == 0

    def key():
        right = not rarely()
        return draw(st.binary(min_size=4, max_size=4)) if right == masked else None

    def rsv():
        return draw(st.sampled_from([0x40, 0x20, 0x10, 0x70])) if rarely() else 0

    def length_form():
        return draw(st.sampled_from(['126', '127', 'msb'])) if rarely() else \
            draw(st.sampled_from(['minimal'] * 6 + ['126', '127']))

    def control_frame():
        opcode = draw(st.sampled_from([8, 9, 10, 11, 15])) if rarely() else \
            draw(st.sampled_from([8, 9, 10]))
        payload = draw(st.binary(max_size=130 if rarely() else 20))
        fin = 0 if rarely() else 0x80
        form = '126' if rarely() else 'minimal'
        return encode_frame(fin | rsv() | opcode, payload, key(), form)

    out = []
    for _ in range(draw(st.integers(0, 5))):
        kind = 'garbage' if rarely() else draw(st.sampled_from(['message'] * 3 + ['control']))
        if kind == 'control':
            out.append(control_frame())
        elif kind == 'garbage':
            out.append(draw(st.binary(min_size=1, max_size=12)))
        else:
            text = draw(st.booleans())
            payload = draw(text_payloads() if text else data_payloads())
            cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
            pieces = [payload[i:j] for i, j in zip([0] + cuts, cuts + [len(payload)])]
            for index, piece in enumerate(pieces):
                opcode = (1 if text else 2) if index == 0 else 0
                if rarely():
                    opcode = draw(st.integers(0, 15))
                fin = 0x80 if index == len(pieces) - 1 else 0
                out.append(encode_frame(fin | rsv() | opcode, piece, key(), length_form()))
                if draw(st.integers(0, 3)) == 0:
                    out.append(control_frame())
    stream = b''.join(out)
    if stream and rarely():
        stream = stream[:draw(st.integers(0, len(stream)))]
    return stream


@st.composite
def split_streams(draw):
    masked = draw(st.booleans())
    stream = draw(frame_streams(masked))
    if len(stream) < 300 and draw(st.integers(0, 2)) == 0:
        cuts = list(range(1, len(stream)))
    else:
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(stream))), max_size=12))))
    chunks = [stream[i:j] for i, j in zip([0] + cuts, cuts + [len(stream)])]
    limit = draw(st.sampled_from([0, 1, 7, 64, 300, 70000] + [2 ** 20] * 6))
    allow_rsv1 = draw(st.booleans())
    return chunks, (limit, masked, allow_rsv1)


def feed_both(chunks, args):
    readers = [twin(*args) for twin in TWINS]
    results = []
    for chunk in chunks:
        results.append([normalized(r.feed(chunk)) for r in readers])
    return results


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_streams())
def test_twins_agree_chunk_by_chunk(case):
    chunks, args = case
    for index, (pure, compiled) in enumerate(feed_both(chunks, args)):
        assert compiled == pure, 'chunk %d of %r' % (index, chunks)


@settings(max_examples=100, deadline=None)
@given(split_streams())
def test_splitting_changes_when_not_what(case):
    """Whatever the splits, the same items come out in total (the pure twin is the model)."""
    chunks, args = case
    whole = normalized(reader.MessageReader(*args).feed(b''.join(chunks)))
    for twin in TWINS:
        r = twin(*args)
        assert sum((normalized(r.feed(chunk)) for chunk in chunks), []) == whole


@pytest.mark.parametrize('twin', TWINS, ids=['pure', 'compiled'])
def test_dead_after_an_error(twin):
    r = twin(100, True)
    items = r.feed(b'\x83\x80abcd')
    assert normalized(items) == [('error', 1002, 'reserved opcode 3')]
    assert r.feed(encode_frame(0x81, b'hi', b'abcd')) == []


@pytest.mark.parametrize('twin', TWINS, ids=['pure', 'compiled'])
def test_surrogate_fails_at_its_second_byte(twin):
    """ED A0..BF can only start a surrogate (RFC 3629 section 3): fail before the third."""
    utf8_error = [('error', 1007, 'invalid UTF-8 in a text message')]
    frame = encode_frame(0x81, b'ok\xed\xa0\x80', b'abcd')
    assert normalized(twin(100, True).feed(frame[:-1])) == utf8_error
    still_valid = encode_frame(0x81, b'ok\xed\x9f\xbf', b'abcd')   # U+D7FF
    assert twin(100, True).feed(still_valid[:-1]) == []


@pytest.mark.parametrize('twin', TWINS, ids=['pure', 'compiled'])
def test_size_limit_as_soon_as_the_header_is_complete(twin):
    r = twin(10, True)
    header = encode_frame(0x82, b'', b'abcd', length=11)
    assert r.feed(header[:-1]) == []
    assert normalized(r.feed(header[-1:])) == [
        ('error', 1009, 'message over the limit of 10 bytes')]


@pytest.mark.parametrize('twin', TWINS, ids=['pure', 'compiled'])
def test_input_buffer_is_not_kept(twin):
    """The I/O layer feeds views of one shared read buffer and overwrites it afterwards."""
    stream = (encode_frame(0x01, 'hé'.encode()[:2], b'abcd') +
              encode_frame(0x89, b'ping', b'wxyz') +
              encode_frame(0x80, 'hé'.encode()[2:] + b'llo', b'efgh') +
              encode_frame(0x82, bytes(range(200)), b'ijkl'))
    shared = bytearray(16)
    r = twin(1000, True)
    items = []
    for i in range(0, len(stream), 16):
        chunk = stream[i:i + 16]
        shared[:len(chunk)] = chunk
        items += r.feed(memoryview(shared)[:len(chunk)])
        shared[:] = b'\xff' * 16
    assert normalized(items) == [('frame', 9, 'bytes', b'ping'),
                                 ('message', 'str', 'héllo'),
                                 ('message', 'bytes', bytes(range(200)))]


@pytest.mark.parametrize('twin', TWINS, ids=['pure', 'compiled'])
def test_control_frames_split_byte_by_byte_keep_their_own_payloads(twin):
    """A control frame's payload arriving in pieces is gathered per frame: the payload
    handed out for one frame is not the buffer the next one is gathered in."""
    first, second = bytes(range(125)), b'\xff' * 125
    stream = (encode_frame(0x89, first, b'abcd') + encode_frame(0x8A, b'', b'efgh') +
              encode_frame(0x89, second, b'ijkl'))
    r = twin(1000, True)
    items = []
    for i in range(len(stream)):
        items += r.feed(stream[i:i + 1])
    assert normalized(items) == [('frame', 9, 'bytes', first), ('frame', 10, 'bytes', b''),
                                 ('frame', 9, 'bytes', second)]


@pytest.mark.parametrize('size', [0, 1, 3, 4, 7, 8, 9, 31, 125, 4096, 65537])
def test_masking_matches_a_reference(size):
    data = os.urandom(size)
    key = os.urandom(4)
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert mask(data, key) == expected
    assert _speedups.mask(data, key) == expected
    assert _speedups.mask(bytearray(data), memoryview(key)) == expected


@settings(max_examples=300, deadline=None)
@given(opcode=st.sampled_from([0, 1, 2, 8, 9, 10]), fin=st.booleans(), rsv1=st.booleans(),
       size=st.sampled_from([0, 1, 7, 125, 126, 127, 65535, 65536, JOIN_LIMIT,
                             JOIN_LIMIT + 1]) | st.integers(0, 300),
       key=st.none() | st.binary(min_size=4, max_size=4),
       kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_frame_serialisers_agree(opcode, fin, rsv1, size, key, kind):
    payload = kind(os.urandom(size))
    pure = frames.frame(opcode, payload, fin, rsv1, key)
    compiled = _speedups.frame(opcode, payload, fin, rsv1, key)
    assert [bytes(buf) for buf in compiled] == [bytes(buf) for buf in pure]
    assert len(compiled) == len(pure)
    if len(pure) == 2:   # a large payload is written as it is, never copied
        assert pure[1] is payload and compiled[1] is payload
    masked = key is not None
    parsed = reader.MessageReader(1 << 20, masked).feed(b''.join(map(bytes, pure)))
    if fin and opcode in (2, 8, 9, 10) and not rsv1 and (opcode == 2 or size <= 125):
        assert bytes(parsed[0].data if opcode == 2 else parsed[0][1]) == bytes(payload)


def test_utf8_automaton_agrees_on_every_short_sequence():
    """Every 2-byte sequence, and 3- and 4-byte ones built from the boundary bytes of RFC 3629's
    table, in an unfinished text frame: both twins fail at the same byte or wait alike."""
    edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
    sequences = [bytes((a, b)) for a in range(256) for b in range(256)]
    sequences += [bytes((a, b, c)) for a in range(0xC0, 0x100) for b in edges for c in edges]
    sequences += [bytes((a, b, c, d)) for a in range(0xF0, 0xF8)
                  for b in edges for c in edges for d in edges]
    for sequence in sequences:
        unfinished = encode_frame(0x81, b'ab' + sequence, b'\x00\x00\x00\x00', length=20)
        pure, compiled = (normalized(twin(100, True).feed(unfinished)) for twin in TWINS)
        assert compiled == pure, sequence
