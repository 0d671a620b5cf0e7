"""Bytes in, whole messages and control frames out: the pure-Python message reader.

This is the twin of the compiled reader in ``ext/geventws/protocol/_reader.pyx``; both must
produce the same items and the same errors for any byte stream split at any points
(``tests/test_twins.py`` checks that with Hypothesis). ``feed(data)`` returns a list whose
items are:

- ``MessageEvent(data)``: a whole uncompressed data message, ``str`` for text (UTF-8 already
  validated) and ``bytes`` for binary;
- ``(opcode, payload)``: a control frame (close, ping, pong), or a whole data message whose
  first frame had RSV1 set (compressed by an extension, which decodes and validates it);
- a ``ProtocolError`` as the last item when the stream is broken; the reader is dead after it.

Validation fails as early as the bytes allow (Autobahn's "fail fast" cases): the reserved
bits, opcode, masking and control-frame rules are checked on the first two header bytes, the
size limit as soon as the length is known, and UTF-8 on every chunk of a text payload as it
arrives, even when the frame is not complete yet.
"""
from __future__ import annotations

import codecs
import struct
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError
from .events import MessageEvent
from .frames import OP_BINARY, OP_TEXT, header_error, invalid_utf8, mask

if TYPE_CHECKING:
    from .._types import BytesLike, ReaderItem

_unpack_short = struct.Struct('!H').unpack_from
_unpack_long = struct.Struct('!Q').unpack_from
_Utf8Decoder = codecs.getincrementaldecoder('utf-8')


class MessageReader:
    """Parses the frames of one connection's incoming byte stream (RFC 6455 5.2-5.6)."""

    # Slots: every open connection has one (memory per idle connection).
    __slots__ = ('max_message_size', 'expect_masked', 'allow_rsv1', '_buf', '_dead',
                 '_in_frame', '_opcode', '_fin', '_key', '_phase', '_remaining',
                 '_msg_opcode', '_msg_compressed', '_msg_size', '_msg_parts', '_decoder')

    def __init__(self, max_message_size: int, expect_masked: bool,
                 allow_rsv1: bool = False) -> None:
        self.max_message_size = max_message_size
        self.expect_masked = expect_masked
        self.allow_rsv1 = allow_rsv1
        self._buf = bytearray()
        self._dead = False
        # The frame being read: set once its header is complete.
        self._in_frame = False
        self._opcode = 0
        self._fin = False
        self._key: bytes | None = None
        self._phase = 0            # how many payload bytes of this frame were unmasked
        self._remaining = 0
        # The data message being reassembled (0: none).
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_parts: list[Any] = []   # bytes, or str pieces of a validated text message
        self._decoder: codecs.IncrementalDecoder | None = None

    def feed(self, data: BytesLike) -> list[ReaderItem]:
        if self._dead:
            return []
        buf = self._buf
        buf += data
        out: list[ReaderItem] = []
        try:
            while True:
                if not self._in_frame and not self._read_header(buf):
                    break
                if self._opcode >= 8:
                    if len(buf) < self._remaining:
                        break
                    out.append((self._opcode, self._take(buf, self._remaining)))
                    self._in_frame = False
                    continue
                if not self._read_payload(buf, out):
                    break
        except ProtocolError as exc:
            self._dead = True
            self._buf = bytearray()
            self._msg_parts = []
            out.append(exc)
        return out

    def _read_header(self, buf: bytearray) -> bool:
        """Consume one frame header from ``buf``; False if more bytes are needed."""
        n = len(buf)
        if n < 2:
            return False
        b0, b1 = buf[0], buf[1]
        error = header_error(b0, b1, self._msg_opcode, self.expect_masked, self.allow_rsv1)
        if error is not None:
            raise error
        length = b1 & 0x7F
        size = 2
        if length == 126:
            size = 4
        elif length == 127:
            size = 10
        if b1 & 0x80:
            size += 4
        if n < size:
            return False
        if length == 126:
            length = _unpack_short(buf, 2)[0]
        elif length == 127:
            length = _unpack_long(buf, 2)[0]
            if length >> 63:
                raise ProtocolError('frame length has its most significant bit set')
        opcode = b0 & 0x0F
        if opcode < 8 and self._msg_size + length > self.max_message_size:
            raise ProtocolError('message over the limit of %d bytes' % self.max_message_size,
                                1009)
        self._key = bytes(buf[size - 4:size]) if b1 & 0x80 else None
        del buf[:size]
        self._in_frame = True
        self._opcode = opcode
        self._fin = bool(b0 & 0x80)
        self._remaining = length
        self._phase = 0
        if opcode in (OP_TEXT, OP_BINARY):
            self._msg_opcode = opcode
            self._msg_compressed = bool(b0 & 0x40)
            self._msg_size = 0
            self._msg_parts = []
            self._decoder = (_Utf8Decoder() if opcode == OP_TEXT and not self._msg_compressed
                             else None)
        return True

    def _take(self, buf: bytearray, n: int) -> bytes:
        """Remove ``n`` payload bytes from ``buf``, unmasked."""
        chunk = bytes(buf[:n])
        del buf[:n]
        key = self._key
        if key is not None and n:
            phase = self._phase & 3
            if phase:
                key = key[phase:] + key[:phase]
            chunk = mask(chunk, key)
        self._phase += n
        return chunk

    def _read_payload(self, buf: bytearray, out: list[ReaderItem]) -> bool:
        """Consume what is there of a data frame's payload; False if more bytes are needed."""
        available = min(self._remaining, len(buf))
        whole_message = (available == self._remaining and self._fin and
                         self._phase == 0 and not self._msg_parts)
        if available or whole_message:
            chunk = self._take(buf, available)
            self._remaining -= available
            self._msg_size += available
            decoder = self._decoder
            if decoder is None:
                self._msg_parts.append(chunk)
            elif whole_message:
                try:
                    self._msg_parts.append(chunk.decode('utf-8'))
                except UnicodeDecodeError:
                    raise invalid_utf8() from None
                self._decoder = decoder = None
            else:
                try:
                    self._msg_parts.append(decoder.decode(chunk, False))
                except UnicodeDecodeError:
                    raise invalid_utf8() from None
                # CPython's decoder waits for a surrogate's third byte (ED A0..BF) before
                # rejecting it; the second byte already proves it invalid.
                pending = decoder.getstate()[0]
                if len(pending) >= 2 and pending[0] == 0xED and pending[1] > 0x9F:
                    raise invalid_utf8()
        if self._remaining:
            return False
        self._in_frame = False
        if self._fin:
            out.append(self._finish_message())
        return True

    def _finish_message(self) -> MessageEvent | tuple[int, bytes]:
        parts, decoder = self._msg_parts, self._decoder
        opcode, compressed = self._msg_opcode, self._msg_compressed
        self._msg_opcode = 0
        self._msg_size = 0
        self._msg_parts = []
        self._decoder = None
        if decoder is not None:
            try:
                parts.append(decoder.decode(b'', True))
            except UnicodeDecodeError:
                raise invalid_utf8() from None
        if opcode == OP_TEXT and not compressed:
            return MessageEvent(parts[0] if len(parts) == 1 else ''.join(parts))
        payload = parts[0] if len(parts) == 1 else b''.join(parts)
        if compressed:
            return (opcode, payload)
        return MessageEvent(payload)
