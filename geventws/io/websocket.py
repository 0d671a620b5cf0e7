"""``WebSocket``: the standard WebSocket API over a protocol object and a gevent socket.

The connection's bytes are read by the hub as they arrive (``transport``), whatever the app
does: pings and the peer's close are answered at once, and messages wait in a bounded queue.
The blocking API and the event API are two views of that queue: ``receive()`` takes the next
message from it, ``run_forever()`` dispatches everything in it to ``onopen``/``onmessage``/
``onerror``/``onclose``. ``onclose`` is dispatched exactly once, after every message that
arrived before the close. Any greenlet may send; frames never interleave.

Closing follows RFC 6455 section 7: answer a close with a close (echoing its code and
reason); after sending ours, keep delivering messages until the peer's close or
``close_timeout``; the server closes TCP first, the client waits for the server to do so.
When messages that came before the peer's close still wait for the app, the close is answered
in its turn, after them, so that the app can still answer them; but ``CLOSE_ANSWER_GRACE``
later at most, so that an app that does not read does not keep the peer waiting (it still
receives those messages).
"""
from __future__ import annotations

import socket as _socket
from collections import deque
from typing import (TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, TypeVar,
                    overload)

import gevent
from gevent.event import Event

from ..errors import ConnectionClosed, ProtocolError, WebSocketError
from ..limits import (CLOSE_ANSWER_GRACE, CLOSE_TIMEOUT, FAIR_MESSAGES, MAX_QUEUE,
                      PING_INTERVAL, PING_TIMEOUT, WRITE_LIMIT)
from ..protocol.events import (CloseEvent, CloseReceived, Compressed, ErrorEvent, Failure,
                               MessageEvent, OpenEvent, Pong)
from ..protocol.frames import CLOSE_ABNORMAL
from ..speedups import Lock
from .base import CLOSED, CLOSING, CONNECTING, OPEN
from .keepalive import Keepalive
from .offload import off_the_hub
from .sockio import open_channel, raw_socket
from .transport import Transport

if TYPE_CHECKING:
    from .._types import AppEvent, BytesLike, Data, Environ, Payload, QueuedEvent
    from .._types import Event as CoreEvent
    from .._types import RawSocket, ReaderItem, Socket
    from ..protocol.connection import Connection
    from ..protocol.hixie import HixieConnection

    #: Answers a server-side opening handshake: ``acceptor(ws, protocols, headers)``.
    Acceptor = Callable[['WebSocket', str | Iterable[str] | None,
                         Iterable[tuple[str, str]] | None], None]

#: The event an ``on*`` callback receives.
_E = TypeVar('_E')


def _has_messages(queue: deque[QueuedEvent]) -> bool:
    return any(type(event) is MessageEvent or type(event) is Compressed for event in queue)


