"""``WebSocketBase``: the three methods of ``WebSocket`` that run for every message
(``receive()``, ``send()``, ``run_forever()``) and the attributes they read.

They sit in a base class of their own so that a compiled twin can take their place without a
Python frame per message: with the speedups, ``geventws.speedups.WebSocketBase`` is
``geventws.io._channel.WebSocketBase`` (``ext/geventws/io/_channel.pyx``), which keeps these
attributes as C fields, serves the common case of a plain TCP connection itself and hands
everything else to the methods below. ``WebSocket`` supplies what they call:
``_ensure_open``, ``_next_event``, ``_dispatch``, ``_dispatch_next``, ``_coerce`` and
``_write``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Deque, Iterable

from ..protocol.events import CloseEvent, MessageEvent, OpenEvent

if TYPE_CHECKING:
    from .._types import AppEvent, Buffers, Data, Payload, QueuedEvent
    from ..protocol.connection import Connection
    from ..protocol.hixie import HixieConnection
    from .lock import Lock

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

    __slots__ = ('ready_state', '_queue', '_channel', '_corked', '_conn', '_onmessage',
                 '_read_lock', '_send_lock')

    # (Declared for the type checker; the slots above hold them.)
    ready_state: int
    _queue: Deque[QueuedEvent] | None
    _channel: Any               # a geventws.io._channel.Channel, or None
    _corked: Buffers | None
    #: The protocol object; None only before ``WebSocket._attach`` (whose callers check).
    _conn: Connection | HixieConnection
    _onmessage: Callable[[MessageEvent], object] | None
    _read_lock: Lock
    _send_lock: Lock

    if TYPE_CHECKING:   # what WebSocket supplies
        def _ensure_open(self) -> None: ...
        def _next_event(self) -> AppEvent | None: ...
        def _dispatch(self, event: AppEvent) -> None: ...
        def _dispatch_next(self) -> bool: ...
        def _write(self, buffers: Buffers) -> None: ...

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
            return
        with self._send_lock:
            pending = None
            for fragment in message:
                if pending is not None:
                    self._write(self._conn.send_message(pending, fin=False))
                pending = self._coerce(fragment, binary)
            if pending is not None:
                self._write(self._conn.send_message(pending))

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
