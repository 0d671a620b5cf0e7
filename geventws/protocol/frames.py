"""RFC 6455 section 5 vocabulary: opcodes, close codes, frame headers and masking.

Pure functions shared by the protocol core and by both message readers (``reader`` and its
compiled twin, ``ext/geventws/protocol/_reader.pyx``, which also implements ``mask`` and
``frame``; ``geventws.speedups`` chooses).
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..errors import ProtocolError
from ..limits import JOIN_LIMIT

if TYPE_CHECKING:
    from .._types import Buffers, BytesLike

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

DATA_OPCODES = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

#: Close codes with no status: never put on the wire (RFC 6455 7.4.1).
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006

#: Codes defined by RFC 6455 7.4.1 plus those IANA registered since (1012-1014) that an
#: endpoint may send; 1004, 1005, 1006 and 1015 are reserved and never sent.
_DEFINED_CLOSE_CODES = frozenset([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014])

_pack_short = struct.Struct('!BBH').pack
_pack_long = struct.Struct('!BBQ').pack


def is_valid_close_code(code: int) -> bool:
    """True if ``code`` may appear in a close frame (RFC 6455 7.4.1-7.4.2)."""
    return code in _DEFINED_CLOSE_CODES or 3000 <= code <= 4999


def mask(data: BytesLike, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 5.3), as one big-integer XOR.

    Python's arbitrary-precision integers do the work in C a machine word at a time, hundreds
    of MB/s, where a loop over bytes would do a few MB/s.
    """
    n = len(data)
    if not n:
        return b''
    repeated = key * (n // 4 + 1)
    return (int.from_bytes(data, 'little') ^
            int.from_bytes(repeated[:n], 'little')).to_bytes(n, 'little')


def frame_header(opcode: int, length: int, fin: bool = True, rsv1: bool = False,
                 mask_key: bytes | None = None) -> bytes:
    """The header of one frame (RFC 6455 5.2), with the masking key appended if given."""
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    mask_bit = 0x80 if mask_key is not None else 0
    if length < 126:
        header = bytes((b0, mask_bit | length))
    elif length < 65536:
        header = _pack_short(b0, mask_bit | 126, length)
    else:
        header = _pack_long(b0, mask_bit | 127, length)
    return header + mask_key if mask_key is not None else header


def frame(opcode: int, payload: BytesLike, fin: bool = True, rsv1: bool = False,
          mask_key: bytes | None = None) -> Buffers:
    """One frame as a list of buffers to write (RFC 6455 5.2): header and payload joined,
    except that a large unmasked payload is left apart from its header rather than copied
    behind it; masked with ``mask_key`` (4 bytes) if given."""
    header = frame_header(opcode, len(payload), fin, rsv1, mask_key)
    if mask_key is not None:
        return [header + mask(payload, mask_key)]
    if len(payload) <= JOIN_LIMIT:
        return [header + payload]
    return [header, payload]


def encode_close_payload(code: int = 1000, reason: str | BytesLike = '') -> bytes:
    """The payload of a close frame we send; raises ValueError for what may not be sent."""
    if code == CLOSE_NO_STATUS:
        if reason:
            raise ValueError('a close frame without a status code cannot carry a reason')
        return b''
    if not is_valid_close_code(code):
        raise ValueError('close code %r may not be sent (RFC 6455 7.4)' % (code,))
    data = reason.encode('utf-8') if isinstance(reason, str) else bytes(reason)
    if len(data) > 123:
        raise ValueError('close reason is %d bytes; at most 123 fit a control frame' % len(data))
    return struct.pack('!H', code) + data


def parse_close_payload(payload: BytesLike) -> tuple[int, str]:
    """(code, reason) of a received close frame; 1005 when it has no payload (RFC 6455 5.5.1)."""
    if not payload:
        return CLOSE_NO_STATUS, ''
    if len(payload) == 1:
        raise ProtocolError('close frame payload of 1 byte', 1002)
    code = int.from_bytes(payload[:2], 'big')
    if not is_valid_close_code(code):
        raise ProtocolError('invalid close code %d' % code, 1002)
    try:
        reason = bytes(payload[2:]).decode('utf-8')
    except UnicodeDecodeError:
        raise ProtocolError('close reason is not valid UTF-8', 1007) from None
    return code, reason


def header_error(b0: int, b1: int, message_opcode: int, expect_masked: bool,
                 allow_rsv1: bool) -> ProtocolError | None:
    """The ProtocolError that the first two header bytes already prove, or None.

    ``message_opcode`` is the opcode of the fragmented message in progress (0 if none).
    The order of the checks is part of the contract shared with the compiled reader.
    """
    opcode = b0 & 0x0F
    if b0 & 0x30 or (b0 & 0x40 and not (allow_rsv1 and opcode in (OP_TEXT, OP_BINARY))):
        return ProtocolError('reserved bits set without an extension that defines them')
    if 3 <= opcode <= 7 or opcode >= 11:
        return ProtocolError('reserved opcode %d' % opcode)
    if opcode >= 8:
        if not b0 & 0x80:
            return ProtocolError('fragmented control frame')
        if b1 & 0x7F > 125:
            return ProtocolError('control frame payload over 125 bytes')
    elif opcode == OP_CONTINUATION:
        if not message_opcode:
            return ProtocolError('continuation frame without a message to continue')
    elif message_opcode:
        return ProtocolError('new data frame inside a fragmented message')
    if bool(b1 & 0x80) != expect_masked:
        return ProtocolError('client frame is not masked' if expect_masked
                             else 'server frame is masked')
    return None


def invalid_utf8() -> ProtocolError:
    """The error for text that is not UTF-8 (RFC 6455 8.1: the connection fails with 1007)."""
    return ProtocolError('invalid UTF-8 in a text message', 1007)
