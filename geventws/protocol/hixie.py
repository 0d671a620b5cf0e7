"""The hixie drafts (draft-hixie-thewebsocketprotocol-75 and -76, which browsers spoke in 2010
and 2011), server role, sans I/O: the opening handshake (draft-75's, and draft-76's key
challenge) and the connection, with the interface of ``connection.Connection``.

The drafts have text frames only: ``0x00``, UTF-8, ``0xFF``. A frame whose type byte has its
high bit set carries a length in 7-bit groups and is read and discarded; in draft-76 the one
such frame of type ``0xFF`` and length 0 is the closing frame ("0xFF 0x00").
Other sentinel-terminated types are read and discarded too. Draft-75 has no closing frame:
closing TCP is the whole closing handshake, so the peer's TCP close between frames is its
clean close (``tcp_close_is_clean``) and our ``send_close()`` completes at once.

Codes: the drafts carry none, so a clean close is reported as 1000 and anything else (a
failure, a lost connection) as 1006 by the I/O layer. Invalid UTF-8 and a message over
``max_message_size`` fail the connection (``Failure`` with a ``ProtocolError`` of code 1007
or 1009, for ``onerror``); the drafts have no frame for that, so TCP is simply closed.

The terminator is found with ``bytearray.find`` and each message is decoded with one
``bytes.decode``: both run in C, so this module needs no compiled twin and takes the same
path with and without ``GEVENTWS_NO_EXTENSIONS``. ``0xFF`` never occurs in UTF-8, so the
first one after a text frame's type byte ends it.
"""
from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Iterable
from urllib.parse import quote

from ..errors import ConnectionClosed, HandshakeError, ProtocolError, UnsupportedOperation
from ..limits import JOIN_LIMIT, MAX_MESSAGE_SIZE
from .connection import CLOSED, CLOSING, OPEN
from .events import CloseReceived, Failure, MessageEvent
from .http import check_no_control_characters, check_upgrade_request, select_protocol

if TYPE_CHECKING:
    from .._types import Buffers, BytesLike, Environ, Event, Payload

# -- the opening handshake --------------------------------------------------------------------

HIXIE_75, HIXIE_76 = 'hixie-75', 'hixie-76'
_ASCII_DIGITS = frozenset('0123456789')
#: Characters a request path keeps unquoted when the location is rebuilt from PATH_INFO.
_PATH_SAFE = "/;=,:@!$&'()*+"


class HixieRequest:
    """A validated draft-75 or draft-76 opening request. For draft-76 the handler sets
    ``key3``, the 8 bytes the client sends after its headers, before the answer is made."""

    def __init__(self, version: str, origin: str, location: str, protocols: list[str],
                 key_numbers: tuple[int, int] | None = None) -> None:
        self.version = version          # HIXIE_75 or HIXIE_76
        self.origin = origin
        self.location = location        # the ws:// or wss:// URL the client asked for
        self.protocols = protocols      # the one subprotocol asked for, or none
        self.key_numbers = key_numbers  # draft-76: the numbers of Key1 and Key2
        self.key3: bytes | None = None

    def select_protocol(self, supported: str | Iterable[str] | None) -> str:
        """The subprotocol the client asked for if the server ``supported`` it, or ''."""
        return select_protocol(self.protocols, supported)

    @property
    def draft(self) -> int:
        return 76 if self.version == HIXIE_76 else 75

    def response(self, protocol: str = '', extra: Iterable[tuple[str, str]] = ()
                 ) -> tuple[list[tuple[str, str]], str, bytes]:
        """``(headers, status, body)`` of the 101 answer. Draft-75 clients compare the status
        line and the first two headers byte for byte (draft-75 client rules), hence the fixed
        spelling and order; draft-76 adds the 16-byte challenge answer as the body."""
        if self.version == HIXIE_75:
            prefix, status, body = 'WebSocket-', '101 Web Socket Protocol Handshake', b''
        else:
            prefix, status = 'Sec-WebSocket-', '101 WebSocket Protocol Handshake'
            # draft-76: validate_request set key_numbers, and the handler key3
            body = hixie76_answer(self.key_numbers[0], self.key_numbers[1],  # type: ignore[index]
                                  self.key3)  # type: ignore[arg-type]
        headers = [('Upgrade', 'WebSocket'), ('Connection', 'Upgrade'),
                   (prefix + 'Origin', self.origin), (prefix + 'Location', self.location)]
        if protocol:
            headers.append((prefix + 'Protocol', protocol))
        headers.extend(extra)
        return headers, status, body


