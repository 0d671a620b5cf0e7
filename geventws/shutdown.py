"""Going away: when a server stops, its open WebSockets are closed with 1001, not cut.

A server that just exits drops its connections: clients see 1006 and cannot tell a crash from
a restart. RFC 6455 7.4.1 defines 1001 "going away" for this. ``WebSocket.close()`` sends it
after everything the app already sent, and keeps delivering what the client sent before it
saw the close until the client's close arrives, so no message on either side is lost.

The handler fills the registry (``WebSocketHandler.configure(registry=OpenWebSockets())``);
the server calls ``close_all()`` when it is told to stop (the gunicorn worker on SIGTERM,
``geventws.serve`` on SIGTERM and SIGINT).
"""
from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, ClassVar, Iterator

import gevent
from gevent.pool import Group

from .errors import WebSocketError
from .io.handler import WebSocketHandler

if TYPE_CHECKING:
    from greenlet import greenlet

    from .io.websocket import WebSocket

GOING_AWAY = 1001


class OpenWebSockets:
    """The open WebSockets of one server process (weakly held: a closed one is forgotten)."""

    def __init__(self) -> None:
        self._open: weakref.WeakSet[WebSocket] = weakref.WeakSet()
        self._closers = Group()
        self._reason: str | None = None   # set once the server is stopping

    def add(self, ws: WebSocket) -> None:
        if self._reason is None:
            self._open.add(ws)
        else:   # it opened while the server was stopping
            self._closers.spawn(_close, ws, self._reason)

    def __len__(self) -> int:
        return len(self._open)

    def close_all(self, reason: str = 'server shutting down',
                  timeout: float | None = None) -> None:
        """Close every open WebSocket with 1001, and any that opens from now on; wait up to
        ``timeout`` seconds (None: no limit) for the closing handshakes."""
        self._reason = reason
        for ws in list(self._open):
            self._closers.spawn(_close, ws, reason)
        self._closers.join(timeout)


def _close(ws: WebSocket, reason: str) -> None:
    try:
        ws.close(GOING_AWAY, reason)
    except WebSocketError:
        pass   # it broke meanwhile: nothing left to close politely


class StoppableHandler(WebSocketHandler):
    """A keep-alive connection between two requests has nothing to finish: a stopping
    server ends it at once (``stop_waiting()``) rather than let it hold up the graceful
    timeout, as browsers keep such connections open. (gunicorn's worker has its
    ``keepalive`` limit for this.)"""

    #: The greenlets reading a request line: ``configure(waiting=set())``.
    waiting: ClassVar[set[greenlet]] = None  # type: ignore[assignment]
    stopping = False

    def read_requestline(self) -> str:
        if self.stopping:
            return ''   # pywsgi closes the connection
        with self._waiting():
            return super().read_requestline()

    def _next_request_begins(self) -> bool:
        if self.stopping:
            return False
        with self._waiting():
            return super()._next_request_begins()

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """While the connection waits for a request, ``stop_waiting()`` may end it."""
        current = gevent.getcurrent()
        self.waiting.add(current)
        try:
            yield
        finally:
            self.waiting.discard(current)

    @classmethod
    def stop_waiting(cls) -> None:
        cls.stopping = True
        gevent.killall(list(cls.waiting), timeout=1)
