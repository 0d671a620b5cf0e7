"""``BaseProtocol``: what a ``WebSocketApplication``'s events go through (gevent-websocket's
hook for protocols such as WAMP, which geventws.compat does not provide)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..resource import WebSocketApplication


class BaseProtocol:
    PROTOCOL_NAME = ''

    def __init__(self, app: WebSocketApplication) -> None:
        self._app = app

    def on_open(self) -> None:
        self.app.on_open()

    def on_message(self, message: Any) -> None:
        self.app.on_message(message)

    def on_close(self, reason: Any = None) -> None:
        self.app.on_close(reason)

    @property
    def app(self) -> WebSocketApplication:
        if self._app:
            return self._app
        raise Exception('No application coupled')

    @property
    def server(self) -> Any:
        ws = getattr(self.app, 'ws', None)
        return None if ws is None else ws.handler.server

    @property
    def handler(self) -> Any:
        ws = getattr(self.app, 'ws', None)
        return None if ws is None else ws.handler
