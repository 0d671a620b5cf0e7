"""``WebSocketHandler``: gevent.pywsgi's handler, plus WebSocket upgrades.

A request that asks for ``Upgrade: websocket`` is validated and its protocol family chosen
from its headers alone (RFC 6455, or the hixie-75/76 drafts of geventws.protocol.hixie unless
``legacy`` is off; 400, 403 for an Origin not in ``origins``, or 426, with a one-line reason
when it is bad), and the app gets an un-accepted ``WebSocket`` in ``environ['wsgi.websocket']``.
Every request, upgrade or not, has ``handshake_timeout`` to deliver its head, within the
limits of geventws.io.requesthead (431 over them).
The handshake is answered when the app first uses the socket (or sets a callback, or calls
``accept()``); an app that instead answers with a plain response (a 403, say) without touching
the socket has that response sent, and nothing is upgraded. The connection then runs to its
end inside this handler's greenlet: pywsgi closes the socket when ``handle()`` returns.
Every other request is served exactly as gevent.pywsgi serves it.
"""
from __future__ import annotations

import functools
import io
import operator
import re
import sys
import time
from collections import deque
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

from gevent import Timeout, pywsgi
from gevent.pywsgi import MAX_REQUEST_LINE, Input, WSGIHandler, _InvalidClientInput, unquote_latin1

from ..errors import ConnectionClosed, HandshakeError
from ..limits import (CLOSE_TIMEOUT, HANDSHAKE_TIMEOUT, KEEPALIVE_TIMEOUT,
                      MAX_HEADER_LINE, MAX_HEADERS, MAX_MESSAGE_SIZE, MAX_QUEUE,
                      MAX_REQUEST_HEAD, PING_INTERVAL, PING_TIMEOUT, REFUSAL_LINGER, WRITE_LIMIT,
                      SERVER_OPTIONS)
from ..protocol import deflate, handshake, hixie
from ..protocol.connection import Connection
from ..protocol.http import check_origin, is_websocket_upgrade
from .forwarded import TrustedProxies
from .requesthead import HeadTooLarge, add_environ_field, plain_upgrade_head, read_request_head
from .sockio import answer_and_close, send_all
from .websocket import WebSocket

if TYPE_CHECKING:
    from .._types import Environ, Socket
    from ..protocol.hixie import HixieConnection
    from ..protocol.deflate import CompressionOption
    from .requesthead import PlainHead

    class Registry(Protocol):
        """What ``registry=`` is told of (``geventws.shutdown.OpenWebSockets``)."""

        def add(self, ws: WebSocket) -> None: ...


