"""One RFC 6455 connection, server or client role, sans I/O: bytes in, events and bytes out.

``receive_data(data)`` returns events (``MessageEvent``, ``Ping``, ``Pong``, ``CloseReceived``,
``Failure``) and queues whatever the protocol owes the peer (pongs, the close echo, the close
that fails the connection) for ``data_to_send()``. The ``send_*`` methods return the frames to
write as a list of buffers. Nothing here touches a socket, a clock or a greenlet.

Extensions plug in through a small interface (see ``Extension``): the reader lets RSV1 through
on the first frame of a data message when one is active, and such messages are handed whole
to ``extension.decode`` under the same size limit.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Hashable

from ..errors import ConnectionClosed, ProtocolError
from ..limits import MAX_MESSAGE_SIZE
from .. import speedups
from .events import CloseReceived, Compressed, Failure, MessageEvent, Ping, Pong
from .frames import (OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG,
                     OP_TEXT, encode_close_payload, invalid_utf8, parse_close_payload)

if TYPE_CHECKING:
    from .._types import Buffers, BytesLike, Event, Payload, ReaderItem

OPEN, CLOSING, CLOSED = 'OPEN', 'CLOSING', 'CLOSED'


class Extension:
    """What the core asks of an extension such as permessage-deflate (RFC 7692).

    ``decode`` gets a whole message whose first frame had RSV1 set and returns its payload,
    raising ``ProtocolError`` (1009 past ``max_size``, 1007 for corrupt data). ``encode`` gets
    one outgoing fragment and returns ``(payload, rsv1)``; RSV1 is used on a message's first
    frame only; ``offload=False`` asks it to do its work here and now. ``frame_key()`` says
    when its output for a message is the same on every connection with the same key (no
    state carried from one message to the next), else None.
    """

    name = ''

    def decode(self, payload: bytes, max_size: int) -> bytes:
        raise NotImplementedError

    def encode(self, payload: BytesLike, fin: bool,
               offload: bool = True) -> tuple[BytesLike, bool]:
        raise NotImplementedError

    def frame_key(self) -> Hashable | None:
        return None


class Connection:
    """The state of one WebSocket connection after its opening handshake."""

    #: Pings and pongs exist (RFC 6455 5.5.2-5.5.3), so keepalive can work.
    can_ping = True

    # Slots: every open connection has one (memory per idle connection).
    __slots__ = ('client', 'max_message_size', 'extension', 'state', 'close_sent',
                 'close_received', 'failure', 'reader', '_owed', '_fragment_opcode')

    def __init__(self, client: bool = False, max_message_size: int = MAX_MESSAGE_SIZE,
                 extension: Extension | None = None) -> None:
        self.client = client
        self.max_message_size = max_message_size
        self.extension = extension
        self.state = OPEN
        self.close_sent: tuple[int, str] | None = None      # of the close frame we sent
        self.close_received: tuple[int, str] | None = None  # of the peer's close frame
        self.failure: ProtocolError | None = None  # the error that failed the connection
        #: Parses the incoming stream; ``receive_data`` feeds it, or the I/O layer does and
        #: hands the items to ``events_for`` (geventws.io._channel reads into it directly).
        self.reader = speedups.MessageReader(max_message_size, not client, extension is not None)
        self._owed: Buffers | None = None   # frames owed to the peer (a list while there are any)
        self._fragment_opcode = 0     # opcode of the message we are sending in fragments

    # -- incoming ---------------------------------------------------------------------------

    def receive_data(self, data: BytesLike, decompress: bool = True) -> list[Event]:
        """Events for ``data``, in order. After a close frame or a failure, nothing more.
        ``decompress=False``: a compressed message comes as ``Compressed``, for
        ``decompress()`` later (the I/O layer inflates in the app's greenlet, not the hub)."""
        if self.close_received is not None or self.failure is not None:
            return []
        return self.events_for(self.reader.feed(data), decompress)

    def events_for(self, items: list[ReaderItem], decompress: bool = True) -> list[Event]:
        """Events for what ``reader.feed`` returned: whole messages pass as they are;
        control frames, compressed messages and a broken stream are dealt with here."""
        if self.close_received is not None or self.failure is not None:
            return []
        for item in items:
            if type(item) is not MessageEvent:
                break
        else:
            # the common case: whole messages only, nothing to decide
            return items  # type: ignore[return-value]   # MessageEvents only
        events: list[Event] = []
        for item in items:
            if type(item) is MessageEvent:
                events.append(item)
                continue
            try:
                if isinstance(item, ProtocolError):
                    raise item
                opcode, payload = item  # type: ignore[misc]   # a tuple
                event = (self._control_or_decoded(opcode, payload) if decompress or opcode >= 8
                         else Compressed(opcode, payload))
            except ProtocolError as exc:
                self._fail(exc)
                events.append(Failure(exc))
                break
            events.append(event)
            if type(event) is CloseReceived:
                break
        return events

    def _control_or_decoded(self, opcode: int, payload: bytes) -> Event:
        if opcode == OP_PING:
            if self.close_sent is None:
                if self._owed is None:
                    self._owed = []
                self._owed.extend(self._frame(OP_PONG, payload))
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        if opcode == OP_CLOSE:
            return self._close_received(payload)
        return self._decoded(opcode, payload)

    def _decoded(self, opcode: int, payload: bytes) -> MessageEvent:
        # A data message here is a compressed one: the reader lets RSV1 through only when
        # there is an extension.
        data = self.extension.decode(payload, self.max_message_size)  # type: ignore[union-attr]
        if opcode == OP_TEXT:
            try:
                return MessageEvent(data.decode('utf-8'))
            except UnicodeDecodeError:
                raise invalid_utf8() from None
        return MessageEvent(data)

    def decompress(self, event: Compressed) -> MessageEvent:
        """The message of a ``Compressed`` event (``events_for(..., decompress=False)``), in
        the order they came; a ``ProtocolError`` (1007, 1009) fails the connection."""
        try:
            return self._decoded(event.opcode, event.payload)
        except ProtocolError as exc:
            self._fail(exc)
            raise

    def _close_received(self, payload: bytes) -> CloseReceived:
        """The peer's close frame. When it starts the closing handshake, the answer is left
        to the I/O layer (``send_close(event.code, event.reason)``): RFC 6455 5.5.1 lets an
        endpoint send what it still owes first, so messages that came before the close can be
        answered."""
        code, reason = parse_close_payload(payload)
        self.close_received = (code, reason)
        self.state = CLOSED if self.close_sent is not None else CLOSING
        return CloseReceived(code, reason)

    def _fail(self, error: ProtocolError) -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 7.1.7): read no more. The close frame
        (``send_failure_close()``) is the I/O layer's to send, after the messages that came
        before the error when the app has yet to take them, so that their answers still go
        out (Autobahn 3.2, 5.15 expect the echo of the message before the error, then the
        close).

        The error is kept, and given to the app, without its traceback: the parser's frames
        in it (and their callers', which hold the connection) would make a reference cycle
        that keeps the whole connection until the garbage collector runs."""
        self.failure = error.with_traceback(None)
        self.state = CLOSED if self.close_sent is not None else CLOSING

    def send_failure_close(self) -> Buffers:
        """The close frame that fails the connection: the error's code, and its reason when
        it fits in a control frame (RFC 6455 5.5)."""
        error: ProtocolError = self.failure  # type: ignore[assignment]   # called once failed
        reason = error.reason if len(error.reason.encode()) <= 123 else ''
        return self.send_close(error.code, reason)

    def data_to_send(self) -> bytes:
        """Bytes the protocol owes the peer (pongs, close frames), and forgets them."""
        owed = self._owed
        if not owed:
            return b''
        self._owed = None
        return b''.join(owed)

    # -- outgoing ---------------------------------------------------------------------------

    def frame_key(self) -> Hashable | None:
        """A key shared by the connections whose frames of a whole message are the same as
        this one's, byte for byte (``broadcast()`` builds them once); None when they are its
        own: a client's (masked with a fresh key), or an extension's with state."""
        if self.client:
            return None
        if self.extension is None:
            return 'rfc6455'
        return self.extension.frame_key()

    def send_message(self, data: Payload, fin: bool = True, offload: bool = True) -> Buffers:
        """Frames for a text (``str``) or binary (bytes-like) message or fragment of one;
        ``offload=False``: an extension does its work here, whatever the size."""
        if self.close_sent is not None:
            raise ConnectionClosed(*self.close_sent)
        payload: BytesLike
        if isinstance(data, str):
            opcode, payload = OP_TEXT, data.encode('utf-8')
        else:
            opcode, payload = OP_BINARY, data
        rsv1 = False
        if self.extension is not None:
            payload, rsv1 = self.extension.encode(payload, fin, offload)
        if self._fragment_opcode:
            opcode, rsv1 = OP_CONTINUATION, False
        self._fragment_opcode = 0 if fin else (self._fragment_opcode or opcode)
        return self._frame(opcode, payload, fin, rsv1)

    def send_ping(self, payload: Payload = b'') -> Buffers:
        return self._control(OP_PING, payload)

    def send_pong(self, payload: Payload = b'') -> Buffers:
        return self._control(OP_PONG, payload)

    def send_close(self, code: int = 1000, reason: str = '') -> Buffers:
        """Start the closing handshake (RFC 6455 7.1.2); the connection is CLOSING after it."""
        payload = encode_close_payload(code, reason)
        if self.close_sent is not None:
            raise ConnectionClosed(*self.close_sent)
        self.close_sent = (code, reason)
        done = self.close_received is not None or self.failure is not None
        self.state = CLOSED if done else CLOSING
        return self._frame(OP_CLOSE, payload)

    def _control(self, opcode: int, payload: Payload) -> Buffers:
        if self.close_sent is not None:
            raise ConnectionClosed(*self.close_sent)
        payload = payload.encode('utf-8') if isinstance(payload, str) else bytes(payload)
        if len(payload) > 125:
            raise ValueError('control frame payload is %d bytes; at most 125' % len(payload))
        return self._frame(opcode, payload)

    def _frame(self, opcode: int, payload: BytesLike, fin: bool = True,
               rsv1: bool = False) -> Buffers:
        """One frame as buffers to write: masked with a fresh key per frame from a client
        (RFC 6455 5.3, ``os.urandom``: the key must not be predictable), and a large server
        payload left apart from its header rather than copied behind it."""
        return speedups.frame(opcode, payload, fin, rsv1, os.urandom(4) if self.client else None)
