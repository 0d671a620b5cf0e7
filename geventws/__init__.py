"""geventws: WebSocket for gevent's WSGI server (RFC 6455 and the hixie drafts) and a client."""
from .client import WebSocketClient, connect
from .errors import (ConnectionClosed, HandshakeError, HandshakeTimeout, ProtocolError,
                     UnsupportedOperation, WebSocketError)
from .events import CloseEvent, ErrorEvent, MessageEvent, OpenEvent
from .handler import WebSocketHandler
from .routing import Sockets
from .speedups import speedups_enabled
from .websocket import WebSocket

__version__ = '0.1.0'

__all__ = ['WebSocketHandler', 'WebSocket', 'WebSocketError', 'ProtocolError',
           'HandshakeError', 'ConnectionClosed', 'MessageEvent', 'CloseEvent', 'ErrorEvent',
           'OpenEvent', 'speedups_enabled', 'connect', 'WebSocketClient', 'HandshakeTimeout',
           'UnsupportedOperation', 'Sockets']