class WebSocketVersion(str):
    """The handshake's protocol version as gevent-websocket gives it (the header's string,
    '13'), which also compares equal to the number (13) that other servers use."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            return self == str(other)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


#: The attributes gevent.pywsgi's handler gives itself while it serves a request, beyond the
#: four its ``__init__`` sets; each starts as the class's default (WebSocketHandler.__init__).
#: (Those of them that this gevent's WSGIHandler declares.)
_REQUEST_ATTRIBUTES = tuple(name for name in (
    'time_start', 'time_finish', 'requestline', 'command', 'path', 'request_version',
    'headers', 'content_length', 'close_connection', 'wsgi_input', 'environ', 'application',
    'status', '_orig_status', 'code', 'headers_sent', 'result', 'response_use_chunked',
    'connection_upgraded', 'response_headers', 'response_length', 'provided_date',
    'provided_content_length') if hasattr(WSGIHandler, name))
#: A class's defaults of those attributes, in their order.
_request_defaults = operator.attrgetter(*_REQUEST_ATTRIBUTES)
#: Runs an iterator to its end (the itertools documentation's "consume" recipe).
_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend

#: The shared ``WebSocketVersion`` of a version: one object per version, not one per
#: connection (an idle connection is smaller by one str).
_version = functools.lru_cache(maxsize=None)(WebSocketVersion)


class WebSocketHandler(WSGIHandler):
    """Use as ``WSGIServer(addr, app, handler_class=WebSocketHandler)``; tune limits with
    ``handler_class=WebSocketHandler.configure(max_message_size=2**20)``."""

    max_message_size = MAX_MESSAGE_SIZE
    close_timeout = CLOSE_TIMEOUT
    #: Messages that may wait for the app before reading pauses (geventws.limits.MAX_QUEUE).
    max_queue = MAX_QUEUE
    #: Keepalive: seconds between pings and to wait for the pong; None turns either off.
    ping_interval: float | None = PING_INTERVAL
    ping_timeout: float | None = PING_TIMEOUT
    #: Bytes ``broadcast()`` lets wait for a connection that reads slowly.
    write_limit = WRITE_LIMIT
    #: permessage-deflate (RFC 7692): True for the defaults, None to disable, or a dict of
    #: ``geventws.protocol.deflate.DeflateOptions`` arguments.
    compression: CompressionOption = True
    #: Reverse proxies whose X-Forwarded-Proto/-For are believed: '127.0.0.1,10.0.0.0/8',
    #: a list, or '*'; None believes nobody (geventws.io.forwarded).
    forwarded_allow_ips: TrustedProxies | None = None
    #: Told of every WebSocket once it is open (``registry.add(ws)``), so that a server
    #: can close them all with 1001 when it stops (geventws.shutdown).
    registry: Registry | None = None
    #: Seconds each request has to deliver its whole head (geventws.limits), and an idle
    #: connection to start its next one (0: one request per connection); None: no limit.
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT
    keepalive_timeout: float | None = KEEPALIVE_TIMEOUT
    #: Limits of a request head, over which it is answered 431.
    max_request_head = MAX_REQUEST_HEAD
    max_header_line = MAX_HEADER_LINE
    max_headers = MAX_HEADERS
    #: Whether the hixie drafts' handshakes (draft-75 and draft-76) are answered; False: 426.
    legacy = True
    #: The Origins allowed to open a WebSocket (exact strings; None in the list for requests
    #: without an Origin); any other gets 403. None allows every origin.
    origins: list[str | None] | None = None
    #: The class of the connections' ``WebSocket`` (geventws.compat gives its own).
    websocket_class: type[WebSocket] = WebSocket
    #: Whether a first request is read and its environ built by the shortcuts below;
    #: decided again for each subclass (__init_subclass__).
    _reads_plain_heads = _builds_plain_environ = True
    # (pywsgi's, set per connection: a file object, or _UNREAD until the first read.)
    rfile: Any

    def __init__(self, sock: Socket, address: Any, server: Any, rfile: Any = None) -> None:
        # No file object yet: the first read decides whether pywsgi's reading is needed
        # (read_requestline).
        if rfile is None and self._reads_plain_heads:
            rfile = _UNREAD
        super().__init__(sock, address, server, rfile)
        self._head: PlainHead | None = None
        self._deadline: Timeout | None = None
        # Every attribute a request will set, set now, in one order: CPython (3.11 and later)
        # shares one key table only for the names a class's first few instances set, and a
        # handler made before the first 101 answer would otherwise keep a dict of its own
        # (bench/RESULTS.md, "Measurements behind the code"). Set in C: a Python loop costs
        # a handshake more.
        _consume(map(setattr, repeat(self), _REQUEST_ATTRIBUTES,
                     _request_defaults(type(self))))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The shortcuts below stand in for pywsgi's own methods, so they are taken only
        # where pywsgi's are what they replace: not when a class that comes after this one
        # in a subclass's MRO (another WSGIHandler subclass mixed in) has its own.
        cls._reads_plain_heads = all(_after_websockethandler(cls, name) is getattr(
            WSGIHandler, name) for name in ('read_requestline', 'read_request'))
        cls._builds_plain_environ = (_after_websockethandler(cls, 'get_environ')
                                     is WSGIHandler.get_environ)

    @classmethod
    def configure(cls, **options: Any) -> type[WebSocketHandler]:
        """A subclass with other options: those of geventws.limits.SERVER_OPTIONS
        (``max_message_size``, ``handshake_timeout``, ``origins``, ...), ``compression``,
        ``forwarded_allow_ips``, ``registry``."""
        for name in options:
            if name.startswith('_') or not hasattr(cls, name) or callable(getattr(cls, name)):
                raise TypeError('unknown WebSocketHandler option %r' % name)
        if options.get('forwarded_allow_ips') is not None:
            options['forwarded_allow_ips'] = TrustedProxies(options['forwarded_allow_ips'])
        origins = options.get('origins')
        if origins is not None:
            options['origins'] = (SERVER_OPTIONS['origins'](origins) if isinstance(origins, str)
                                  else list(origins))
        return type(cls.__name__, (cls,), dict(options))

    # -- deadlines ---------------------------------------------------------------------------
    # A request's head must arrive whole within handshake_timeout, from the connection's
    # start or from the next request's first byte; an idle connection waits for that byte
    # at most keepalive_timeout. Without them, peers that send nothing, or a byte now and
    # then (slowloris), would each hold a file descriptor and a greenlet for ever.

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            # The peer went away while its answer was written (pywsgi's error responses):
            # nothing to say about it but at debug level.
            pass

    def handle_one_request(self) -> Any:
        if self.requestline is not None:   # a request was served before: keep-alive
            if not self._next_request_begins():
                return None
            self.time_start = time.time()   # (the request's, for the log and the deadline)
        self._deadline = Timeout._start_new_or_dummy(self.handshake_timeout, _HeadTimeout)
        try:
            result = super().handle_one_request()
        finally:
            self._end_deadline()
        if type(result) is tuple:
            # A request pywsgi refused (400, 414, 431): its handle() would write the answer
            # and close at once, and the reset that unread bytes cause can lose the answer.
            self.status, response = result
            if self.status == '414':   # (pywsgi's answer has no reason)
                self.status, response = _refusal('414 URI Too Long', 'the request line is '
                                                 'longer than %d bytes' % MAX_REQUEST_LINE)
            answer_and_close(self.socket, response, REFUSAL_LINGER, 16 * 1024 * 1024)
            self.time_finish = time.time()
            self.log_request()
            return None
        return result

    def _end_deadline(self) -> None:
        """The head is in (or the request over): no deadline, and nothing kept of it for a
        WebSocket's life."""
        deadline = self._deadline
        if deadline is not None:
            self._deadline = None
            deadline.close()

    def _next_request_begins(self) -> bool:
        """Whether a next request starts within keepalive_timeout (its first byte is then in
        ``rfile``'s buffer)."""
        rfile, timeout = self.rfile, self.keepalive_timeout
        if rfile.closed or (timeout is not None and timeout <= 0):
            return False
        try:
            with Timeout(timeout, False):
                return bool(rfile.peek(1))
        except OSError:
            return False
        return False

    def _handle_client_error(self, ex: Exception) -> Any:
        """What pywsgi answers to a request it could not read: 431 for a head over the
        limits, 400 for a malformed one, each with its reason in one line (here and in the
        log); nothing, and nothing in the log, for a peer that went away or was too slow."""
        if isinstance(ex, (ConnectionError, TimeoutError)) and not isinstance(
                ex, _InvalidClientInput):
            return None
        if isinstance(ex, HeadTooLarge):
            status = '431 Request Header Fields Too Large'
        elif isinstance(ex, (ValueError, _InvalidClientInput)):
            status = '400 Bad Request'
        else:
            return super()._handle_client_error(ex)   # no client's fault: pywsgi's traceback
        reason = getattr(ex, 'formatted_message', None) or str(ex) or type(ex).__name__
        self.log_error('(from %s) %s', self.client_address, reason)
        return _refusal(status, reason)

    def _check_http_version(self) -> bool:
        # pywsgi's fails with an IndexError (a traceback in the log) on 'HTTP/1'.
        return (_HTTP_VERSION.fullmatch(self.request_version) is not None and
                super()._check_http_version())

    # -- the first request ---------------------------------------------------------------
    # A connection's first request is most often a WebSocket upgrade, whose whole head
    # comes in one read. Such a head (requesthead.plain_upgrade_head) is parsed in one pass
    # from those bytes, with no file object; pywsgi's request loop runs as ever, with its
    # hooks (a subclass's read_requestline, read_request and get_environ still wrap these),
    # only the reading and parsing under them are shorter. Any other first request (plain
    # HTTP, a head cut in pieces, anything unusual) is read by pywsgi from a file object
    # that first gives back the bytes already taken. (pywsgi's own reading and environ cost
    # a large share of a handshake: bench/RESULTS.md, "Measurements behind the code".)

    def read_requestline(self) -> str:
        if self.rfile is not _UNREAD:
            return super().read_requestline()
        data = self.socket.recv(io.DEFAULT_BUFFER_SIZE)   # as much as pywsgi's first read
        if not data:
            return ''   # closed before a request: pywsgi ends the connection
        head = plain_upgrade_head(data, self.max_request_head, self.max_header_line,
                                  self.max_headers)
        if head is None:
            self.rfile = io.BufferedReader(_Replay(data, self.socket))
            return super().read_requestline()
        self._head = head
        # What pywsgi's input for an upgrade request reads: nothing (the request has no
        # body, and what follows its head is the WebSocket's).
        self.rfile = io.BytesIO()
        return head.requestline

    def read_request(self, raw_requestline: str) -> bool:
        head = self._head
        if head is None:
            valid: bool = super().read_request(raw_requestline)
        else:
            self.requestline = raw_requestline.rstrip()
            self.command, self.path, self.request_version = self.requestline.split()
            self.headers = head.message
            self.content_length = None
            self.close_connection = self.headers.get('Connection', '').lower() == 'close'
            valid = True
        if self.keepalive_timeout is not None and self.keepalive_timeout <= 0:
            self.close_connection = True
        return valid

    def MessageClass(self, rfile: Any, *_seekable: Any) -> Any:
        """The request's header fields as pywsgi parses them (its ``self.MessageClass(rfile,
        0)``), without the email package's parser, within the head limits."""
        return read_request_head(rfile, max_size=self.max_request_head,
                                 max_line=self.max_header_line, max_headers=self.max_headers,
                                 read=len(self.requestline or ''))

    def get_environ(self) -> Environ:
        self._end_deadline()   # the rest of the request (its body, the app) has none
        head = self._head
        if head is not None and self._builds_plain_environ:
            environ = self._environ_of(head)
        else:
            environ = super().get_environ()
        if self.forwarded_allow_ips is not None:
            self.forwarded_allow_ips.apply(environ, self.client_address)
        return environ

    def _environ_of(self, head: PlainHead) -> Environ:
        """What pywsgi's ``get_environ`` makes of a ``PlainHead``, in the same order."""
        environ = self.server.get_environ()
        environ['REQUEST_METHOD'] = self.command
        environ['SCRIPT_NAME'] = ''
        path, _, query = self.path.partition('?')
        environ['PATH_INFO'] = unquote_latin1(path)
        environ['QUERY_STRING'] = query
        environ['SERVER_PROTOCOL'] = self.request_version
        client_address = self.client_address
        if isinstance(client_address, tuple):
            environ['REMOTE_ADDR'] = str(client_address[0])
            environ['REMOTE_PORT'] = str(client_address[1])
        fields = head.environ
        if environ.keys().isdisjoint(fields):   # the base environ has no HTTP_* of its own
            environ.update(fields)
        else:
            for key, value in fields.items():
                add_environ_field(environ, key, value)
        self.wsgi_input = _NO_BODY
        environ['wsgi.input'] = self.rfile
        environ['wsgi.input_terminated'] = False
        return environ

    def log_request(self) -> None:
        if type(self.server.log) is not _NOOP_LOG:   # log=None: no line to format
            super().log_request()

    def run_application(self) -> None:
        if not is_websocket_upgrade(self.environ):
            return super().run_application()
        try:
            ws = self._websocket()
        except HandshakeError as exc:
            return self._reject(exc)
        environ = self.environ
        environ['wsgi.websocket'] = ws
        environ['wsgi.websocket_version'] = ws.version
        socket_input = environ['wsgi.input'] = _UpgradeInput(self.socket)
        self._run_websocket_app(ws, socket_input)

    def _websocket(self) -> WebSocket:
        """The un-accepted WebSocket of a valid upgrade request. (The request lives on in
        its acceptor only, which the WebSocket drops once used: no frame of the
        connection's life keeps it.)"""
        request = handshake.validate_upgrade_request(self.environ, self.legacy)
        if self.origins is not None:
            check_origin(self.environ, self.origins)
        if request.version == hixie.HIXIE_76:
            request.key3 = self._read_hixie76_key3()
        return self.websocket_class(
            lambda ws, protocols, headers: self._accept(ws, request, protocols, headers),
            environ=self.environ, version=_version(request.version),
            close_timeout=self.close_timeout, max_queue=self.max_queue,
            ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            write_limit=self.write_limit)

    def _run_websocket_app(self, ws: WebSocket, socket_input: _UpgradeInput) -> None:
        result = None
        try:
            try:
                result = self.application(self.environ, self.start_response)
            except StopIteration:
                # gunicorn's way for an app that took ``gunicorn.socket`` to say so
                # (flask-sock's under gunicorn): its workers end the connection quietly.
                if ws._used or self.status is not None or 'gunicorn.socket' not in self.environ:
                    raise
                socket_input.taken = True
            if ws._used:
                ws._serve()
            elif socket_input.taken:
                # The app answered the upgrade on the socket itself (simple-websocket,
                # flask-sock): the connection was its, and what it returns is not written
                # after its WebSocket (a framework's 200 for a view's '').
                self.close_connection = True
                self.result, result = result, None
            else:
                # A refused upgrade ends the connection: what the client sent after its
                # request would be WebSocket frames, not HTTP.
                self.close_connection = True
                self.result, result = result, None
                self.process_result()
        except BaseException as exc:
            ws._abort()
            if ws.ready_state != ws.CONNECTING:
                # The 101 went out: log the app's traceback, but no 500 page on the socket.
                # A send that raced the close (a server going away) is no app error.
                if not isinstance(exc, ConnectionClosed):
                    self.handle_error(*sys.exc_info())
                return
            raise
        finally:
            # The environ and its WebSocket refer to each other: a cycle, with the socket and
            # the protocol objects in it, that only the garbage collector would free. The
            # connection is over, so the environ lets go of the WebSocket and they are freed
            # now, while their memory is still in the cache.
            self.environ.pop('wsgi.websocket', None)
            close = getattr(result, 'close', None) or getattr(self.result, 'close', None)
            self.result = None
            if close is not None:
                close()

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if self.code == 101:
            # The upgrade went out: a framework's answer after the app returned (Flask's
            # 200 for a view's '') is neither sent nor logged in place of the 101.
            return _discard
        return super().start_response(status, headers, exc_info)

    def _accept(self, ws: WebSocket, request: handshake.ServerRequest | hixie.HixieRequest,
                protocols: str | Iterable[str] | None,
                headers: Iterable[tuple[str, str]] | None) -> None:
        protocol = request.select_protocol(protocols)
        extra = list(headers or ())
        if isinstance(request, hixie.HixieRequest):
            self._send_upgrade(*request.response(protocol, extra=extra))
            conn: Connection | HixieConnection = hixie.HixieConnection(
                request.draft, self.max_message_size)
            extension_header = ''
        else:
            extension_header, extension = (
                deflate.negotiate(request.extensions, self.compression) or ('', None))
            response_headers = request.response_headers(protocol, extension_header, extra=extra)
            self._send_upgrade(response_headers)
            conn = Connection(client=False, max_message_size=self.max_message_size,
                              extension=extension)
        ws._attach(self.socket, conn, protocol, extension_header, self._buffered_input())
        # The parsed header fields (about 1 KiB) are let go for the connection's life: the
        # environ keeps their values (HTTP_*), which is where a log finds them
        # (request_headers_from_environ, geventws.gunicorn).
        self.headers = None
        if self.registry is not None:
            self.registry.add(ws)

    def _send_upgrade(self, headers: list[tuple[str, str]],
                      status: str = '101 Switching Protocols', body: bytes = b'') -> None:
        """Write the 101 answer ourselves (with draft-76's 16-byte body) and record it for
        pywsgi's access log."""
        lines = ['HTTP/1.1 %s\r\n' % status]
        lines.extend('%s: %s\r\n' % header for header in headers)
        lines.append('\r\n')
        data = ''.join(lines).encode('latin-1') + body
        sock = self.socket
        send_all(sock, [data])   # no getsockopt per answer, as sendall has
        self.status = status.encode('latin-1')
        self._orig_status = status
        self.code = int(status[:3])
        self.headers_sent = True
        self.response_headers = list(headers)
        self.response_length = len(data)
        self.close_connection = True

    def _read_hixie76_key3(self) -> bytes:
        """The 8 bytes a draft-76 client sends after its headers without a Content-Length:
        already in ``rfile``'s buffer when they came with the headers, or still on the way,
        within what is left of ``handshake_timeout``."""
        limit = self.handshake_timeout
        left = None if limit is None else max(0.0, limit - (time.time() - self.time_start))
        key3 = b''
        with Timeout(left, False):
            try:
                key3 = self.rfile.read(8)
            except OSError:
                pass
        if len(key3) != 8:
            raise HandshakeError('hixie-76 handshake: the 8 bytes after the headers did not '
                                 'arrive within the handshake timeout (%s s)' % limit)
        return key3

    def _buffered_input(self) -> bytes:
        """Bytes that arrived after the request headers: those the first read took with a
        plain head, or those in ``rfile``'s buffer. Taken now, and ``rfile`` closed, so that
        its 8 KiB buffer is freed for the connection's life (the socket stays open; pywsgi
        sees a closed rfile and reads no next request)."""
        rfile, head = self.rfile, self._head
        if head is not None:
            self._head = None
            data = head.rest
        else:
            sock = self.socket
            timeout = sock.gettimeout()
            sock.settimeout(0.0)
            try:
                data = rfile.peek(65536)
                rfile.read(len(data))
            except OSError:
                data = b''
            finally:
                sock.settimeout(timeout)
        rfile.close()
        # The closed file objects (about 400 bytes) go too: a shared closed file stands in
        # for them, and wsgi.input, which has no body to read (an upgrade request announcing
        # one is refused), never reads it; nor does an app hijack an accepted connection.
        self.rfile = self.wsgi_input.rfile = _CLOSED_FILE
        if type(self.environ.get('wsgi.input')) is _UpgradeInput:
            self.environ['wsgi.input'] = _CLOSED_FILE
        return data

    def _reject(self, exc: HandshakeError) -> None:
        """Answer a bad upgrade request with HTTP 400/426 and a one-line reason."""
        body = (exc.reason + '\n').encode('utf-8', 'replace')
        status = {400: '400 Bad Request', 403: '403 Forbidden',
                  426: '426 Upgrade Required'}.get(
            exc.status, '%d Error' % exc.status)  # type: ignore[arg-type, str-format]
        self.close_connection = True
        self.start_response(status, [('Content-Type', 'text/plain; charset=utf-8'),
                                     ('Content-Length', str(len(body))),
                                     ('Connection', 'close')] + list(exc.headers))
        self.write(body)


