"""A Bottle server adapter with geventws's handler: ``bottle.run(app,
server=GeventWebSocketServer)`` where bottle-websocket's adapter of that name was (its
``websocket`` plugin, which hands a route ``environ['wsgi.websocket']``, works unchanged), and
what Eel starts its server with once put in bottle-websocket's place (README, "Eel and
bottle-websocket")."""
from __future__ import annotations

from typing import Any

from bottle import ServerAdapter
from gevent import pywsgi

from ..io.handler import WebSocketHandler

__all__ = ['GeventWebSocketServer']


class GeventWebSocketServer(ServerAdapter):
    """bottle-websocket's ``GeventWebSocketServer``, on geventws: options given to
    ``bottle.run`` go to gevent's ``WSGIServer`` (``handler_class`` among them, for a
    ``WebSocketHandler.configure(...)``)."""

    def run(self, handler: Any) -> None:
        options = dict(self.options)
        options.setdefault('handler_class', WebSocketHandler)
        if self.quiet:
            options.setdefault('log', None)
        pywsgi.WSGIServer((self.host, self.port), handler, **options).serve_forever()
