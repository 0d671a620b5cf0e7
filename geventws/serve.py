"""Run any WSGI app with WebSocket support on gevent's WSGIServer::

    python -m geventws serve module:app --host 127.0.0.1 --port 8000 [--certfile F --keyfile F]

The process is monkey-patched before the app is imported, as gunicorn's gevent workers do, so
that blocking libraries in the app yield to the other connections. SIGTERM and SIGINT stop it
gracefully: no new connections, open WebSockets closed with 1001 (geventws.shutdown), then up
to ``--graceful-timeout`` seconds for the requests still running. Behind a reverse proxy,
``--forwarded-allow-ips`` names the proxies whose X-Forwarded-Proto/-For are believed
(geventws.io.forwarded); nobody's are by default. Where gevent-websocket is not installed,
``import geventwebsocket`` gives geventws.compat in this process (geventws.compat.register),
so that Flask-SocketIO's engine serves its WebSockets through geventws's.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Any, Sequence

from . import limits
from .limits import SERVER_OPTIONS
from .speedups import recycle_frame_stacks

GRACEFUL_TIMEOUT = 10.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='geventws serve', description='Run a WSGI app with WebSocket support.')
    parser.add_argument('app', metavar='module:app',
                        help='the WSGI app: a module and a name in it (default name: app)')
    parser.add_argument('--host', default='127.0.0.1', help='address to bind (127.0.0.1)')
    parser.add_argument('--port', type=int, default=8000, help='port to bind (8000; 0: any)')
    parser.add_argument('--certfile', help='PEM certificate: serve https and wss')
    parser.add_argument('--keyfile', help='PEM private key of --certfile')
    parser.add_argument('--forwarded-allow-ips', metavar='ADDRESSES',
                        help="proxies trusted with X-Forwarded-Proto/-For: comma-separated "
                             "addresses or networks, or '*' (default: none)")
    parser.add_argument('--graceful-timeout', type=float, default=GRACEFUL_TIMEOUT,
                        help='seconds to let connections finish on SIGTERM/SIGINT (%(default)s)')
    parser.add_argument('--max-connections', type=int, metavar='N',
                        help='connections served at once (WebSockets included); more wait '
                             'in the listen backlog (default: no limit)')
    parser.add_argument('--no-legacy', dest='legacy', action='store_false',
                        default=argparse.SUPPRESS,
                        help='answer the hixie drafts (draft-75/76) with 426: RFC 6455 only')
    parser.add_argument('--origins', type=SERVER_OPTIONS['origins'], metavar='ORIGINS',
                        default=argparse.SUPPRESS,
                        help="Origins allowed to open WebSockets, comma-separated, exact "
                             "('none': requests without Origin); others get 403 "
                             "(default: any)")
    for name, parse in SERVER_OPTIONS.items():
        if name in ('legacy', 'origins'):
            continue
        parser.add_argument('--' + name.replace('_', '-'), type=parse, dest=name,
                            default=argparse.SUPPRESS, metavar='VALUE',
                            help='%s (default %s%s)' % (
                                name.replace('_', ' '), getattr(limits, name.upper()),
                                '; none: off' if parse not in (int, float) else ''))
    args = parser.parse_args(argv)
    options = {name: getattr(args, name) for name in SERVER_OPTIONS if hasattr(args, name)}
    if bool(args.certfile) != bool(args.keyfile):
        parser.error('--certfile and --keyfile go together')

    from gevent import monkey
    monkey.patch_all()
    from .compat import register
    register()   # Flask-SocketIO (engineio) then serves its WebSockets through ours
    try:
        app = load_app(args.app)
    except (ImportError, AttributeError, ValueError) as exc:
        parser.error('cannot load %s: %s' % (args.app, exc))
    server = make_server(app, args.host, args.port, certfile=args.certfile,
                         keyfile=args.keyfile, forwarded_allow_ips=args.forwarded_allow_ips,
                         options=options, max_connections=args.max_connections)
    recycle_frame_stacks()   # this process is a server: a greenlet per connection
    print('serving %s at %s' % (args.app, ' and '.join(urls(server))), flush=True)
    serve_until_stopped(server, args.graceful_timeout)
    return 0


def load_app(spec: str) -> Any:
    """``'package.module:name'`` (``name`` may be dotted) -> the object; the current
    directory is importable, as with gunicorn."""
    module_name, _, attribute = spec.partition(':')
    if not module_name:
        raise ValueError('expected module:app')
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    target = importlib.import_module(module_name)
    for name in (attribute or 'app').split('.'):
        target = getattr(target, name)
    return target


def make_server(app: Any, host: str = '127.0.0.1', port: int = 8000,
                certfile: str | None = None, keyfile: str | None = None,
                forwarded_allow_ips: str | Sequence[str] | None = None,
                options: dict[str, Any] | None = None, max_connections: int | None = None,
                **server_kw: Any) -> Any:
    """A bound, not yet serving, ``WSGIServer`` with a ``WebSocketHandler`` (a
    ``geventws.shutdown.StoppableHandler``) that ``serve_until_stopped`` can stop gracefully;
    ``options``: the connections' (``WebSocketHandler.configure``); ``max_connections``: how
    many are served at once (gevent's server stops accepting while its pool is full, so that
    the others wait in the kernel's listen backlog)."""
    from gevent.pool import Pool
    from gevent.pywsgi import WSGIServer

    from .io.accept import QuietAccept
    from .shutdown import OpenWebSockets, StoppableHandler

    class Server(QuietAccept, WSGIServer):
        """gevent's, quiet when out of file descriptors."""

    handler = StoppableHandler.configure(registry=OpenWebSockets(), waiting=set(),
                                         forwarded_allow_ips=forwarded_allow_ips,
                                         **(options or {}))
    server_kw.setdefault('spawn', Pool(max_connections))   # stopping waits for its greenlets
    if certfile:
        server_kw.update(certfile=certfile, keyfile=keyfile)
    server = Server((host, port), app, handler_class=handler, **server_kw)
    server.init_socket()
    return server


def urls(server: Any) -> list[str]:
    """The page and WebSocket URLs of a bound server, for the banner."""
    secure = server.ssl_enabled
    host, port = server.address[:2]
    host = '[%s]' % host if ':' in host else host
    return ['%s://%s:%d/' % (scheme, host, port)
            for scheme in (('https', 'wss') if secure else ('http', 'ws'))]


def serve_until_stopped(server: Any, graceful_timeout: float = GRACEFUL_TIMEOUT) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (see the module docstring); a
    second signal kills the connections still running at once."""
    import gevent
    from gevent.event import Event

    stop_requested, hurry = Event(), Event()

    def on_signal() -> None:
        (hurry if stop_requested.is_set() else stop_requested).set()

    handlers = [gevent.signal_handler(signum, on_signal)
                for signum in (signal.SIGTERM, signal.SIGINT)]
    try:
        server.start()
        stop_requested.wait()
        server.close()   # no new connections; those being served go on
        server.handler_class.stop_waiting()
        running = len(server.pool)
        if running:
            print('stopping: waiting up to %gs for %d connection(s); signal again to stop now'
                  % (graceful_timeout, running), file=sys.stderr, flush=True)
        closing = gevent.spawn(server.handler_class.registry.close_all,
                               timeout=graceful_timeout)
        ending = gevent.spawn(server.pool.join)
        gevent.wait([ending, hurry], count=1, timeout=graceful_timeout)
        closing.kill()
        ending.kill()
        server.stop(timeout=0)   # what is still running is killed
    finally:
        for handler in handlers:
            handler.cancel()


if __name__ == '__main__':
    sys.exit(main())
