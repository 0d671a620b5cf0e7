"""geventws: WebSocket for gevent's WSGI server (RFC 6455 and the hixie drafts) and a client.

The package has three layers (``../shared/DESIGN.md``, the README's "Layout"):

- ``geventws.protocol``: the sans-I/O protocol core; imports without gevent.
- ``geventws.io``: the I/O layer on gevent: ``WebSocket``, ``WebSocketHandler``, the client.
- the deployment adapters here at the top: ``serve`` (``python -m geventws serve``),
  ``gunicorn`` (the worker class), ``shutdown``, ``routing`` (``Sockets``), and
  ``compat`` (gevent-websocket's API, and the stand-in that Flask-SocketIO's engine finds).

``errors`` and ``limits`` are shared by all three; ``speedups`` chooses between the compiled
modules and their pure-Python twins.

Importing ``geventws`` changes nothing in the interpreter and imports no gevent: the names
below that need gevent are imported when first used.
"""
import importlib
from typing import TYPE_CHECKING, Any, List

from .errors import (ConnectionClosed, HandshakeError, HandshakeTimeout, ProtocolError,
                     UnsupportedOperation, WebSocketError)
from .protocol.events import CloseEvent, ErrorEvent, MessageEvent, OpenEvent
from .speedups import recycle_frame_stacks, speedups_enabled

if TYPE_CHECKING:
    from .io.broadcast import broadcast
    from .io.client import WebSocketClient, connect
    from .io.handler import WebSocketHandler
    from .io.websocket import WebSocket
    from .routing import Sockets

__version__ = '0.1.0'

#: The public names that need gevent, and the module each comes from.
_LAZY = {'WebSocketHandler': '.io.handler', 'WebSocket': '.io.websocket',
         'WebSocketClient': '.io.client', 'connect': '.io.client', 'Sockets': '.routing',
         'broadcast': '.io.broadcast'}

__all__ = ['WebSocketHandler', 'WebSocket', 'WebSocketError', 'ProtocolError',
           'HandshakeError', 'ConnectionClosed', 'MessageEvent', 'CloseEvent', 'ErrorEvent',
           'OpenEvent', 'speedups_enabled', 'connect', 'WebSocketClient', 'HandshakeTimeout',
           'UnsupportedOperation', 'Sockets', 'recycle_frame_stacks', 'broadcast']


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))