class _Callback(Generic[_E]):
    """An ``on*`` attribute: setting one counts as using the socket (the handler then accepts
    the upgrade and runs the event loop after the app returns)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = '_' + name

    @overload
    def __get__(self, ws: None, owner: type | None = None) -> _Callback[_E]: ...
    @overload
    def __get__(self, ws: WebSocket, owner: type | None = None
                ) -> Callable[[_E], object] | None: ...

    def __get__(self, ws: WebSocket | None, owner: type | None = None
                ) -> _Callback[_E] | Callable[[_E], object] | None:
        return self if ws is None else getattr(ws, self.slot)

    def __set__(self, ws: WebSocket, callback: Callable[[_E], object] | None) -> None:
        setattr(ws, self.slot, callback)
        ws._used = True


class WebSocket(Transport, Keepalive):
    """One WebSocket connection, server or client side, with the browser API.

    Options (the server's come from ``WebSocketHandler.configure``, the client's from
    ``connect``): ``close_timeout``; ``max_queue`` messages waiting for the app before
    reading pauses; keepalive's ``ping_interval`` and ``ping_timeout`` (None: off);
    ``write_limit``, the bytes ``broadcast()`` lets wait for a slow reader."""

    CONNECTING, OPEN, CLOSING, CLOSED = CONNECTING, OPEN, CLOSING, CLOSED

    # Slots: every open connection has one (memory per idle connection); ``__dict__`` keeps
    # attributes of the app's own (``ws.user = ...``) possible. The base class holds the
    # ones every message reads.
    __slots__ = ('_acceptor', 'environ', 'url', 'version', 'close_timeout', 'max_queue',
                 'ping_interval', 'ping_timeout', 'write_limit', 'protocol', 'extensions',
                 'close_code', 'close_reason', 'latency', '_onopen', '_onerror', '_onclose',
                 '_used', '_sock', '_raw', '_hub', '_reader', '_queued_bytes',
                 '_burst', '_over', '_closing', '_ended', '_pings', '_timer', '_ping_at',
                 '_keepalive_payload', '_skipped_at', '__dict__', '__weakref__')

    # (Declared for the type checker; the slots hold them.)
    _sock: Socket                # None until _attach (a client: until it connects)
    _raw: RawSocket | None
    _onopen: Callable[[OpenEvent], object] | None
    _onerror: Callable[[ErrorEvent], object] | None
    _onclose: Callable[[CloseEvent], object] | None

    onopen: _Callback[OpenEvent] = _Callback()
    onmessage: _Callback[MessageEvent] = _Callback()
    onerror: _Callback[ErrorEvent] = _Callback()
    onclose: _Callback[CloseEvent] = _Callback()

    def __init__(self, acceptor: Acceptor | None = None, *,
                 environ: Environ | None = None, url: str | None = None,
                 version: int | str = 13, close_timeout: float = CLOSE_TIMEOUT,
                 max_queue: int = MAX_QUEUE, ping_interval: float | None = PING_INTERVAL,
                 ping_timeout: float | None = PING_TIMEOUT,
                 write_limit: int = WRITE_LIMIT) -> None:
        self._acceptor = acceptor      # server side: answers the handshake, then _attach()
        self.environ = environ
        self.url = url
        self.version = version
        self.close_timeout = close_timeout
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.write_limit = write_limit
        self.protocol = ''
        self.extensions = ''
        self.ready_state = CONNECTING
        self.close_code: int | None = None
        self.close_reason: str | None = None
        #: Seconds the last ping took to be answered (keepalive's or ``ping()``'s).
        self.latency = 0.0
        self._onopen = self._onmessage = self._onerror = self._onclose = None
        self._used = False
        self._sock = None
        self._raw = None             # the OS-level socket under a plain gevent socket
        self._hub: Any = None
        self._channel = None         # the compiled reads and writes, when they apply
        self._conn = None  # type: ignore[assignment]   # until _attach
        self._queue = None           # a deque of events while there are any (_enqueue)
        self._queued_bytes = 0       # of the messages in it
        self._burst = 0              # messages taken in a row without waiting
        self._out = None             # frames not written yet (transport.Outgoing)
        self._waiting = None         # the greenlet waiting for input
        self._reader: Any = None     # the socket's read watcher, or the reader greenlet
        self._paused: Any = False    # reading paused (see Transport._pause_reading)
        self._heard = False          # data came since keepalive's last ping
        self._send_lock = Lock()
        self._read_lock = Lock()
        self._over = False           # _terminate ran
        self._closing: tuple[int, str, bool] | None = None   # waiting for the TCP close
        self._ended: Event | None = None      # set by _terminate, for close()
        #: payload -> (sent at, [Event]) of pings awaiting their pong
        self._pings: dict[bytes, tuple[float, list[Event]]] | None = None
        self._timer: Any = None      # keepalive's or the closing's libev timer
        self._ping_at = 0.0
        self._keepalive_payload: bytes | None = None
        self._skipped_at = 0.0       # when broadcast() last logged a skip

    # -- set-up -----------------------------------------------------------------------------

    def accept(self, protocols: str | Iterable[str] | None = None,
               headers: Iterable[tuple[str, str]] | None = None) -> None:
        """Complete the opening handshake (server side), choosing the first subprotocol of
        the client's list found in ``protocols`` and adding ``headers`` to the answer."""
        self._used = True
        if self.ready_state == CONNECTING:
            self._acceptor(self, protocols, headers)   # (set until used)
            self._acceptor = None   # its closure holds the handshake's request: let it go

    def _attach(self, sock: Socket, conn: Connection | HixieConnection, protocol: str = '',
                extensions: str = '', buffered: BytesLike = b'') -> None:
        """Start the open connection on ``sock`` with protocol object ``conn``; ``buffered``
        is what arrived with the handshake (early frames of a pipelining peer)."""
        self._sock = sock
        self._hub = gevent.get_hub()   # (the thread's: a TLS socket does not say)
        self._raw = raw_socket(sock)
        self._conn = conn
        channel = self._channel = open_channel(sock, self._raw, conn)
        if channel is not None:
            channel.serve(self)
        self.protocol = protocol
        self.extensions = extensions
        extension = getattr(conn, 'extension', None)
        if hasattr(extension, 'offload'):
            extension.offload = off_the_hub  # type: ignore[union-attr]
        self.ready_state = OPEN
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass   # not TCP (a socketpair in tests, a Unix socket)
        self._enqueue(OpenEvent())
        self._start_reading()
        self._start_keepalive()
        if buffered:
            self._handle_data(buffered)

    def _ensure_open(self) -> None:
        self._used = True
        if self.ready_state == CONNECTING:
            self.accept()

    # -- the standard API -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.ready_state == CLOSED

    @property
    def origin(self) -> str | None:
        return (self.environ or {}).get('HTTP_ORIGIN')

    @property
    def path(self) -> str | None:
        return (self.environ or {}).get('PATH_INFO')

    @staticmethod
    def _coerce(message: Payload, binary: bool | None) -> Payload:
        if binary is None:
            return message
        if binary:
            return message.encode('utf-8') if isinstance(message, str) else message
        return message if isinstance(message, str) else bytes(message).decode('utf-8')

    def ping(self, data: Payload = b'') -> Event:
        """Send a ping; the returned ``gevent.event.Event`` is set when its pong arrives."""
        self._ensure_open()
        payload = data.encode('utf-8') if isinstance(data, str) else bytes(data)
        waiter = Event()
        with self._send_lock:
            frame = self._conn.send_ping(payload)   # raises where the protocol has no ping
            # registered before writing: the pong may arrive while we write
            if self._pings is None:
                self._pings = {}
            self._pings.setdefault(payload, (self._hub.loop.now(), []))[1].append(waiter)
            self._write(frame)
        return waiter

    def __iter__(self) -> Iterator[Data]:
        """Messages until the connection is closed. A C iterator over ``receive`` rather
        than a generator: no generator frame per connection, no resumption per message."""
        return iter(self.receive, None)

    def _dispatch_next(self) -> bool:
        """Dispatch the next event; False once the connection is closed (``onclose``
        dispatched) or it was already."""
        event = self._next_event()
        if event is None:
            return False
        self._dispatch(event)
        return type(event) is not CloseEvent

    def _raise_if_closed(self) -> None:
        """``ConnectionClosed`` once nothing more can be sent: our close went out, or the
        connection is over."""
        sent = getattr(self._conn, 'close_sent', None)
        if sent is not None:
            raise ConnectionClosed(*sent)
        if self._over:
            raise ConnectionClosed(self.close_code or CLOSE_ABNORMAL, self.close_reason or '')

    def close(self, code: int = 1000, reason: str = '', *,
              message: str | bytes | None = None) -> None:
        """Start the closing handshake and wait (up to ``close_timeout``) for it to finish.
        Messages that arrive meanwhile are still delivered, before ``onclose``.
        ``message`` is ``reason`` as gevent-websocket spells it (``close(1000, message=...)``);
        bytes are taken as UTF-8, as it sends them."""
        if message is not None:
            reason = (message.decode('utf-8', 'replace') if isinstance(message, bytes)
                      else message)
        self._ensure_open()
        if self._over:
            return
        conn = self._conn
        failure = conn.failure   # the peer broke the protocol: its close code wins
        try:
            with self._send_lock:
                if conn.close_sent is None:
                    self._write(conn.send_failure_close() if failure is not None
                                else conn.send_close(code, reason))
        except ConnectionClosed:
            return
        if failure is not None:
            self._finish_closing(CLOSE_ABNORMAL, failure.reason, False)
        elif conn.close_received is not None:   # ours answers the peer's: done
            self._finish_closing(*conn.close_received, True)
        elif not self._over:
            self.ready_state = CLOSING
            self._arm(self.close_timeout, self._close_timed_out)
        ended = self._ended
        if ended is None:
            ended = self._ended = Event()
        if not self._over:
            ended.wait()

    def _close_timed_out(self) -> None:
        self._timer = None
        self._terminate(CLOSE_ABNORMAL, 'closing handshake timed out', False)

    # -- what the reader brings -------------------------------------------------------------

    def _handle_items(self, items: list[ReaderItem]) -> None:
        """The consequences of a ``Channel`` read: the compiled reader's ``items``."""
        # (a Channel serves a Connection only)
        self._handle_events(self._conn.events_for(items, False))  # type: ignore[union-attr]

    def _handle_data(self, data: BytesLike) -> None:
        self._handle_events(self._conn.receive_data(data, False))

    def _handle_events(self, events: list[CoreEvent]) -> None:
        """What a read brought, as it comes (in the hub, or a TLS connection's reader):
        pongs owed and the answers to the peer's close go out now; messages wait for the
        app, and reading pauses while too many wait."""
        self._heard = True
        conn = self._conn
        owed = conn.data_to_send()
        if owed:
            self._push([owed])
        if events:
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            event: Any   # (``kind is ...`` tells the events apart; the checker does not follow)
            for event in events:
                kind = type(event)
                if kind is MessageEvent:
                    queue.append(event)
                    self._queued_bytes += len(event.data)
                elif kind is Compressed:
                    queue.append(event)
                    self._queued_bytes += len(event.payload)
                elif kind is Pong:
                    self._pong_received(event.payload)
                elif kind is CloseReceived or kind is Failure:
                    self._peer_ended(event, queue)
            if (len(queue) > self.max_queue or
                    self._queued_bytes > conn.max_message_size) and not self._over:
                self._pause_reading()
            self._wake_soon()

    def _peer_ended(self, event: CloseReceived | Failure, queue: deque[QueuedEvent]) -> None:
        """The peer's close frame, or its breaking the protocol."""
        failed = type(event) is Failure
        if self._conn.close_sent is not None:   # after our close: the handshake is over
            if failed:
                queue.append(ErrorEvent(event.error))  # type: ignore[union-attr]
                self._finish_closing(CLOSE_ABNORMAL, event.error.reason,  # type: ignore
                                     False)
            else:
                self._finish_closing(event.code, event.reason, True)  # type: ignore
            return
        self.ready_state = CLOSING
        queue.append(event)
        if _has_messages(queue):
            # The app takes the messages before the close first, and can still answer
            # them: the answer waits for its turn, or the grace period.
            self._arm(CLOSE_ANSWER_GRACE, self._grace_over)
        else:
            self._answer_now()

    def _grace_over(self) -> None:
        self._timer = None
        self._answer_now()

    def _answer_now(self) -> None:
        """Answer the peer's close (or failure) waiting in the queue, without waiting for
        the app to take what came before it."""
        ending = [event for event in self._queue or ()
                  if type(event) is CloseReceived or type(event) is Failure]
        if ending and type(ending[0]) is CloseReceived:
            self._answer_close(ending[0])
        elif ending:
            self._fail_connection(ending[0].error)  # type: ignore[union-attr]

    def _answer_close(self, event: CloseReceived) -> None:
        """Echo the peer's close code and reason (RFC 6455 5.5.1)."""
        conn = self._conn
        if conn.close_sent is None:
            self._push(conn.send_close(event.code, event.reason))
        self._finish_closing(event.code, event.reason, True)

    def _fail_connection(self, error: ProtocolError) -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 7.1.7): send the close with the error's
        code, then wait for the peer's TCP close."""
        conn = self._conn
        if conn.close_sent is None:
            self._push(conn.send_failure_close())
        self._finish_closing(CLOSE_ABNORMAL, error.reason, False)

    def _finish_closing(self, code: int, reason: str, was_clean: bool) -> None:
        """After the close frames: the server drops TCP at once when the handshake is
        complete (RFC 6455 7.1.1); otherwise the peer's TCP close is awaited (reading on,
        nothing more delivered), at most ``close_timeout``, so that our close frame is not
        lost to a reset."""
        if self._over or self._closing is not None:
            return
        if self._out is not None:
            self._flush()   # our close frame, corked behind the app's last answers
        if was_clean and not self._conn.client and self._out is None:
            self._terminate(code, reason, was_clean)
            return
        self._closing = (code, reason, was_clean)
        self.ready_state = CLOSING
        self._arm(self.close_timeout, self._closing_timed_out)
        if self._out is None:
            self._written()
        if self._paused and not self._over:
            self._resume_reading()

    def _written(self) -> None:
        """Everything was written. While closing: a server whose handshake is complete drops
        TCP now that its close frame is out; a failed connection says so with its FIN too,
        nothing more will come from us (RFC 6455 7.1.7)."""
        closing = self._closing
        if closing is None:
            return
        if closing[2] and not self._conn.client:
            self._terminate(*closing)
        elif not closing[2]:
            try:
                self._sock.shutdown(_socket.SHUT_WR)
            except OSError:
                pass

    def _closing_timed_out(self) -> None:
        self._timer = None
        self._terminate(*self._closing)  # type: ignore[misc]   # set with the timer

    # -- what the app takes -----------------------------------------------------------------

    def _next_event(self) -> AppEvent | None:
        """The next event for the app; the peer's close is answered when its turn comes."""
        while True:
            queue = self._queue
            if not queue:
                if self._over:
                    return None
                with self._read_lock:
                    if not self._queue and not self._over:
                        handed = self._wait_input()
                        if handed is not None:   # a lone message, straight from the reader
                            self._burst = 0
                            return handed  # type: ignore[return-value]
                self._burst = 0
                continue
            event: Any = queue.popleft()   # (as in _handle_events)
            if not queue:   # an idle connection keeps no deque (about 600 bytes)
                self._queue = None
            kind = type(event)
            if kind is MessageEvent:   # (the common case, inline: _taken for the rest)
                self._queued_bytes -= len(event.data)
                burst = self._burst = self._burst + 1
                if burst >= FAIR_MESSAGES or (self._paused and
                                              len(queue) <= self.max_queue >> 2):
                    return self._taken(event, queue)
                return event
            if kind is Compressed:
                self._queued_bytes -= len(event.payload)
                self._burst += 1
                return self._taken(event, queue)
            if kind is CloseReceived:
                self._answer_close(event)
            elif kind is Failure:
                self._fail_connection(event.error)
                return ErrorEvent(event.error)
            else:
                return event

    def _taken(self, event: MessageEvent | Compressed, queue: deque[QueuedEvent]
               ) -> AppEvent | None:
        """A message the app takes (its bytes and turn counted): reading resumes when few
        are left; after ``FAIR_MESSAGES`` in a row the other connections get their turn."""
        if self._paused and len(queue) <= self.max_queue >> 2 and not self._closing:
            self._resume_reading()
        if self._burst >= FAIR_MESSAGES:
            self._burst = 0
            gevent.sleep(0)
        if type(event) is Compressed:
            try:
                return self._conn.decompress(event)  # type: ignore[union-attr]
            except ProtocolError as exc:
                self._drop_messages()
                self._fail_connection(exc)
                return ErrorEvent(exc)
        return event  # type: ignore[return-value]

    def _drop_messages(self) -> None:
        """The stream broke at a message the app takes: what came after it is not read."""
        queue = self._queue
        if queue:
            kept = [event for event in queue
                    if type(event) is not MessageEvent and type(event) is not Compressed]
            self._queue = deque(kept) if kept else None
        self._queued_bytes = 0

    # -- ending -----------------------------------------------------------------------------

    def _terminate(self, code: int, reason: str, was_clean: bool) -> None:
        """The connection is over: close TCP and queue the one CloseEvent."""
        if self._over:
            return
        self._over = True
        self.ready_state = CLOSED
        self.close_code = code
        self.close_reason = reason
        self._disarm()
        self._stop_io()
        channel = self._channel
        if channel is not None:
            self._channel = None   # its file descriptor is closed, and may be reused
            channel.serve(None)
        sock = self._sock
        if sock is not None:   # None: a client that could not connect
            if getattr(sock, '_io_refs', 1):
                # shutdown() sends the FIN now: close() alone is deferred while a file
                # object (pywsgi's rfile, when pywsgi read the request) still refers to the
                # socket. With none, close() sends it, and one system call is saved.
                try:
                    sock.shutdown(_socket.SHUT_RDWR)
                except OSError:
                    pass
            try:
                sock.close()
            except OSError:
                pass
        self._enqueue(CloseEvent(code, reason, was_clean))
        if self._ended is not None:
            self._ended.set()
        self._wake_soon()

    def _enqueue(self, event: QueuedEvent) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(event)

    def _dispatch(self, event: AppEvent) -> None:
        callback = getattr(self, '_on' + event.type)
        if callback is not None:
            callback(event)

    def _serve(self) -> None:
        """Run by the handler after the app returned: accept if the app only set callbacks,
        run the event loop if it did, otherwise close normally; then dispatch what is left
        (``onclose`` included) so that every callback fires exactly once."""
        self._ensure_open()
        if self.ready_state != CLOSED and not self._has_callbacks():
            self.close()
        self.run_forever()

    def _has_callbacks(self) -> bool:
        return any((self._onopen, self._onmessage, self._onerror, self._onclose))

    def _abort(self, code: int = 1011, reason: str = 'internal error') -> None:
        """The app failed: close with 1011 if the connection is still open; ``onclose``
        still fires (once), and the messages nobody will read are dropped."""
        if self.ready_state in (OPEN, CLOSING):
            try:
                self.close(code, reason)
            except WebSocketError:
                pass
        queue = self._queue
        while queue:
            event = queue.popleft()
            if type(event) is CloseEvent:
                self._dispatch(event)
