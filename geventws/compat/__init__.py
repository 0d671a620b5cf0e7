"""gevent-websocket's API on geventws, a migration aid: an app written for gevent-websocket
runs on geventws's engine with its ``geventwebsocket`` imports spelled ``geventws.compat``
(``from geventws.compat import WebSocketServer, WebSocketApplication, Resource``;
``geventws.compat.handler.WebSocketHandler``, ``.websocket``, ``.exceptions``, ``.resource``,
``.server``, ``.protocols.base`` as in gevent-websocket's layout).

Libraries that look for gevent-websocket by importing it (python-engineio, and so
Flask-SocketIO, which then serve their WebSockets through ``environ['wsgi.websocket']``)
find this package under that name in processes that ask for it: ``register()`` (or one line,
``import geventws.compat.install``) makes ``import geventwebsocket`` give these modules, but
only where gevent-websocket itself is not installed; a real install is never shadowed.
``python -m geventws serve`` and the gunicorn worker register it; ``import geventws`` and
``import geventws.compat`` do not, so other processes see no ``geventwebsocket`` module.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING, Any, List

from .exceptions import FrameTooLargeException, ProtocolError, WebSocketError

if TYPE_CHECKING:
    from .handler import WebSocketHandler
    from .resource import Resource, WebSocketApplication
    from .server import WebSocketServer

#: gevent-websocket's release whose API this follows.
VERSION = (0, 10, 1, 'final', 0)

#: The opcodes, as gevent-websocket's ``WebSocket.OPCODE_*`` (also there, on ours).
OPCODE_CONTINUATION = 0x00
OPCODE_TEXT = 0x01
OPCODE_BINARY = 0x02
OPCODE_CLOSE = 0x08
OPCODE_PING = 0x09
OPCODE_PONG = 0x0a

#: What ``import geventwebsocket...`` gives once registered: the module of that name here.
MODULES = ('', '.exceptions', '.websocket', '.handler', '.resource', '.server', '.protocols',
           '.protocols.base', '.logging')

#: The names that need gevent, imported when first used (as ``geventws`` does).
_LAZY = {'WebSocketServer': '.server', 'WebSocketApplication': '.resource',
         'Resource': '.resource', 'WebSocketHandler': '.handler', 'WebSocket': '.websocket'}

__all__ = ['WebSocketApplication', 'Resource', 'WebSocketServer', 'WebSocketError',
           'ProtocolError', 'FrameTooLargeException', 'WebSocketHandler', 'get_version',
           'register']


def get_version(*args: Any, **kwargs: Any) -> str:
    """gevent-websocket's version string of the API followed here."""
    return '%d.%d.%d' % VERSION[:3]


def register() -> bool:
    """Make ``import geventwebsocket`` (and its submodules) give this package, unless
    gevent-websocket is installed; True when these modules are what it gives now."""
    present = sys.modules.get('geventwebsocket')
    if present is not None:
        return present is sys.modules[__name__]
    try:
        installed = importlib.util.find_spec('geventwebsocket') is not None
    except (ImportError, ValueError):
        installed = False
    if installed:
        return False
    for suffix in MODULES:
        sys.modules['geventwebsocket' + suffix] = importlib.import_module(__name__ + suffix)
    return True


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))
