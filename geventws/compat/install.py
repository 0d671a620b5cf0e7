"""``import geventws.compat.install``: the one line that lets a script of its own (one that
builds its ``WSGIServer`` itself) run Flask-SocketIO/engineio on geventws's WebSocket when
gevent-websocket is not installed; put it before the app creates its ``SocketIO``
(geventws.compat.register)."""
from . import register

register()
