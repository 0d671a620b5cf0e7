"""Shared fixtures: real servers on 127.0.0.1 with free ports, always stopped.

A gevent server runs in its own OS thread with its own hub (created inside that thread, see
../shared/RECIPES.md), so tests can drive it with ordinary blocking clients written by others
(websocket-client, websockets, aiohttp, node ws) without monkey-patching the test process.
"""
import contextlib
import os
import shutil
import socket
import threading

import pytest

CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


def require_tool(path_or_name, why=''):
    """Skip when a tool is missing on a developer machine; fail under CI=true, where a
    missing tool means the CI install is broken (a skipped test hides that)."""
    found = shutil.which(path_or_name) or (os.path.exists(path_or_name) and path_or_name)
    if found:
        return found
    message = '%s not installed%s' % (path_or_name, ' (%s)' % why if why else '')
    if CI:
        pytest.fail(message + ' under CI=true')
    pytest.skip(message)


class ThreadedServer:
    """A gevent WSGIServer serving ``app`` from its own thread."""

    def __init__(self, app, handler_class=None, **server_kw):
        from geventws import WebSocketHandler
        self.app = app
        self.handler_class = handler_class or WebSocketHandler
        self.server_kw = server_kw
        self.server = None
        self.hub = None
        self.port = None
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import gevent
        from gevent.pywsgi import WSGIServer
        try:
            self.hub = gevent.get_hub()
            self.server = WSGIServer(('127.0.0.1', 0), self.app, handler_class=self.handler_class,
                                     log=None, error_log=None, **self.server_kw)
            self.server.start()
            self.port = self.server.server_port
        except BaseException as exc:  # report start-up failures to the test
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.server.serve_forever()

    def start(self):
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def call(self, func, *args):
        """Run ``func`` inside the server's thread (its hub) and return its result."""
        result = {}
        done = threading.Event()

        def run():
            try:
                result['value'] = func(*args)
            except BaseException as exc:
                result['error'] = exc
            done.set()

        self.hub.loop.run_callback_threadsafe(lambda: __import__('gevent').spawn(run))
        if not done.wait(30):
            raise TimeoutError('server thread did not answer')
        if 'error' in result:
            raise result['error']
        return result['value']

    def stop(self):
        if self.server is not None and self._thread.is_alive():
            self.hub.loop.run_callback_threadsafe(lambda: self.server.stop(timeout=1))
            self._thread.join(10)

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/' % self.port


@pytest.fixture(autouse=True)
def fresh_hub_clock():
    """Each test starts with the clock of this thread's gevent hub read now. libev reads the
    clock once per loop iteration, and gevent starts some timers from that reading without
    reading it again (``joinall``/``iwait`` timeouts, ``sleep``): after seconds of tests that
    did not run this thread's hub, a ``joinall(timeout=5)`` was due at once and returned
    before the greenlets ran (test_lock, after the Autobahn, benchmark and browser tests)."""
    import gevent
    gevent.get_hub().loop.update_now()


@pytest.fixture
def serve():
    """``serve(app, handler_class=None, **WSGIServer kwargs) -> ThreadedServer`` (started)."""
    servers = []

    def start(app, handler_class=None, **kw):
        server = ThreadedServer(app, handler_class, **kw).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def echo_app(environ, start_response):
    """Echo every message back with its type; plain HTTP gets 'Hello'."""
    ws = environ.get('wsgi.websocket')
    if ws is None:
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'Hello']
    for message in ws:
        ws.send(message)
    return []


@pytest.fixture
def echo_server(serve):
    return serve(echo_app)


def free_port():
    with contextlib.closing(socket.socket()) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
