"""Going away: when a server stops, its open WebSockets are closed with 1001, not cut.

A server that just exits drops its connections: clients see 1006 and cannot tell a crash from
a restart. RFC 6455 7.4.1 defines 1001 "going away" for this. ``WebSocket.close()`` sends it
after everything the app already sent, and keeps delivering what the client sent before it
saw the close until the client's close arrives, so no message on either side is lost.

The handler fills the registry (``WebSocketHandler.configure(registry=OpenWebSockets())``);
the server calls ``close_all()`` when it is told to stop (the gunicorn worker on SIGTERM,
``geventws.serve`` on SIGTERM and SIGINT).
"""
import weakref

import gevent
from gevent.pool import Group

from .errors import WebSocketError
from .io.handler import WebSocketHandler

GOING_AWAY = 1001


class OpenWebSockets:
    """The open WebSockets of one server process (weakly held: a closed one is forgotten)."""

    def __init__(self):
        self._open = weakref.WeakSet()
        self._closers = Group()
        self._reason = None   # set once the server is stopping

    def add(self, ws):
        if self._reason is None:
            self._open.add(ws)
        else:   # it opened while the server was stopping
            self._closers.spawn(_close, ws, self._reason)

    def __len__(self):
        return len(self._open)

    def close_all(self, reason='server shutting down', timeout=None):
        """Close every open WebSocket with 1001, and any that opens from now on; wait up to
        ``timeout`` seconds (None: no limit) for the closing handshakes."""
        self._reason = reason
        for ws in list(self._open):
            self._closers.spawn(_close, ws, reason)
        self._closers.join(timeout)


def _close(ws, reason):
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
    waiting = None
    stopping = False

    def read_requestline(self):
        if self.stopping:
            return ''   # pywsgi closes the connection
        current = gevent.getcurrent()
        self.waiting.add(current)
        try:
            return super().read_requestline()
        finally:
            self.waiting.discard(current)

    @classmethod
    def stop_waiting(cls):
        cls.stopping = True
        gevent.killall(list(cls.waiting), timeout=1)
