"""``WebSocket``: the standard WebSocket API over a protocol object and a gevent socket.

One greenlet reads at a time (the one calling ``receive()``, iterating, or running the event
loop); any greenlet may send, under a lock, so frames never interleave. The blocking API and
the event API are two views of one queue of events: ``receive()`` takes the next message from
it, ``run_forever()`` dispatches everything in it to ``onopen``/``onmessage``/``onerror``/
``onclose``. ``onclose`` is dispatched exactly once, after every message that arrived before
the close.

Closing follows RFC 6455 section 7: answer a close with a close; after sending ours, read
(still delivering messages) until the peer's close or ``close_timeout``; the server closes TCP
first, the client waits for the server to do so.
"""
from __future__ import annotations

import socket as _socket
from collections import deque
from typing import (TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, NoReturn,
                    TypeVar, overload)

import gevent
from gevent.event import Event
from gevent.monkey import get_original

from ..errors import ConnectionClosed, WebSocketError
from ..limits import CLOSE_TIMEOUT, READ_SIZE, SMALL_READ
from ..protocol.events import (CloseEvent, CloseReceived, ErrorEvent, Failure, MessageEvent,
                               OpenEvent, Pong)
from ..protocol.frames import CLOSE_ABNORMAL
from ..speedups import Lock, WebSocketBase
from .base import CLOSED, CLOSING, CONNECTING, OPEN, input_waits
from .sockio import open_channel, raw_socket, recv_into, send_all, send_some

if TYPE_CHECKING:
    from .._types import AppEvent, Buffers, BytesLike, Data, Environ, Payload, QueuedEvent
    from .._types import Event as CoreEvent
    from .._types import RawSocket, ReaderItem, Socket
    from ..errors import ProtocolError
    from ..protocol.connection import Connection
    from ..protocol.hixie import HixieConnection

    #: Answers a server-side opening handshake: ``acceptor(ws, protocols, headers)``.
    Acceptor = Callable[['WebSocket', str | Iterable[str] | None,
                         Iterable[tuple[str, str]] | None], None]

_T = TypeVar('_T')
#: The event an ``on*`` callback receives.
_E = TypeVar('_E')


def _off_the_hub(func: Callable[..., _T], *args: Any) -> _T:
    """Run CPU-heavy extension work (zlib on a large message, which releases the GIL) in
    the hub's threadpool, so that the other connections are served meanwhile."""
    return gevent.get_hub().threadpool.apply(func, args)


_per_thread = get_original('threading', 'local')()   # per OS thread even when monkey-patched


def _read_buffer() -> memoryview:
    """This thread's read buffer (a memoryview), shared by every connection its hub serves:
    one greenlet runs at a time and parses what it read before it can yield."""
    try:
        return _per_thread.read_buffer
    except AttributeError:
        _per_thread.read_buffer = buffer = memoryview(bytearray(READ_SIZE))
        return buffer


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


