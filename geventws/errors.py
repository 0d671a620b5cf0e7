"""The one exception hierarchy of geventws.

``WebSocketError`` keeps the name gevent-websocket users already catch, so code written for it
keeps working; everything geventws raises about the WebSocket protocol derives from it. It is
an ``OSError`` (``socket.error``), as gevent-websocket's is: loops written ``except
socket.error`` around a connection's reads and writes catch a closed connection as they did.
"""
from typing import Iterable


class WebSocketError(OSError):
    """Base class of every WebSocket-level error (the gevent-websocket name and base)."""


class ProtocolError(WebSocketError):
    """The peer broke the protocol; ``code`` is the close code we answer with (RFC 6455 7.4.1).

    1002 for framing errors, 1007 for invalid UTF-8 or payload data, 1009 for a message over
    the size limit.
    """

    def __init__(self, reason: str, code: int = 1002) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    Server side it carries the HTTP ``status`` we answer with (400 or 426) and extra response
    ``headers``; client side, the status and headers the server answered with.
    """

    def __init__(self, reason: str, status: int | None = 400,
                 headers: Iterable[tuple[str, str]] = (), body: bytes = b'') -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = list(headers)
        self.body = body


class ConnectionClosed(WebSocketError):
    """The connection is closed (or closing): nothing more can be sent."""

    def __init__(self, code: int = 1006, reason: str = '') -> None:
        super().__init__('connection closed: %s %s' % (code, reason) if reason else
                         'connection closed: %s' % code)
        self.code = code
        self.reason = reason


class HandshakeTimeout(HandshakeError, TimeoutError):
    """Client side: the server took the TCP connection but did not finish the opening
    handshake in time. Also a ``TimeoutError``, so that ``except TimeoutError`` catches a
    slow server whether it was slow to connect or slow to answer."""


class UnsupportedOperation(WebSocketError):
    """The connection's protocol version has no such thing: binary messages and pings on a
    draft-75/76 (hixie) connection, whose only frames are text."""