def validate_request(environ: Environ, version: str) -> HixieRequest:
    """Check a draft-75 or draft-76 (``version``) upgrade request; raise HandshakeError (400)."""
    check_upgrade_request(environ)
    # The answer repeats Origin, Host, the protocol and the request URI as they came: no
    # field of such a request may carry a line break (a folded line) or another control.
    check_no_control_characters(environ, [name for name in environ if name.startswith('HTTP_')
                                          or name in ('RAW_URI', 'QUERY_STRING')])
    origin = environ.get('HTTP_ORIGIN')
    if not origin:
        raise HandshakeError('%s handshake needs an Origin header (the answer repeats it)'
                             % version)
    key_numbers = None
    if version == HIXIE_76:
        key_numbers = (hixie76_key_number(environ.get('HTTP_SEC_WEBSOCKET_KEY1', ''),
                                          'Sec-WebSocket-Key1'),
                       hixie76_key_number(environ.get('HTTP_SEC_WEBSOCKET_KEY2', ''),
                                          'Sec-WebSocket-Key2'))
        protocol = environ.get('HTTP_SEC_WEBSOCKET_PROTOCOL', '').strip()
    else:
        protocol = environ.get('HTTP_WEBSOCKET_PROTOCOL', '').strip()
    scheme = 'wss' if environ.get('wsgi.url_scheme') == 'https' else 'ws'
    location = '%s://%s%s' % (scheme, environ['HTTP_HOST'], _request_uri(environ))
    return HixieRequest(version, origin, location, [protocol] if protocol else [],
                        key_numbers)


def _request_uri(environ: Environ) -> str:
    """The path and query as the client wrote them: draft-76 clients compare the location
    with the URL they opened. gunicorn keeps it (RAW_URI); pywsgi has only the decoded
    PATH_INFO (latin-1 per PEP 3333), quoted again here."""
    raw = environ.get('RAW_URI')
    if raw:
        return raw
    path = quote(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', ''),
                 safe=_PATH_SAFE, encoding='latin-1')
    query = environ.get('QUERY_STRING')
    return path + '?' + query if query else path


def hixie76_key_number(value: str, name: str = 'Sec-WebSocket-Key1') -> int:
    """The number a draft-76 key stands for: its ASCII digits read as one integer, divided
    by its count of spaces. 400 when it has no digits or no spaces, when the division
    leaves a remainder, or when the result does not fit in 32 bits."""
    digits = ''.join(c for c in value if c in _ASCII_DIGITS)   # not str.isdigit: '\xb2'
    spaces = value.count(' ')
    if not digits or not spaces:
        raise HandshakeError('%s must contain digits and spaces' % name)
    digits = digits.lstrip('0') or '0'
    # Over 20 digits is far past 32 bits times any count of spaces: not worth an int().
    quotient, remainder = divmod(int(digits), spaces) if len(digits) <= 20 else (1 << 32, 0)
    if remainder:
        raise HandshakeError('%s: its number is not a multiple of its %d spaces'
                             % (name, spaces))
    if quotient > 0xFFFFFFFF:
        raise HandshakeError('%s: its number divided by its spaces exceeds 32 bits' % name)
    return quotient


def hixie76_answer(number1: int, number2: int, key3: BytesLike) -> bytes:
    """The 16-byte answer to a draft-76 challenge: the MD5 of the two key numbers as 32-bit
    big-endian integers followed by the 8 bytes of key3."""
    return hashlib.md5(struct.pack('>II', number1, number2) + bytes(key3)).digest()


# -- the connection ---------------------------------------------------------------------------

CLOSE_NORMAL = 1000      # what a clean close is reported as; the drafts carry no code
CLOSING_FRAME = b'\xff\x00'

# Where the reader is in the incoming stream.
_FRAME_TYPE, _LENGTH, _SKIP, _SENTINEL = range(4)


