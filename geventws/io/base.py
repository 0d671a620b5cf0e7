"""``WebSocketBase``: the three methods of ``WebSocket`` that run for every message
(``receive()``, ``send()``, ``run_forever()``) and the attributes they read.

They sit in a base class of their own so that a compiled twin can take their place without a
Python frame per message: with the speedups, ``geventws.speedups.WebSocketBase`` is
``geventws.io._channel.WebSocketBase`` (``ext/geventws/io/_channel.pyx``), which keeps these
attributes as C fields, serves the common case of a plain TCP connection itself and hands
everything else to the methods below. ``WebSocket`` supplies what they call:
``_ensure_open``, ``_next_event``, ``_dispatch``, ``_dispatch_next``, ``_coerce``,
``_write`` and ``_wait_writable``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Deque, Iterable, NoReturn

from ..limits import CORK_LIMIT
from ..protocol.events import CloseEvent, MessageEvent, OpenEvent

if TYPE_CHECKING:
    from gevent.event import Event

    from .._types import (AppEvent, Buffers, BytesLike, Data, Environ, Payload, QueuedEvent,
                          RawSocket, Socket)
    from ..protocol.connection import Connection
    from ..protocol.hixie import HixieConnection
    from .lock import Lock
    from .transport import Outgoing

#: ``ready_state`` values, as in the browser API.
CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3

#: What ``send()`` sends as one message rather than as an iterable of fragments.
NOT_FRAGMENTED = (str, bytes, bytearray, memoryview)


def input_waits(queue: Deque[QueuedEvent]) -> bool:
    """Whether received events wait in ``queue`` (a non-empty deque), not just the
    ``OpenEvent`` that every connection starts with: answers are then corked
    (``WebSocket._write``)."""
    return len(queue) > 1 or type(queue[0]) is not OpenEvent


class WebSocketBase:
    """The per-message part of ``WebSocket`` (see the module docstring)."""

    __slots__ = ('ready_state', '_queue', '_channel', '_out', '_conn', '_onmessage',
                 '_read_lock', '_send_lock', '_waiting', '_heard', '_paused')

    # (Declared for the type checker; the slots above hold them.)
    ready_state: int
    _queue: Deque[QueuedEvent] | None
    _channel: Any               # a geventws.io._channel.Channel, or None
    _out: Outgoing | None       # frames not written yet
    _waiting: Any               # the greenlet waiting for input, or None
    _heard: bool                # data came since keepalive's last ping
    _paused: Any                # reading paused: True, transport.STOPPED or an Event
    #: The protocol object; None only before ``WebSocket._attach`` (whose callers check).
    _conn: Connection | HixieConnection
    _onmessage: Callable[[MessageEvent], object] | None
    _read_lock: Lock
    _send_lock: Lock

    if TYPE_CHECKING:
        # What WebSocket (with its Transport and Keepalive) holds and supplies, for the
        # methods here and in those two classes.
        OPEN: int
        close_timeout: float
        max_queue: int
        ping_interval: float | None
        ping_timeout: float | None
        write_limit: int
        close_code: int | None
        close_reason: str | None
        latency: float
        environ: Environ | None
        url: str | None
        _acceptor: Any
        _sock: Socket
        _raw: RawSocket | None
        _hub: Any
        _reader: Any
        _over: bool
        _closing: tuple[int, str, bool] | None
        _pings: dict[bytes, tuple[float, list[Event]]] | None
        _timer: Any
        _ping_at: float
        _keepalive_payload: bytes | None
        _skipped_at: float

        def _ensure_open(self) -> None: ...
        def _next_event(self) -> AppEvent | None: ...
        def _dispatch(self, event: AppEvent) -> None: ...
        def _dispatch_next(self) -> bool: ...
        def _write(self, buffers: Buffers) -> None: ...
        def _wait_writable(self) -> None: ...
        def _push(self, buffers: Buffers, raising: bool = False) -> None: ...
        def _handle_data(self, data: BytesLike) -> None: ...
        def _terminate(self, code: int, reason: str, was_clean: bool) -> None: ...
        def _written(self) -> None: ...
        def _lose_connection(self, exc: OSError) -> NoReturn: ...
        def _raise_if_closed(self) -> None: ...
        def _disarm(self) -> None: ...
        def accept(self, protocols: str | Iterable[str] | None = None,
                   headers: Iterable[tuple[str, str]] | None = None) -> None: ...

        @staticmethod
        def _coerce(message: Payload, binary: bool | None) -> Payload: ...

    def send(self, message: Payload | Iterable[Payload], binary: bool | None = None) -> None:
        """Send ``str`` as a text message and bytes-like as binary; an iterable of fragments
        is sent as one fragmented message. ``binary`` forces the type, as in
        gevent-websocket. Raises ``ConnectionClosed`` once the connection is closing."""
        if self.ready_state == CONNECTING:   # one comparison per message, not a call
            self._ensure_open()
        if isinstance(message, NOT_FRAGMENTED):
            if binary is not None:
                message = self._coerce(message, binary)
            with self._send_lock:
                self._write(self._conn.send_message(message))
            out = self._out   # (corked answers do not wait; the frame is queued whole)
            if out is not None and (out.writing or out.size > CORK_LIMIT):
                self._wait_writable()
            return
        # A closed connection says so (ConnectionClosed) whatever the argument, None
        # included: ``ws.send(ws.receive())`` loops written for gevent-websocket end on it.
        self._raise_if_closed()
        if message is None:
            raise TypeError('send() takes str, bytes-like or an iterable of them, not None')
        with self._send_lock:
            pending = None
            for fragment in message:
                if pending is not None:
                    self._write(self._conn.send_message(pending, fin=False))
                    self._wait_writable()
                pending = self._coerce(fragment, binary)
            if pending is not None:
                self._write(self._conn.send_message(pending))
        self._wait_writable()

    def receive(self) -> Data | None:
        """The next message (``str`` or ``bytes``), or ``None`` once the connection is closed."""
        if self.ready_state == CONNECTING:
            self._ensure_open()
        while True:
            event = self._next_event()
            if event is None:
                return None
            if type(event) is MessageEvent:
                return event.data
            self._dispatch(event)
            if type(event) is CloseEvent:
                return None

    def run_forever(self) -> None:
        """Dispatch events to the ``on*`` callbacks until the connection is closed."""
        self._ensure_open()
        while self._dispatch_next():
            pass