class WebSocket(WebSocketBase):
    """One WebSocket connection, server or client side, with the browser API."""

    CONNECTING, OPEN, CLOSING, CLOSED = CONNECTING, OPEN, CLOSING, CLOSED

    # Slots: every open connection has one (memory per idle connection); ``__dict__`` keeps
    # attributes of the app's own (``ws.user = ...``) possible. The base class holds the
    # ones every message reads.
    __slots__ = ('_acceptor', 'environ', 'url', 'version', 'close_timeout', 'protocol',
                 'extensions', 'close_code', 'close_reason', '_onopen', '_onerror',
                 '_onclose', '_used', '_sock', '_raw', '_drained', '_over', '_pings',
                 '__dict__', '__weakref__')

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
                 version: int | str = 13, close_timeout: float = CLOSE_TIMEOUT) -> None:
        self._acceptor = acceptor      # server side: answers the handshake, then _attach()
        self.environ = environ
        self.url = url
        self.version = version
        self.close_timeout = close_timeout
        self.protocol = ''
        self.extensions = ''
        self.ready_state = CONNECTING
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._onopen = self._onmessage = self._onerror = self._onclose = None
        self._used = False
        self._sock = None
        self._raw = None             # the OS-level socket under a plain gevent socket
        self._channel = None         # the compiled reads and writes, when they apply
        self._drained = False        # the last read was short: wait before the next
        self._corked = None          # frames held back while more input waits (_write)
        self._conn = None  # type: ignore[assignment]   # until _attach
        self._queue = None           # a deque of events while there are any (_enqueue)
        self._send_lock = Lock()
        self._read_lock = Lock()
        self._over = False           # _terminate ran
        self._pings: dict[bytes, list[Event]] | None = None   # payload -> pings' pong waiters

    # -- set-up -----------------------------------------------------------------------------

    def accept(self, protocols: str | Iterable[str] | None = None,
               headers: Iterable[tuple[str, str]] | None = None) -> None:
        """Complete the opening handshake (server side), choosing the first subprotocol of
        the client's list found in ``protocols`` and adding ``headers`` to the answer."""
        self._used = True
        if self.ready_state == CONNECTING:
            self._acceptor(self, protocols, headers)  # type: ignore[misc]   # set until used
            self._acceptor = None   # its closure holds the handshake's request: let it go

    def _attach(self, sock: Socket, conn: Connection | HixieConnection, protocol: str = '',
                extensions: str = '', buffered: BytesLike = b'') -> None:
        """Start the open connection on ``sock`` with protocol object ``conn``; ``buffered``
        is what arrived with the handshake (early frames of a pipelining peer)."""
        self._sock = sock
        self._raw = raw_socket(sock)
        self._conn = conn
        self._channel = open_channel(sock, self._raw, conn,
                                     _read_buffer().obj)  # type: ignore[arg-type]   # bytearray
        self.protocol = protocol
        self.extensions = extensions
        extension = getattr(conn, 'extension', None)
        if hasattr(extension, 'offload'):
            extension.offload = _off_the_hub  # type: ignore[union-attr]
        self.ready_state = OPEN
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass   # not TCP (a socketpair in tests, a Unix socket)
        self._enqueue(OpenEvent())
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
            self._pings.setdefault(payload, []).append(waiter)
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

    def close(self, code: int = 1000, reason: str = '') -> None:
        """Start the closing handshake and wait (up to ``close_timeout``) for it to finish.
        Messages that arrive meanwhile are still delivered, before ``onclose``."""
        self._ensure_open()
        if self.ready_state == CLOSED:
            return
        failure = self._conn.failure   # the peer broke the protocol: its close code wins
        try:
            with self._send_lock:
                if self._conn.close_sent is None:
                    self._write(self._conn.send_failure_close() if failure is not None
                                else self._conn.send_close(code, reason))
        except ConnectionClosed:
            return
        if failure is not None:
            self._finish_closing(CLOSE_ABNORMAL, failure.reason, False)
            return
        received = self._conn.close_received
        if received is not None:     # ours answers the peer's close: the handshake is done
            self._finish_closing(received[0], received[1], True)
            return
        self.ready_state = CLOSING
        with gevent.Timeout(self.close_timeout, False):
            with self._read_lock:
                while self.ready_state != CLOSED:
                    self._read()
        if self.ready_state != CLOSED:
            self._terminate(CLOSE_ABNORMAL, 'closing handshake timed out', False)

    # -- reading ----------------------------------------------------------------------------

    def _next_event(self) -> AppEvent | None:
        """The next event for the app; the peer's close is answered when its turn comes."""
        while True:
            while not self._queue:
                if self.ready_state == CLOSED:
                    return None
                with self._read_lock:
                    if not self._queue and self.ready_state != CLOSED:
                        self._read()
            queue = self._queue
            # (Any: ``kind is ...`` below tells the events apart, which the type checker
            # does not follow.)
            event: Any = queue.popleft()
            if not queue:   # an idle connection keeps no deque (about 600 bytes)
                self._queue = None
            kind = type(event)
            if kind is CloseReceived:
                self._answer_close(event)
            elif kind is Failure:
                self._fail_connection(event.error)
                return ErrorEvent(event.error)
            else:
                return event

    def _answer_close(self, event: CloseReceived) -> None:
        """Echo the peer's close code (RFC 6455 5.5.1), now that every message received
        before its close frame was delivered and could still be answered."""
        try:
            with self._send_lock:
                if self._conn.close_sent is None:
                    self._write(self._conn.send_close(event.code))
        except ConnectionClosed:
            return
        self._finish_closing(event.code, event.reason, True)

    def _fail_connection(self, error: ProtocolError) -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 7.1.7), now that the messages received
        before the error were delivered: send the close with the error's code, then wait
        for the peer's TCP close."""
        try:
            with self._send_lock:
                if self._conn.close_sent is None:
                    self._write(self._conn.send_failure_close())
        except ConnectionClosed:
            return
        self._finish_closing(CLOSE_ABNORMAL, error.reason, False)

    def _read(self) -> None:
        """One read from the socket and its consequences. The caller holds the read lock.

        The bytes land in this thread's shared read buffer and are parsed before anything
        can switch greenlets; the protocol object gets a view of it and must copy what it
        keeps: no copy but the one into each message, and no buffer held by an idle
        connection."""
        if self._channel is not None:   # the same, compiled
            self._handle_items(self._channel.read())
            return
        buffer = _read_buffer()
        try:
            size = recv_into(self._sock, self._raw, buffer, self._drained)
        except OSError:
            size = None   # a reset
        self._drained = size is not None and size < SMALL_READ
        if not size:
            # RFC 6455 7.1.5: a TCP close without a close frame is abnormal; draft-75 has no
            # close frame, so there its FIN is the peer's clean close (geventws.protocol.hixie).
            if size == 0 and getattr(self._conn, 'tcp_close_is_clean', False):
                self._terminate(1000, '', True)
            else:
                self._terminate(CLOSE_ABNORMAL, '', False)
            return
        self._handle_data(buffer[:size])

    def _handle_items(self, items: list[ReaderItem] | None) -> None:
        """The consequences of a ``Channel`` read: the reader's ``items``, or None when the
        peer closed or reset TCP (RFC 6455 7.1.5: without a close frame, abnormally)."""
        if items is None:
            self._terminate(CLOSE_ABNORMAL, '', False)
        else:
            # (a Channel serves a Connection only)
            self._handle_events(self._conn.events_for(items))  # type: ignore[union-attr]

    def _handle_data(self, data: BytesLike) -> None:
        self._handle_events(self._conn.receive_data(data))

    def _handle_events(self, events: list[CoreEvent]) -> None:
        conn = self._conn
        owed = conn.data_to_send()
        if owed:
            with self._send_lock:
                self._write_quietly(owed)
        if not events:
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        event: Any   # (as in _next_event)
        for event in events:
            kind = type(event)
            if kind is MessageEvent:
                queue.append(event)
            elif kind is Pong:
                for waiter in (self._pings or {}).pop(event.payload, ()):
                    waiter.set()
            elif kind is CloseReceived:
                if conn.close_sent is None:   # the peer starts closing: answered in turn
                    self.ready_state = CLOSING
                    queue.append(event)
                else:
                    self._finish_closing(event.code, event.reason, True)
            elif kind is Failure:
                if conn.close_sent is None:   # failed in turn, after the messages before it
                    self.ready_state = CLOSING
                    queue.append(event)
                else:
                    queue.append(ErrorEvent(event.error))
                    self._finish_closing(CLOSE_ABNORMAL, event.error.reason, False)

    def _finish_closing(self, code: int, reason: str, was_clean: bool) -> None:
        """After the close frames: the server drops TCP at once when the handshake is
        complete (RFC 6455 7.1.1); otherwise wait, reading nothing more, for the peer's TCP
        close so that our close frame is not lost to a reset."""
        if self._over:
            return
        if was_clean and not self._conn.client:
            self._terminate(code, reason, was_clean)
            return
        if not was_clean:
            try:
                self._sock.shutdown(_socket.SHUT_WR)
            except OSError:
                pass
        with gevent.Timeout(self.close_timeout, False):
            try:
                while self._sock.recv(READ_SIZE):
                    pass
            except OSError:
                pass
        self._terminate(code, reason, was_clean)

    # -- writing ----------------------------------------------------------------------------

    def _write(self, buffers: Buffers) -> None:
        """Write frames, a fresh list that is consumed (the caller holds the send lock); a
        dead socket ends the connection.

        Corking: while received messages still wait in the queue, their answers are held
        back and go out with the answer to the last one in one syscall (a pipelined batch
        of 100 echoes is one ``sendmsg``). A frame written with nothing waiting goes out at
        once, with whatever was held before it; held frames never wait longer than this
        greenlet runs (``_flush_soon``)."""
        corked = self._corked
        if corked is not None:
            corked.extend(buffers)
            buffers = corked
        queue = self._queue
        if queue and input_waits(queue):
            if corked is None:
                self._corked = buffers
                gevent.get_hub().loop.run_callback(self._flush_soon)
            return
        self._corked = None
        self._send(buffers)

    def _send(self, buffers: Buffers) -> None:
        """Write all of ``buffers`` (a list, consumed) now."""
        try:
            send_all(self._sock, self._raw, buffers)
        except OSError as exc:
            self._lose_connection(exc)

    def _lose_connection(self, exc: OSError) -> NoReturn:
        """A write failed (``exc``): the connection is over."""
        self._terminate(CLOSE_ABNORMAL, str(exc), False)
        raise ConnectionClosed(CLOSE_ABNORMAL, str(exc)) from None

    def _write_quietly(self, data: bytes) -> None:
        try:
            self._write([data])
        except ConnectionClosed:
            pass

    def _flush_soon(self) -> None:
        """Run by the hub once the greenlet that corked frames yields: write them without
        blocking, or leave the rest to a greenlet that may wait for the socket."""
        corked = self._corked
        if corked is None:
            return
        if self._raw is not None and not self._send_lock.locked():
            try:
                if send_some(self._raw, corked):
                    self._corked = None
                    return
            except OSError as exc:
                self._terminate(CLOSE_ABNORMAL, str(exc), False)
                return
        gevent.spawn(self._flush)

    def _flush(self) -> None:
        with self._send_lock:
            corked, self._corked = self._corked, None
            if corked:
                try:
                    self._send(corked)
                except ConnectionClosed:
                    pass

    # -- ending -----------------------------------------------------------------------------

    def _terminate(self, code: int, reason: str, was_clean: bool) -> None:
        """The connection is over: close TCP and queue the one CloseEvent."""
        if self._over:
            return
        self.ready_state = CLOSED
        self._corked = None
        self._channel = None   # its file descriptor is closed, and may be reused
        self.close_code = code
        self.close_reason = reason
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
        self._over = True

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