def _after_websockethandler(cls: type, name: str) -> Any:
    """The method ``name`` that a ``super()`` call in WebSocketHandler reaches for ``cls``."""
    mro = cls.__mro__
    for klass in mro[mro.index(WebSocketHandler) + 1:]:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _refusal(status: str, reason: str) -> tuple[str, bytes]:
    """pywsgi's ``(status code, response)`` of a refused request, with ``reason`` as its
    body: one line (control characters, as the request may bring them, escaped)."""
    body = (' '.join(reason.encode('unicode_escape').decode('ascii').split()) + '\n').encode()
    return status[:3], (b'HTTP/1.1 %s\r\nConnection: close\r\nContent-Type: text/plain; '
                        b'charset=utf-8\r\nContent-Length: %d\r\n\r\n%s'
                        % (status.encode(), len(body), body))


#: What pywsgi's version check can parse (it takes 'HTTP/1' for a bug of its own).
_HTTP_VERSION = re.compile(r'HTTP/\d+\.\d+')


class _HeadTimeout(TimeoutError):
    """A request's head did not arrive within handshake_timeout (its connection is closed
    without an answer)."""


#: What stands in for ``rfile`` once an upgrade took what it held (_buffered_input).
_CLOSED_FILE = io.BytesIO()
_CLOSED_FILE.close()

