"""The fixtures several test modules use: real servers on 127.0.0.1 with free ports, programs
and a browser, always stopped. What they are built from (and every other shared helper) is
in helpers.py; a fixture only one module uses stays in that module.

A gevent server runs in its own OS thread with its own hub (``helpers.ThreadedServer``), so
tests can drive it with ordinary blocking clients written by others (websocket-client,
websockets, aiohttp, node ws) without monkey-patching the test process.

The markers (setup.cfg) name what a test needs beyond this virtualenv: ``browser``,
``proxy``, ``autobahn``, ``network``, ``node``, ``gunicorn`` and ``redis``;
``pytest -m "not browser and not autobahn and not proxy and not network"`` is the quick run.
"""
import signal
import socket
import subprocess
import tempfile

import gevent.socket
import pytest

from geventws.io.websocket import WebSocket
from geventws.protocol import Connection
from helpers import (PYTHON, ROOT, Program, Recorder, Redis, ThreadedServer,
                     TrackingHandler, echo_app, free_port, python_env, require_tool)


@pytest.fixture(autouse=True)
def fresh_hub_clock():
    """Each test starts with the clock of this thread's gevent hub read now. libev reads the
    clock once per loop iteration, and gevent starts some timers from that reading without
    reading it again (``joinall``/``iwait`` timeouts, ``sleep``): after seconds of tests that
    did not run this thread's hub, a ``joinall(timeout=5)`` was due at once and returned
    before the greenlets ran (test_lock, after the Autobahn, benchmark and browser tests)."""
    import gevent
    gevent.get_hub().loop.update_now()


# -- servers in a thread ------------------------------------------------------------------

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


@pytest.fixture
def echo_server(serve):
    return serve(echo_app)


@pytest.fixture
def recorder_server(serve):
    """``recorder_server(app=None, **handler options) -> (server, app)``: ``app`` (a new
    ``Recorder`` by default) served with a ``TrackingHandler`` configured with the options."""
    def start(app=None, **options):
        app = app if app is not None else Recorder()
        server = serve(app, TrackingHandler.configure(**options))
        return server, app
    return start


# -- one end of a socket pair -------------------------------------------------------------

@pytest.fixture
def pair():
    """(server WebSocket on a gevent socket, the peer's plain socket, a client protocol)."""
    ours, peer = socket.socketpair()
    ws = WebSocket()
    ws._attach(gevent.socket.socket(fileno=ours.detach()), Connection())
    yield ws, peer, Connection(client=True)
    ws._terminate(1000, '', True)
    peer.close()


# -- programs -----------------------------------------------------------------------------

@pytest.fixture
def programs(tmp_path):
    """``programs(argv, port, cwd=None, env=None, wait=True, stop_signal=SIGTERM) ->
    Program``; all are stopped at the end of the test."""
    started = []

    def start(argv, port, cwd=None, env=None, wait=True, stop_signal=signal.SIGTERM):
        program = Program(argv, port, str(tmp_path / ('program%d.log' % len(started))),
                          cwd=cwd, env=env, stop_signal=stop_signal)
        started.append(program)
        return program.wait_for_port() if wait else program

    yield start
    for program in started:
        program.stop()


@pytest.fixture
def redis_server(programs, tmp_path):
    """``redis_server(*flags) -> helpers.Redis``, started (and stopped after the test)."""
    return lambda *options: Redis(programs, tmp_path, *options)


@pytest.fixture
def tls_files(tmp_path):
    """``(certfile, keyfile, cafile)``: a trustme CA and its certificate for 127.0.0.1."""
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1')
    paths = [str(tmp_path / name) for name in ('cert.pem', 'key.pem', 'ca.pem')]
    cert.cert_chain_pems[0].write_to_path(paths[0])
    cert.private_key_pem.write_to_path(paths[1])
    ca.cert_pem.write_to_path(paths[2])
    return paths


@pytest.fixture
def chat_server(programs):
    """The chat demo (examples/chat) started with the command of ``make run`` (with
    another port)."""
    port = free_port()
    # --no-print-directory: under `make test` this make is a sub-make, which would add
    # "Entering/Leaving directory" lines
    dry_run = subprocess.run(['make', '--no-print-directory', '-n', 'run', 'PORT=%d' % port],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    command = dry_run.stdout.strip().splitlines()[-1].split()
    assert command[1:] == ['examples/chat/app.py', '--host', '127.0.0.1', '--port', str(port)]
    server = programs([PYTHON, *command[1:]], port, cwd=ROOT, env=python_env())
    server.wait_for_output('chat room at')
    return server


# -- a browser ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def browser():
    """One headless Chromium for the module (flags from ../shared/RECIPES.md); its tests
    are marked ``browser``."""
    require_tool('/usr/bin/chromium', 'headless browser tests')
    require_tool('/usr/bin/chromedriver', 'headless browser tests')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = '/usr/bin/chromium'
    with tempfile.TemporaryDirectory() as profile:
        for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                     '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
                     '--disable-background-networking', '--disable-component-update',
                     '--disable-sync', '--disable-extensions', '--disable-default-apps',
                     '--mute-audio', '--disable-quic', '--user-data-dir=' + profile):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=options)
        driver.set_script_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()
