"""The client: ``connect(url)`` and ``WebSocketClient(url)``, the server socket's API at the
other end of the connection.

Only opening the connection is the client's own: parse the ws:// or wss:// URL, connect (TCP,
then TLS), send the opening request and check the answer (``handshake``, RFC 6455 4.1). From
then on it is the same ``WebSocket`` over a client-role ``protocol.Connection``, which masks
every frame it sends and fails on a masked frame from the server (RFC 6455 5.1).

With ``reconnect=True`` the client opens a new connection whenever one ends without the app
closing it: the object stays, its state starts over (``WebSocket.__init__`` again, the
callbacks kept), after a delay that doubles with each failed attempt up to a cap, jittered so
that the clients of a server that went away do not all come back in the same millisecond.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Sequence, Union
from urllib.parse import quote, urlsplit

import gevent
from gevent import socket as gsocket
from gevent import ssl as gssl
from gevent.event import Event

from ..errors import ConnectionClosed, HandshakeError, HandshakeTimeout, WebSocketError
from ..limits import (CLOSE_TIMEOUT, MAX_MESSAGE_SIZE, MAX_QUEUE, MAX_RESPONSE_HEAD,
                      OPEN_TIMEOUT, PING_INTERVAL, PING_TIMEOUT, READ_SIZE, WRITE_LIMIT)
from ..protocol import deflate, handshake
from ..protocol.connection import Connection
from ..protocol.events import ErrorEvent
from ..protocol.frames import CLOSE_ABNORMAL
from ..protocol.http import parse_response
from .base import CLOSED, CONNECTING, WebSocketBase
from .websocket import WebSocket

if TYPE_CHECKING:
    import ssl

    from .._types import Data, Headers, Socket
    from ..protocol.deflate import CompressionOption
    from ..protocol.http import ClientResponse

#: Request headers, or what gives them anew for each connection (the last id seen, ...).
HeadersOption = Union['Headers', Callable[[], 'Headers'], None]

#: Reconnecting: seconds before the first attempt, the cap of the doubling delays.
RECONNECT_DELAY, RECONNECT_MAX_DELAY = 0.5, 30.0

_DEFAULT_PORTS = {'ws': 80, 'wss': 443}
_URL_SAFE = "!$&'()*+,;=:@/?%~"   # RFC 3986 pchar and the query's '/' and '?', kept as is


class Target:
    """Where a ws:// or wss:// URL (RFC 6455 section 3) points: ``secure``, ``host`` (an
    IPv6 literal without its brackets), ``port``, ``path``, the request's ``resource`` and the
    value of its ``Host`` header."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError('%r is not a ws:// or wss:// URL' % (url,))
        if '#' in url:
            raise ValueError('a WebSocket URL has no fragment (RFC 6455 3): %r' % (url,))
        if not parts.hostname:
            raise ValueError('no host in %r' % (url,))
        self.secure = scheme == 'wss'
        self.host = parts.hostname
        default_port = _DEFAULT_PORTS[scheme]
        self.port = default_port if parts.port is None else parts.port   # ValueError if bad
        self.path = parts.path or '/'
        self.resource = quote(self.path, safe=_URL_SAFE)
        if parts.query:
            self.resource += '?' + quote(parts.query, safe=_URL_SAFE)
        name = '[%s]' % self.host if ':' in self.host else self.host
        self.host_header = name if self.port == default_port else '%s:%d' % (name, self.port)

    def __str__(self) -> str:
        return '%s:%d' % (self.host, self.port)