class HixieConnection:
    """The state of one hixie connection after its opening handshake."""

    client = False      # the drafts are implemented for the server role only
    extension = None    # and have no extensions
    can_ping = False    # nor pings: no keepalive
    _fragment_opcode = 0   # a message sent in fragments goes out whole at its end

    def __init__(self, draft: int = 76, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        if draft not in (75, 76):
            raise ValueError('draft must be 75 or 76, not %r' % (draft,))
        self.draft = draft
        self.max_message_size = max_message_size
        self.state = OPEN
        self.close_sent: tuple[int, str] | None = None      # given to send_close()
        self.close_received: tuple[int, str] | None = None  # (1000, '') once closed
        self.failure: ProtocolError | None = None  # the error that failed the connection
        self._buf = bytearray()       # bytes not consumed yet: at most one partial frame
        self._step = _FRAME_TYPE
        self._frame_type = 0
        self._length = 0              # of the length-prefixed frame being read or skipped
        self._scanned = 0             # bytes of a sentinel frame already searched for 0xFF
        self._pieces: list[str] = []  # a message the app sends in fragments, joined at fin

    # -- incoming ---------------------------------------------------------------------------

    def receive_data(self, data: BytesLike, decompress: bool = True) -> list[Event]:
        """Events for ``data``, in order. After the closing frame or a failure, nothing more.
        ``data`` may be a view of a buffer the caller reuses: what is kept is copied."""
        if self.close_received is not None or self.failure is not None:
            return []
        buf = self._buf
        buf += data
        events: list[Event] = []
        try:
            consumed = self._parse(buf, events)
        except ProtocolError as exc:
            self.failure = exc.with_traceback(None)   # no cycle: see connection.Connection._fail
            self.state = CLOSED if self.close_sent is not None else CLOSING
            self._buf = bytearray()
            events.append(Failure(exc))
            return events
        del buf[:consumed]
        return events

    @property
    def tcp_close_is_clean(self) -> bool:
        """Draft-75 closes by closing TCP: the peer doing so between frames closed cleanly."""
        return self.draft == 75 and self._step == _FRAME_TYPE and self.failure is None

    def _parse(self, buf: bytearray, events: list[Event]) -> int:
        """Append the events of the whole frames in ``buf``; return how many bytes were used
        (a partial text frame stays in ``buf``, from its first data byte)."""
        pos, end = 0, len(buf)
        limit = self.max_message_size
        while pos < end:
            step = self._step
            if step == _SENTINEL:
                stop = buf.find(b'\xff', pos + self._scanned)
                if stop < 0:
                    self._scanned = end - pos
                    if self._scanned > limit:
                        raise _too_large(limit)
                    return pos
                if stop - pos > limit:
                    raise _too_large(limit)
                if self._frame_type == 0x00:
                    try:
                        events.append(MessageEvent(buf[pos:stop].decode('utf-8')))
                    except UnicodeDecodeError:
                        raise ProtocolError('invalid UTF-8 in a text frame', 1007) from None
                pos = stop + 1
                self._step = _FRAME_TYPE
            elif step == _FRAME_TYPE:
                self._frame_type = frame_type = buf[pos]
                pos += 1
                self._length = self._scanned = 0
                self._step = _LENGTH if frame_type & 0x80 else _SENTINEL
            elif step == _LENGTH:
                byte = buf[pos]
                pos += 1
                self._length = self._length * 128 + (byte & 0x7F)
                if self._length > limit:
                    raise _too_large(limit)
                if byte & 0x80:
                    continue
                if self.draft == 76 and self._frame_type == 0xFF and self._length == 0:
                    events.append(self._closing_frame_received())
                    return end    # nothing is read after the closing frame
                self._step = _SKIP if self._length else _FRAME_TYPE
            else:   # _SKIP: a length-prefixed frame, read and discarded
                skipped = min(self._length, end - pos)
                pos += skipped
                self._length -= skipped
                if not self._length:
                    self._step = _FRAME_TYPE
        return pos

    def _closing_frame_received(self) -> CloseReceived:
        self.close_received = (CLOSE_NORMAL, '')
        self.state = CLOSED if self.close_sent is not None else CLOSING
        return CloseReceived(CLOSE_NORMAL, '')

    def data_to_send(self) -> bytes:
        """Nothing: the drafts have no frame that answers another (no ping, no pong)."""
        return b''

    # -- outgoing ---------------------------------------------------------------------------

    def frame_key(self) -> str:
        """Every hixie connection frames a message alike (``broadcast()``)."""
        return 'hixie'

    def send_message(self, data: Payload, fin: bool = True, offload: bool = True) -> Buffers:
        """The text frame for ``data`` (``str``). A message sent in fragments goes out whole
        at its last fragment: the drafts have no fragmentation."""
        if self.close_sent is not None:
            raise ConnectionClosed(*self.close_sent)
        if not isinstance(data, str):
            raise UnsupportedOperation(
                'hixie-%d has no binary messages: send str (bytes with binary=False are '
                'decoded as UTF-8)' % self.draft)
        if not fin:
            self._pieces.append(data)
            return []
        if self._pieces:
            self._pieces.append(data)
            data = ''.join(self._pieces)
            self._pieces = []
        payload = data.encode('utf-8')
        if len(payload) <= JOIN_LIMIT:
            return [b''.join((b'\x00', payload, b'\xff'))]
        return [b'\x00', payload, b'\xff']

    def send_ping(self, payload: Payload = b'') -> Buffers:
        raise UnsupportedOperation('hixie-%d has no ping frames' % self.draft)

    def send_close(self, code: int = CLOSE_NORMAL, reason: str = '') -> Buffers:
        """Start closing: draft-76 sends its closing frame and waits for the peer's;
        draft-75 has nothing to send, and the I/O layer's TCP close completes it."""
        if self.close_sent is not None:
            raise ConnectionClosed(*self.close_sent)
        self.close_sent = (code, reason)
        if self.draft == 75:
            self.close_received = (CLOSE_NORMAL, '')
            self.state = CLOSED
            return []
        done = self.close_received is not None or self.failure is not None
        self.state = CLOSED if done else CLOSING
        return [CLOSING_FRAME]

    def send_failure_close(self) -> Buffers:
        """Fail the connection: the drafts have no frame for it, the I/O layer closes TCP."""
        self.close_sent = (self.failure.code, self.failure.reason)  # type: ignore[union-attr]
        self.state = CLOSED
        return []


def _too_large(limit: int) -> ProtocolError:
    return ProtocolError('message over the limit of %d bytes' % limit, 1009)
