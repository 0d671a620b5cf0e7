"""gevent-websocket's ``WebSocketServer``: gevent's ``WSGIServer`` with geventws.compat's
handler, the ``clients`` of its open connections, ``debug`` and ``logger``."""
from __future__ import annotations

import logging
from typing import Any

from gevent.pywsgi import WSGIServer

from .handler import WebSocketHandler

__all__ = ['WebSocketServer']


class WebSocketServer(WSGIServer):
    handler_class = WebSocketHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.debug = kwargs.pop('debug', False)
        self.pre_start_hook = kwargs.pop('pre_start_hook', None)
        self.clients: dict[Any, Any] = {}
        self._logger: logging.Logger | None = None
        super().__init__(*args, **kwargs)

    @property
    def logger(self) -> logging.Logger:
        if self._logger is None:
            self._logger = logging.getLogger('geventws.compat')
            if self.debug and self._logger.level == logging.NOTSET:
                self._logger.setLevel(logging.DEBUG)
        return self._logger
