"""gevent-websocket's ``WebSocketHandler``: geventws's, whose WebSockets also know their
``handler`` (``ws.handler``), with ``handler.websocket``, the server's ``clients`` (every
open connection, ``{address: Client}``, as gevent-websocket keeps them on any server it
serves) and ``handler.active_client``."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

from gevent.pywsgi import WSGIHandler

from ..io.handler import WebSocketHandler as _WebSocketHandler
from .websocket import WebSocket

if TYPE_CHECKING:
    from ..io.handler import _UpgradeInput
    from ..io.websocket import WebSocket as _WebSocket
    from ..protocol import handshake, hixie

__all__ = ['WebSocketHandler', 'Client']


class Client:
    """One entry of ``server.clients``: the peer's address and its WebSocket."""

    def __init__(self, address: Any, ws: WebSocket) -> None:
        self.address = address
        self.ws = ws


class WebSocketHandler(_WebSocketHandler):
    websocket_class = WebSocket
    #: The connection's WebSocket while it runs (gevent-websocket's ``handler.websocket``).
    websocket: WebSocket | None = None

    @property
    def logger(self) -> logging.Logger:
        return getattr(self.server, 'logger', None) or logging.getLogger('geventws.compat')

    @property
    def active_client(self) -> Client:
        return self.server.clients[self.client_address]

    def run_application(self) -> None:
        # A server's ``pre_start_hook(handler)`` that answers true has the request served
        # as plain WSGI, WebSocket or not (gevent-websocket's hook).
        hook = getattr(self.server, 'pre_start_hook', None)
        if hook is not None and hook(self):
            return WSGIHandler.run_application(self)
        return super().run_application()

    def _run_websocket_app(self, ws: _WebSocket, socket_input: _UpgradeInput) -> None:
        ws.handler = self  # type: ignore[attr-defined]   # (our websocket_class's)
        self.websocket = ws  # type: ignore[assignment]
        try:
            super()._run_websocket_app(ws, socket_input)
        finally:
            clients = getattr(self.server, 'clients', None) or {}
            client = clients.get(self.client_address)
            if client is not None and client.ws is ws:   # (never accepted: not there)
                del clients[self.client_address]
            self.websocket = None

    def _accept(self, ws: _WebSocket, request: handshake.ServerRequest | hixie.HixieRequest,
                protocols: str | Iterable[str] | None,
                headers: Iterable[tuple[str, str]] | None) -> None:
        super()._accept(ws, request, protocols, headers)
        # In ``server.clients`` once open, as gevent-websocket lists them.
        server = self.server
        if getattr(server, 'clients', None) is None:
            server.clients = {}
        server.clients[self.client_address] = Client(self.client_address,
                                                     ws)  # type: ignore[arg-type]
