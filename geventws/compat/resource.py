"""gevent-websocket's ``Resource`` (one WSGI app routing paths, by regular expression, to
``WebSocketApplication`` classes and plain WSGI apps) and ``WebSocketApplication`` (a
connection's ``on_open``/``on_message``/``on_close``)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import WebSocketError
from .protocols.base import BaseProtocol

if TYPE_CHECKING:
    from .._types import Environ
    from .websocket import WebSocket

__all__ = ['WebSocketApplication', 'Resource']


class WebSocketApplication:
    """Subclass it and set ``on_open``, ``on_message(message)``, ``on_close(reason)``; one
    instance serves one connection (``self.ws``). The default ``on_message`` echoes."""

    protocol_class = BaseProtocol

    def __init__(self, ws: WebSocket) -> None:
        self.protocol = self.protocol_class(self)
        self.ws = ws

    def handle(self) -> None:
        """Run the connection: ``on_open``, then ``on_message`` for each message, then at the
        close ``on_message(None)`` once (as gevent-websocket delivers it) and ``on_close``;
        the loop ends there whatever ``on_message`` did with the None."""
        self.protocol.on_open()
        while True:
            try:
                message = self.ws.receive()
            except WebSocketError:
                self.protocol.on_close()
                break
            if message is None:
                try:
                    self.protocol.on_message(None)   # (sending it raises: closed)
                except WebSocketError:
                    pass
                self.protocol.on_close()
                break
            self.protocol.on_message(message)

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_message(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self.ws.send(message, **kwargs)

    @classmethod
    def protocol_name(cls) -> str:
        return cls.protocol_class.PROTOCOL_NAME


class Resource:
    """``Resource({'^/chat': ChatApplication, '^/.*': wsgi_app})``: the first pattern that
    matches the path (``re.match``) and is of the request's kind (a ``WebSocketApplication``
    class for a WebSocket, anything else for plain HTTP) serves it; no match is 404."""

    def __init__(self, apps: Any = None) -> None:
        self.apps: Iterable[tuple[str, Any]] = apps if apps else []
        if isinstance(apps, dict):
            self.apps = list(apps.items())   # (a dict keeps its order)

    def _is_websocket_app(self, app: Any) -> bool:
        return isinstance(app, type) and issubclass(app, WebSocketApplication)

    def _app_by_path(self, environ_path: str, is_websocket_request: bool) -> Any:
        for path, app in self.apps:
            if re.match(path, environ_path):
                if is_websocket_request == self._is_websocket_app(app):
                    return app
        return None

    def app_protocol(self, path: str) -> str:
        app = self._app_by_path(path, True)
        return app.protocol_name() if hasattr(app, 'protocol_name') else ''

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Any:
        is_websocket_call = 'wsgi.websocket' in environ
        current_app = self._app_by_path(environ['PATH_INFO'], is_websocket_call)
        if current_app is None:
            start_response('404 Not Found', [('Content-Type', 'text/plain')])
            return [b'No app for this path\n']
        if not is_websocket_call:
            return current_app(environ, start_response)
        ws = environ['wsgi.websocket']
        protocol = self.app_protocol(environ['PATH_INFO'])
        if protocol:   # chosen if the client asked for it (RFC 6455 4.2.2)
            ws.accept(protocols=[protocol])
        app = current_app(ws)
        app.ws = ws
        app.handle()
        return []