class _Unread:
    """``rfile`` until the connection's first read (read_requestline): pywsgi only asks it
    whether it is closed. (Shared by all handlers, so it can be neither read nor closed.)"""

    closed = False

    def close(self) -> None:
        pass


_UNREAD = _Unread()

#: The class of the log of a server made with ``log=None`` (a private name of pywsgi's).
_NOOP_LOG = getattr(pywsgi, '_NoopLog', None)

#: The ``wsgi_input`` of a plain upgrade request: no body, nothing to discard.
_NO_BODY = Input(_CLOSED_FILE, None)


class _UpgradeInput:
    """``wsgi.input`` of an upgrade request: no body to read (one announcing a body is
    refused), and the connection's socket where plain pywsgi's input leads to it
    (``.rfile.raw._sock``), for apps that answer the upgrade on the socket themselves
    (simple-websocket, flask-sock, and so engineio without gevent-websocket). Reaching the
    socket marks the request ``taken``: the handler then writes nothing after the app.
    Replaced by a shared closed file once the upgrade is accepted (no object more per
    connection)."""

    __slots__ = ('_socket', 'taken')
    closed = False

    def __init__(self, sock: Socket) -> None:
        self._socket = sock
        self.taken = False

    def read(self, size: int | None = -1) -> bytes:
        return b''

    def readline(self, size: int | None = -1) -> bytes:
        return b''

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        pass

    @property
    def rfile(self) -> _UpgradeInput:
        """pywsgi's ``Input.rfile`` (the file object), and that file's ``raw``: the chain
        ends at the socket all the same."""
        return self

    raw = rfile

    @property
    def _sock(self) -> Socket:
        self.taken = True
        return self._socket


class _Replay(io.RawIOBase):
    """The raw reader under ``rfile`` when pywsgi reads the first request after all: the
    bytes the first read took, then the socket (``_sock``, as a socket file's raw reader
    names it, for apps that take it from ``wsgi.input``)."""

    def __init__(self, data: bytes, sock: Socket) -> None:
        super().__init__()
        self._data = data
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._data
        if not data:
            return self._sock.recv_into(buffer)
        size = min(len(buffer), len(data))
        buffer[:size] = data[:size]
        self._data = data[size:]
        return size


def request_headers_from_environ(environ: Environ) -> dict[str, str]:
    """The request's header fields as a dict, rebuilt from the environ (``HTTP_USER_AGENT``
    gives ``User-Agent``) for an upgraded connection, whose parsed fields were let go."""
    fields = {name[5:].replace('_', '-').title(): value for name, value in environ.items()
              if name.startswith('HTTP_')}
    for name in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
        if environ.get(name):
            fields[name.replace('_', '-').title()] = environ[name]
    return fields


def _discard(data: bytes) -> None:
    """The ``write`` of a response that is not sent."""
