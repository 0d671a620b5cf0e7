"""The client: ``connect(url)`` and ``WebSocketClient(url)``, the server socket's API at the
other end of the connection.

Only opening the connection is the client's own: parse the ws:// or wss:// URL, connect (TCP,
then TLS), send the opening request and check the answer (``handshake``, RFC 6455 4.1). From
then on it is the same ``WebSocket`` over a client-role ``protocol.Connection``, which masks
every frame it sends and fails on a masked frame from the server (RFC 6455 5.1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Sequence
from urllib.parse import quote, urlsplit

import gevent
from gevent import socket as gsocket
from gevent import ssl as gssl

from ..errors import ConnectionClosed, HandshakeError, HandshakeTimeout, WebSocketError
from ..limits import (CLOSE_TIMEOUT, MAX_MESSAGE_SIZE, MAX_QUEUE, MAX_RESPONSE_HEAD,
                      OPEN_TIMEOUT, PING_INTERVAL, PING_TIMEOUT, READ_SIZE, WRITE_LIMIT)
from ..protocol import deflate, handshake
from ..protocol.connection import Connection
from ..protocol.events import ErrorEvent
from ..protocol.frames import CLOSE_ABNORMAL
from ..protocol.http import parse_response
from .base import CONNECTING
from .websocket import WebSocket

if TYPE_CHECKING:
    import ssl

    from .._types import Headers, Socket
    from ..protocol.deflate import CompressionOption
    from ..protocol.http import ClientResponse

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
    """

    origin = None    # the Origin we send, where the server side reads the client's
    path = None      # the path of the URL, as the server side sees it

    def __init__(self, url: str, protocols: Sequence[str] | None = None,
                 headers: Headers | None = None, origin: str | None = None,
                 timeout: float | None = OPEN_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None,
                 max_message_size: int = MAX_MESSAGE_SIZE,
                 close_timeout: float = CLOSE_TIMEOUT,
                 compression: CompressionOption = True, max_queue: int = MAX_QUEUE,
                 ping_interval: float | None = PING_INTERVAL,
                 ping_timeout: float | None = PING_TIMEOUT,
                 write_limit: int = WRITE_LIMIT) -> None:
        super().__init__(url=url, version=13, close_timeout=close_timeout,
                         max_queue=max_queue, ping_interval=ping_interval,
                         ping_timeout=ping_timeout, write_limit=write_limit)
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
        request = handshake.client_request(self.target.resource, self.target.host_header, key,
                                           self.protocols, self.origin, self.headers, offer)
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
        """Open the connection if needed and dispatch events until it is closed. Failing to
        open it is ``onerror`` then ``onclose`` with 1006, not an exception."""
        if self.ready_state == CONNECTING:
            try:
                self.connect()
            except (OSError, WebSocketError) as exc:
                self._conn = _NeverOpened(str(exc))  # type: ignore[assignment]
                self._enqueue(ErrorEvent(exc))
                self._terminate(CLOSE_ABNORMAL, str(exc), False)
        super().run_forever()

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
    ``ping_interval``, ``ping_timeout``, ``write_limit``."""
    ws = WebSocketClient(url, **options)
    ws.connect()
    return ws


def _with_address(error: OSError, target: Target) -> OSError:
    """``error`` (a DNS or connect failure) again with the address it was about in its
    message, of the same type so that ``except ConnectionRefusedError`` still works."""
    if error.errno is None or not error.strerror:
        return error
    return type(error)(error.errno, '%s (%s)' % (error.strerror, target))
