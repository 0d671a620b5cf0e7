"""gevent-websocket's ``WebSocket`` members on geventws's: ``handler``, ``current_app``,
``read_message``, ``send_frame``, ``logger``, the ``OPCODE_*`` constants, and ``receive()``
raising ``WebSocketError`` when asked again after it gave None for the close (gevent-websocket
does: loops that skip None end there instead of spinning)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError, UnsupportedOperation, WebSocketError
from ..io.websocket import WebSocket as _WebSocket
from . import (OPCODE_BINARY, OPCODE_CLOSE, OPCODE_CONTINUATION, OPCODE_PING, OPCODE_PONG,
               OPCODE_TEXT)

if TYPE_CHECKING:
    from .._types import Data, Payload

__all__ = ['WebSocket', 'MSG_ALREADY_CLOSED', 'MSG_CLOSED', 'MSG_SOCKET_DEAD']

MSG_SOCKET_DEAD = 'Socket is dead'
MSG_ALREADY_CLOSED = 'Connection is already closed'
MSG_CLOSED = 'Connection closed'

_logger = logging.getLogger('geventws.compat')


class _NoApp:
    """``current_app`` when the server's application has none (gevent-websocket's stand-in)."""

    def on_close(self, *args: Any) -> None:
        pass


class WebSocket(_WebSocket):
    """geventws's ``WebSocket`` with gevent-websocket's members besides (the handler of
    geventws.compat.handler makes these)."""

    OPCODE_CONTINUATION = OPCODE_CONTINUATION
    OPCODE_TEXT = OPCODE_TEXT
    OPCODE_BINARY = OPCODE_BINARY
    OPCODE_CLOSE = OPCODE_CLOSE
    OPCODE_PING = OPCODE_PING
    OPCODE_PONG = OPCODE_PONG

    #: The ``WebSocketHandler`` serving the connection (set by it).
    handler: Any = None
    #: ``receive()`` gave None for the close already (set then).
    _close_reported = False

    @property
    def current_app(self) -> Any:
        """The server application's ``current_app`` where it has one (gevent-websocket looks
        there), or an object whose ``on_close`` does nothing."""
        server = getattr(self.handler, 'server', None)
        app = getattr(getattr(server, 'application', None), 'current_app', None)
        return _NoApp() if app is None else app

    @property
    def logger(self) -> logging.Logger:
        return getattr(self.handler, 'logger', None) or _logger

    def receive(self) -> Data | None:
        message = super().receive()
        if message is None:
            if self._close_reported:
                raise WebSocketError(MSG_ALREADY_CLOSED)
            self._close_reported = True
        return message

    def read_message(self) -> Data | None:
        """The next message, or None at the close (gevent-websocket's lower-level read; ours
        answers pings and the close for it either way)."""
        return super().receive()

    def send_frame(self, message: Payload, opcode: int) -> None:
        """Send one frame of ``opcode`` with ``message`` as its payload: text and binary as a
        whole message, ping and pong, or a close (its payload's code and reason)."""
        if opcode == OPCODE_TEXT:
            self.send(message if isinstance(message, str)
                      else bytes(message).decode('utf-8'))
        elif opcode == OPCODE_BINARY:
            self.send(message.encode('utf-8') if isinstance(message, str) else message,
                      binary=True)
        elif opcode == OPCODE_PING:
            self.ping(message)
        elif opcode == OPCODE_PONG:
            self._send_pong(message.encode('utf-8') if isinstance(message, str)
                            else bytes(message))
        elif opcode == OPCODE_CLOSE:
            payload = message.encode('utf-8') if isinstance(message, str) else bytes(message)
            code = int.from_bytes(payload[:2], 'big') if len(payload) >= 2 else 1000
            self.close(code, payload[2:].decode('utf-8', 'replace'))
        else:
            raise ProtocolError('cannot send a lone frame of opcode %#x' % opcode)

    def _send_pong(self, payload: bytes) -> None:
        self._ensure_open()
        self._raise_if_closed()
        send_pong = getattr(self._conn, 'send_pong', None)
        if send_pong is None:
            raise UnsupportedOperation('this protocol version has no pong')
        with self._send_lock:
            self._write(send_pong(payload))
