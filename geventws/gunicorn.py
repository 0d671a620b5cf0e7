"""gunicorn worker: ``gunicorn -k geventws.gunicorn.GeventWebSocketWorker -w 2 app:app``.

gunicorn's own ``-k gevent`` worker parses HTTP itself and never upgrades: the app sees a
plain GET with ``Upgrade: websocket`` and no ``wsgi.websocket``. This worker is gunicorn's
``gevent_pywsgi`` worker with ``WebSocketHandler`` in front of gunicorn's handler, so plain
HTTP is served as before (``gunicorn.sock``, ``RAW_URI``, the access log) and upgrades work.

gunicorn settings: ``bind``, ``workers``, ``worker_connections`` (every open WebSocket holds
one of them), ``timeout``, ``certfile``/``keyfile`` (wss) and the access log work as for any
gevent worker. Three more are applied here because gunicorn's pywsgi worker ignores them:

- ``keepalive``: seconds an idle HTTP connection may wait for its next request (0: one
  request per connection): the handler's ``keepalive_timeout``.
- ``forwarded_allow_ips``: X-Forwarded-Proto/-For are believed from these addresses only
  (geventws.io.forwarded).
- ``graceful_timeout``: on SIGTERM (a graceful stop, or the old workers of a SIGHUP reload)
  every open WebSocket is closed with 1001 "going away" at once, and the worker waits up to
  ``graceful_timeout`` for the closing handshakes (geventws.shutdown). SIGINT and SIGQUIT
  remain gunicorn's quick shutdown, which cuts connections.

The server's own options (``max_message_size``, ``max_queue``, ``close_timeout``,
``ping_interval``, ``ping_timeout``, ``write_limit``, ``handshake_timeout``,
``max_request_head``, ``max_header_line``, ``max_headers``, ``legacy``, ``origins``:
geventws.limits.SERVER_OPTIONS, all but ``keepalive_timeout``, which is gunicorn's
``keepalive``) are not gunicorn's, so gunicorn's command line does not know them. Set them in
the config file with a configured worker class,
``worker_class = GeventWebSocketWorker.configure(ping_interval=10, origins=[...])``, or in the
environment as ``GEVENTWS_PING_INTERVAL=10``, ``GEVENTWS_ORIGINS=https://a.example,none``,
``GEVENTWS_LEGACY=off`` (gunicorn's ``--env`` or ``raw_env`` work too); the config file's
values win.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer

from .io.accept import QuietAccept
from .io.handler import WebSocketHandler, request_headers_from_environ
from .limits import SERVER_OPTIONS
from .shutdown import OpenWebSockets
from .speedups import recycle_frame_stacks

if TYPE_CHECKING:
    from types import FrameType


class GunicornWebSocketHandler(WebSocketHandler, PyWSGIHandler):
    """WebSocket upgrades first; gunicorn's environ extras and access log from its handler."""

    def log_request(self) -> None:
        if self.headers is None:
            # An upgraded connection let its parsed header fields go (memory): the access
            # log's %({name}i) atoms get them back from the environ.
            self.headers = request_headers_from_environ(self.environ)
        super().log_request()


class QuietPyWSGIServer(QuietAccept, PyWSGIServer):
    """gunicorn's server, quiet when out of file descriptors (geventws.io.accept)."""


class GeventWebSocketWorker(GeventPyWSGIWorker):
    """``-k geventws.gunicorn.GeventWebSocketWorker``."""

    wsgi_handler = GunicornWebSocketHandler
    #: The connections' options given to ``configure`` (the config file's way).
    options: dict[str, Any] = {}

    @classmethod
    def configure(cls, **options: Any) -> type[GeventWebSocketWorker]:
        """A worker class whose server has these options (``max_queue``, ``ping_interval``,
        ``origins``, ...: ``WebSocketHandler.configure``'s), for a config file's
        ``worker_class``."""
        if 'keepalive_timeout' in options:
            raise TypeError("keepalive_timeout is gunicorn's keepalive setting here")
        unknown = set(options) - set(SERVER_OPTIONS)
        if unknown:
            raise TypeError('unknown server option(s): %s' % ', '.join(sorted(unknown)))
        return type(cls.__name__, (cls,), {'options': {**cls.options, **options}})

    @classmethod
    def setup(cls) -> None:
        """Run by gunicorn in the arbiter as it loads the worker class, before any app is
        imported (``--preload`` too): where gevent-websocket is not installed,
        ``import geventwebsocket`` gives geventws.compat in these processes, so that
        Flask-SocketIO's engine serves its WebSockets through geventws's."""
        from .compat import register
        register()

    @staticmethod
    def environment_options() -> dict[str, Any]:
        """The server's options set as ``GEVENTWS_NAME`` in the environment."""
        options = {}
        for name, parse in SERVER_OPTIONS.items():
            if name == 'keepalive_timeout':
                continue   # gunicorn's keepalive
            value = os.environ.get('GEVENTWS_' + name.upper())
            if value is not None:
                options[name] = parse(value)
        return options

    def init_process(self) -> None:
        # Runs in the worker after the fork; gunicorn's init_process then runs the worker.
        recycle_frame_stacks()   # a greenlet per connection
        self.websockets = OpenWebSockets()
        self.servers: list[Any] = []
        self.wsgi_handler = self.wsgi_handler.configure(
            registry=self.websockets, keepalive_timeout=self.cfg.keepalive,
            forwarded_allow_ips=self.cfg.forwarded_allow_ips,
            **{**self.environment_options(), **self.options})
        super().init_process()

    def server_class(self, *args: Any, **kwargs: Any) -> Any:
        """gunicorn's ``run()`` makes its servers through this; they are kept so that a
        stopping worker stops accepting at once (``run()`` notices only within a second)."""
        server = QuietPyWSGIServer(*args, **kwargs)
        self.servers.append(server)
        return server

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: gunicorn stops accepting and waits for the connections to end; closing
        the WebSockets with 1001 is what makes them end."""
        super().handle_exit(sig, frame)
        gevent.spawn(self._go_away)

    def _go_away(self) -> None:
        for server in self.servers:
            if server.started:   # (one being started as the signal came gets run()'s close)
                server.close()   # the listening socket is shared: the other workers accept
        self.websockets.close_all('server shutting down', self.cfg.graceful_timeout)