class WebSocketClient(WebSocket):
    """A client connection with the browser API. It opens on ``connect()`` or on first use
    (``send``, ``receive``, ``run_forever``, ...); ``run_forever()`` reports a connection that
    cannot be opened as ``onerror`` then ``onclose`` (1006), as a browser does, where the
    blocking calls raise ``OSError`` or ``HandshakeError``.

    Options: ``protocols`` to offer, in order of preference; extra request ``headers`` (a
    mapping or pairs; ``Host`` replaces ours); ``origin`` for the ``Origin`` header;
    ``timeout`` in seconds for DNS, connect, TLS and handshake together; ``ssl_context`` for
    wss:// (default: the system's CAs, hostname checked); ``max_message_size``;
    ``close_timeout`` for the closing handshake and the server's TCP close after it;
    ``compression``: permessage-deflate, offered by default (True), None to not offer it,
    or a dict of ``geventws.protocol.deflate.DeflateOptions`` arguments; ``max_queue``
    messages waiting before reading pauses; keepalive's ``ping_interval`` and
    ``ping_timeout`` (seconds, None: off); ``write_limit`` for ``broadcast()``.

    ``reconnect=True``: when a connection ends without the app's ``close()`` (the server
    went away, the network failed, the server closed it), open a new one after
    ``reconnect_delay`` seconds, doubled after each failed attempt up to
    ``reconnect_max_delay``, each delay jittered between its half and itself; give up after
    ``reconnect_attempts`` failed attempts in a row (None: never). Each connection fires
    ``onopen`` when it opens and ``onclose`` when it ends (an attempt that fails:
    ``onerror``, then ``onclose`` with 1006), as a browser's new ``WebSocket`` would;
    ``receive()`` and iteration just go on with the next connection's messages. ``headers``
    may be a callable, called for each connection: the way to tell the server the last
    message seen (``lambda: {'Last-Event-ID': last_id}``). Nothing sent while no connection
    is open is kept: ``send()`` raises ``ConnectionClosed`` then.
    """

    origin = None    # the Origin we send, where the server side reads the client's
    path = None      # the path of the URL, as the server side sees it

    def __init__(self, url: str, protocols: Sequence[str] | None = None,
                 headers: HeadersOption = None, origin: str | None = None,
                 timeout: float | None = OPEN_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None,
                 max_message_size: int = MAX_MESSAGE_SIZE,
                 close_timeout: float = CLOSE_TIMEOUT,
                 compression: CompressionOption = True, max_queue: int = MAX_QUEUE,
                 ping_interval: float | None = PING_INTERVAL,
                 ping_timeout: float | None = PING_TIMEOUT,
                 write_limit: int = WRITE_LIMIT, reconnect: bool = False,
                 reconnect_delay: float = RECONNECT_DELAY,
                 reconnect_max_delay: float = RECONNECT_MAX_DELAY,
                 reconnect_attempts: int | None = None) -> None:
        super().__init__(url=url, version=13, close_timeout=close_timeout,
                         max_queue=max_queue, ping_interval=ping_interval,
                         ping_timeout=ping_timeout, write_limit=write_limit)
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.reconnect_attempts = reconnect_attempts
        #: Connections opened so far (reconnecting: the first is 1).
        self.connections = 0
        self._stopped = Event()    # the app closed: no more connections
        self._renewed = False      # the state was started over for another connection
        self.target = Target(url)
        self.path = self.target.path
        self.protocols = list(protocols or ())
        self.headers = headers or ()
        self.origin = origin
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.max_message_size = max_message_size
        self.compression = deflate.compression_options(compression)
        self._runner: Any = None   # the greenlet of start()

    # -- opening ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (once): raises ``OSError`` when the server cannot be reached
        (``TimeoutError`` after ``timeout``), ``ssl.SSLError`` when TLS fails,
        ``HandshakeError`` when the server does not accept (``HandshakeTimeout`` when it does
        not answer in time)."""
        if self.ready_state != CONNECTING:
            return
        key = handshake.client_key()
        offer = deflate.client_offer(self.compression)
        headers = self.headers() if callable(self.headers) else self.headers
        request = handshake.client_request(self.target.resource, self.target.host_header, key,
                                           self.protocols, self.origin, headers, offer)
        sock, response = self._open(request)
        try:
            protocol, _ = handshake.validate_response(response, key, self.protocols,
                                                      [deflate.NAME] if offer else [])
            extensions = response.header('sec-websocket-extensions') or ''
            extension = deflate.client_negotiate(extensions, self.compression)
        except HandshakeError:
            sock.close()
            raise
        conn = Connection(client=True, max_message_size=self.max_message_size,
                          extension=extension)
        self._attach(sock, conn, protocol, extensions, response.rest)
        self.connections += 1

    def _open(self, request: bytes) -> tuple[Socket, ClientResponse]:
        """Connect, send ``request`` and read the answer's head, all within ``timeout``."""
        timer = gevent.Timeout(self.timeout)
        timer.start()
        sock = None
        try:
            sock = self._connect_socket()
            sock.sendall(request)
            return sock, self._read_response(sock)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            if sock is None:
                raise TimeoutError('timed out after %s s connecting to %s'
                                   % (self.timeout, self.target)) from None
            sock.close()
            raise HandshakeTimeout('%s did not answer the opening handshake within %s s'
                                   % (self.target, self.timeout), status=None) from None
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            timer.close()

    def _connect_socket(self) -> Socket:
        target = self.target
        try:
            sock = gsocket.create_connection((target.host, target.port))
        except OSError as exc:
            raise _with_address(exc, target) from None
        if not target.secure:
            return sock
        context = self.ssl_context or gssl.create_default_context()
        try:
            # gevent's SSLSocket cooperates with the hub whatever the context's class: a
            # standard-library SSLContext's own wrap_socket() would block it.
            return gssl.SSLSocket(sock=sock, server_hostname=target.host, _context=context)
        except BaseException:
            sock.close()
            raise

    @staticmethod
    def _read_response(sock: Socket) -> ClientResponse:
        """Read until the end of the response head; what follows it in the same reads is
        kept in ``response.rest`` (frames the server sent right after its 101)."""
        data = b''
        while True:
            chunk = sock.recv(READ_SIZE)
            if not chunk:
                raise HandshakeError('server closed the connection %s'
                                     % ('in the middle of its answer' if data else
                                        'without answering the opening handshake'),
                                     status=None)
            data += chunk
            response = parse_response(data, MAX_RESPONSE_HEAD)
            if response is not None:
                return response

    def _ensure_open(self) -> None:
        self._used = True
        if self.ready_state == CONNECTING:
            self.connect()

    # -- event style ------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Open the connection if needed and dispatch events until it is closed (with
        ``reconnect``: until the app closes it or the attempts run out). Failing to open it
        is ``onerror`` then ``onclose`` with 1006, not an exception."""
        failures = 0
        while True:
            if self.ready_state == CONNECTING:
                failures = self._open_again(failures)
            super().run_forever()
            if not self._again(failures):
                return

    def receive(self) -> Data | None:
        """The next message (``str`` or ``bytes``), or ``None`` once the connection is closed
        (with ``reconnect``: once the app closed it or the attempts ran out)."""
        message = WebSocketBase.receive(self)  # (the compiled one, where it is)
        failures = 0
        while message is None and self._again(failures):
            failures = self._open_again(failures)
            message = WebSocketBase.receive(self)
        return message

    def _open_again(self, failures: int) -> int:
        """Open the connection (once more); the count of failed attempts in a row after it."""
        try:
            self.connect()
        except (OSError, WebSocketError) as exc:
            self._never_opened(exc)
            return failures + 1
        self._closed_meanwhile()
        return 0

    def close(self, *args: Any, **kwargs: Any) -> None:
        """Close the connection (as ``WebSocket.close``); no other is opened after it."""
        self._stopped.set()
        if self._renewed and self.ready_state == CONNECTING:
            return   # between two connections: none to close
        super().close(*args, **kwargs)

    # -- reconnecting -----------------------------------------------------------------------

    def _never_opened(self, exc: Exception) -> None:
        """An attempt that failed: ``onerror`` and ``onclose`` (1006) wait in the queue."""
        self._conn = _NeverOpened(str(exc))  # type: ignore[assignment]
        self._enqueue(ErrorEvent(exc))
        self._terminate(CLOSE_ABNORMAL, str(exc), False)

    def _closed_meanwhile(self) -> None:
        if self._stopped.is_set():   # close() came while this connection was opening
            super().close()

    def _again(self, failures: int) -> bool:
        """After a connection (or an attempt) ended: wait the backoff and start the state
        over for another; False when there is to be none."""
        if (not self.reconnect or self._stopped.is_set() or self.ready_state != CLOSED or
                self.reconnect_attempts is not None and failures >= self.reconnect_attempts):
            return False
        delay = min(self.reconnect_max_delay, self.reconnect_delay * 2 ** failures)
        if self._stopped.wait(random.uniform(delay / 2, delay)):
            return False
        self._renew()
        return True

    def _renew(self) -> None:
        """A new connection's state in this object: the callbacks stay."""
        callbacks = (self._onopen, self._onmessage, self._onerror, self._onclose)
        WebSocket.__init__(self, url=self.url, version=13, close_timeout=self.close_timeout,
                           max_queue=self.max_queue, ping_interval=self.ping_interval,
                           ping_timeout=self.ping_timeout, write_limit=self.write_limit)
        self._onopen, self._onmessage, self._onerror, self._onclose = callbacks
        self._used = True
        self._renewed = True

    def start(self) -> Any:
        """Run ``run_forever()`` in a new greenlet, returned (``join()`` waits for it)."""
        self._runner = gevent.spawn(self.run_forever)
        return self._runner

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the greenlet of ``start()`` to end (``onclose`` was dispatched); True if
        it did within ``timeout``."""
        if self._runner is None:
            raise RuntimeError('join() waits for start(), which was not called')
        self._runner.join(timeout)
        return self._runner.ready()


class _NeverOpened:
    """The protocol object of a client that could not connect: sending raises
    ``ConnectionClosed``, as it does once a connection is closed."""

    client = True

    def __init__(self, reason: str) -> None:
        self.close_sent = (CLOSE_ABNORMAL, reason)

    def send_message(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConnectionClosed(*self.close_sent)

    send_ping = send_close = send_message


def connect(url: str, **options: Any) -> WebSocketClient:
    """Open a WebSocket connection and return it (a ``WebSocketClient``, open); raises
    ``OSError`` or ``HandshakeError`` if it cannot be opened. Options as ``WebSocketClient``:
    ``protocols``, ``headers``, ``origin``, ``timeout``, ``ssl_context``,
    ``max_message_size``, ``close_timeout``, ``compression``, ``max_queue``,
    ``ping_interval``, ``ping_timeout``, ``write_limit``, and ``reconnect`` with its
    ``reconnect_delay``, ``reconnect_max_delay`` and ``reconnect_attempts``: the first
    connection must open, the next ones are tried as ``WebSocketClient`` says."""
    ws = WebSocketClient(url, **options)
    ws.connect()
    return ws


def _with_address(error: OSError, target: Target) -> OSError:
    """``error`` (a DNS or connect failure) again with the address it was about in its
    message, of the same type so that ``except ConnectionRefusedError`` still works."""
    if error.errno is None or not error.strerror:
        return error
    return type(error)(error.errno, '%s (%s)' % (error.strerror, target))
