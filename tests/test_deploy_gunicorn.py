"""gunicorn with ``-k geventws.gunicorn.GeventWebSocketWorker`` and two workers, serving the
Flask and Bottle apps of tests/apps: WebSocket and plain HTTP on one port, gunicorn's
settings, graceful shutdown with 1001 and SIGHUP reloads, the frame-stack cache installed."""
import json
import os
import signal
import socket
import ssl
import time

import pytest
import websocket

from helpers import (APPS_DIR, PYTHON, ROOT, SERVER_OPTIONS, assert_echoes,
                     assert_frame_stacks_as_expected, assert_server_options, free_port,
                     http_get, python_env, read_until_close, ws_connect)

pytestmark = pytest.mark.gunicorn

WORKER = 'geventws.gunicorn.GeventWebSocketWorker'
APPS = ['flask_app:app', 'bottle_app:app']
# What the tests that are not about stopping stop gunicorn with. A worker still booting when
# a signal comes misses it (gunicorn installs its handlers late): the master then waits for
# the graceful timeout, kept short here.
QUICK_STOP = signal.SIGQUIT


@pytest.fixture
def gunicorn(programs):
    """``gunicorn(app, *options, worker=WORKER) -> Program`` with two workers on a free port,
    the access log on its output."""
    def start(app, *options, worker=WORKER):
        port = free_port()
        argv = [PYTHON, '-m', 'gunicorn', '-k', worker, '-w', '2', '-b', '127.0.0.1:%d' % port,
                '--no-control-socket', '--graceful-timeout', '2', '--chdir', APPS_DIR,
                '--access-logfile', '-', *options, app]
        return programs(argv, port, env=python_env(), stop_signal=QUICK_STOP)
    return start


@pytest.mark.parametrize('app', APPS)
def test_websocket_and_http_on_one_port(gunicorn, app):
    server = gunicorn(app)
    base = '127.0.0.1:%d' % server.port
    assert http_get('http://%s/' % base) == 'hello from %s' % app.split('_')[0]
    ws = ws_connect('ws://%s/echo' % base)
    assert_echoes(ws)
    ws.close()
    ws = ws_connect('ws://%s/room/lobby' % base)
    assert ws.recv() == 'welcome to lobby'
    ws.close()
    # gunicorn's access log has the 101, as any other response.
    server.wait_for_output('"GET /room/lobby HTTP/1.1" 101 ')
    assert '"GET / HTTP/1.1" 200 ' in server.output()


def test_access_log_shows_request_headers_of_an_upgraded_connection(gunicorn):
    """An upgraded connection lets its parsed header fields go (memory per idle connection);
    the access log's %({name}i) atoms still show them, taken from the environ."""
    server = gunicorn('flask_app:app', '--access-logformat',
                      '%(r)s %(s)s agent=%({user-agent}i)s origin=%({origin}i)s')
    ws = ws_connect('ws://127.0.0.1:%d/echo' % server.port,
                    header=['User-Agent: geventws-test-agent/1.0'],
                    origin='http://example.test')
    assert_echoes(ws)
    ws.close()
    server.wait_for_output('GET /echo HTTP/1.1 101 agent=geventws-test-agent/1.0 '
                           'origin=http://example.test')


def test_workers_install_the_frame_stack_cache(gunicorn):
    """Each worker calls ``recycle_frame_stacks()`` as it starts (on the compiled path, from
    CPython 3.11); the pure-Python run's workers must leave the allocator alone."""
    server = gunicorn('flask_app:app')
    pids = set()
    for _ in range(4):
        pids.add(assert_frame_stacks_as_expected(
            'http://127.0.0.1:%d/framestacks' % server.port)['pid'])
    assert pids <= set(worker_pids(server.output()))


def test_flask_plain_route_declared_websocket(gunicorn):
    ws = ws_connect('ws://127.0.0.1:%d/plain' % gunicorn('flask_app:app').port)
    assert_echoes(ws)
    ws.close()


@pytest.mark.parametrize('app', APPS)
def test_sigterm_closes_websockets_with_1001_and_loses_nothing(gunicorn, app):
    server = gunicorn(app)
    ws = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    sent = ['message %d' % i for i in range(200)]
    for message in sent:
        ws.send(message)
    assert ws.recv() == sent[0]
    server.send(signal.SIGTERM)
    echoed, close = read_until_close(ws)
    assert close == (1001, 'server shutting down')
    # Every message sent before the client saw the close reached the app, and every one
    # the app sent back before its close reached the client, in order.
    assert [sent[0]] + echoed == sent[:1 + len(echoed)]
    assert server.wait() == 0
    assert 'echo: 200 messages, %d echoed' % (1 + len(echoed)) in server.output()
    assert 'Traceback' not in server.output()


def worker_pids(output):
    return [int(line.rsplit(' ', 1)[1]) for line in output.splitlines()
            if 'Booting worker with pid' in line]


def test_sighup_reload_new_workers_take_new_connections(gunicorn):
    server = gunicorn('flask_app:app')
    server.wait_for_output('Booting worker')
    old = ws_connect('ws://127.0.0.1:%d/whoami' % server.port)
    old_pid = json.loads(old.recv())['pid']
    assert old_pid in worker_pids(server.output())
    server.send(signal.SIGHUP)
    # The old workers stop gracefully: their open WebSockets are told 1001.
    assert read_until_close(old) == ([], (1001, 'server shutting down'))
    for old_pid in worker_pids(server.output())[:2]:
        server.wait_for_output('Worker exiting (pid: %d)' % old_pid)
    new_pids = worker_pids(server.output())[2:]
    assert len(new_pids) == 2
    for _ in range(4):
        new = ws_connect('ws://127.0.0.1:%d/whoami' % server.port)
        assert json.loads(new.recv())['pid'] in new_pids
        new.close()


def test_wss_with_certfile_and_keyfile(gunicorn, tls_files):
    certfile, keyfile, cafile = tls_files
    server = gunicorn('flask_app:app', '--certfile', certfile, '--keyfile', keyfile)
    ws = ws_connect('wss://127.0.0.1:%d/echo' % server.port, cafile=cafile)
    assert_echoes(ws)
    ws.close()
    ws = ws_connect('wss://127.0.0.1:%d/whoami' % server.port, cafile=cafile)
    assert json.loads(ws.recv())['scheme'] == 'https'
    ws.close()
    context = ssl.create_default_context(cafile=cafile)
    assert http_get('https://127.0.0.1:%d/' % server.port, context) == 'hello from flask'


def test_open_websocket_outlives_the_worker_timeout(gunicorn):
    """``timeout`` is the workers' heartbeat: a WebSocket open longer than it does not get
    its worker killed. (gunicorn's gevent worker reports every second, so a timeout of 1 s
    would race with the reports themselves: 3 s, and the WebSocket open for 4.5.)"""
    server = gunicorn('flask_app:app', '--timeout', '3')
    ws = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    for i in range(9):
        ws.send('still here %d' % i)
        assert ws.recv() == 'still here %d' % i
        time.sleep(0.5)
    ws.close()
    assert 'WORKER TIMEOUT' not in server.output()


def raw_requests(sock, count):
    """Send up to ``count`` GET requests on ``sock``, each after the previous answer; return
    how many were answered before the server closed the connection."""
    answered = 0
    with sock.makefile('rb') as responses:
        for _ in range(count):
            try:
                sock.sendall(b'GET / HTTP/1.1\r\nHost: test\r\n\r\n')
            except OSError:
                break
            if not responses.readline():
                break
            length = 0
            for line in iter(responses.readline, b'\r\n'):
                if line.lower().startswith(b'content-length:'):
                    length = int(line.split(b':')[1])
            responses.read(length)
            answered += 1
    return answered


@pytest.mark.parametrize('keepalive, answered', [('0', 1), ('30', 3)])
def test_keepalive_setting(gunicorn, keepalive, answered):
    server = gunicorn('flask_app:app', '--keep-alive', keepalive)
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        assert raw_requests(sock, 3) == answered


def test_idle_keepalive_connection_is_closed(gunicorn):
    server = gunicorn('flask_app:app', '--keep-alive', '1')
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        assert raw_requests(sock, 2) == 2
        assert sock.recv(1) == b''   # a second of silence, then the server ends it


def test_forwarded_headers_only_from_allowed_ips(gunicorn):
    forwarded = {'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.7'}
    trusting = gunicorn('flask_app:app', '--forwarded-allow-ips', '127.0.0.1')
    seen = json.loads(http_get('http://127.0.0.1:%d/whoami' % trusting.port, headers=forwarded))
    assert (seen['scheme'], seen['remote']) == ('https', '203.0.113.7')
    ws = ws_connect('ws://127.0.0.1:%d/whoami' % trusting.port,
                    header=['%s: %s' % item for item in forwarded.items()])
    seen = json.loads(ws.recv())
    assert (seen['scheme'], seen['remote']) == ('https', '203.0.113.7')
    ws.close()
    distrusting = gunicorn('flask_app:app', '--forwarded-allow-ips', '192.0.2.1')
    seen = json.loads(http_get('http://127.0.0.1:%d/whoami' % distrusting.port,
                               headers=forwarded))
    assert (seen['scheme'], seen['remote']) == ('http', '127.0.0.1')


def test_plain_gevent_worker_does_not_upgrade(gunicorn):
    """What the README says of ``-k gevent``: gunicorn's own HTTP parser answers, nothing
    upgrades, and the route says which worker to use instead."""
    server = gunicorn('flask_app:app', worker='gevent')
    with pytest.raises(websocket.WebSocketBadStatusException) as failure:
        ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    assert failure.value.status_code == 500
    assert 'no WebSocket support' in server.wait_for_output('GeventWebSocketWorker')


def test_example_config_with_the_chat_example(programs):
    port = free_port()
    server = programs([PYTHON, '-m', 'gunicorn', '-c', os.path.join(ROOT, 'examples',
                                                                    'gunicorn.conf.py'),
                       '-w', '1', '-b', '127.0.0.1:%d' % port, '--no-control-socket',
                       '--chdir', os.path.join(ROOT, 'examples', 'chat'), 'app:app'],
                      port, env=python_env(), stop_signal=QUICK_STOP)
    assert 'Using worker: %s' % WORKER in server.wait_for_output('Using worker')
    assert '<title>geventws chat</title>' in http_get('http://127.0.0.1:%d/' % port)
    ws = ws_connect('ws://127.0.0.1:%d/' % port)
    assert_echoes(ws)
    ws.close()
    alice = ws_connect('ws://127.0.0.1:%d/chat?name=alice' % port)
    assert json.loads(alice.recv())['online'] == ['alice']
    alice.close()
    server.wait_for_output('"GET /chat?name=alice HTTP/1.1" 101 ')


def test_bottle_example_under_gunicorn(gunicorn):
    server = gunicorn('bottle_app:app', '--chdir', os.path.join(ROOT, 'examples'))
    assert http_get('http://127.0.0.1:%d/' % server.port).startswith('Bottle with geventws')
    ws = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    assert_echoes(ws)
    ws.close()


def test_worker_connections_caps_open_websockets_per_worker(gunicorn):
    """Every open WebSocket holds one of a worker's ``worker_connections`` for its whole
    life: a client beyond them waits, unanswered, until one closes."""
    server = gunicorn('flask_app:app', '-w', '1', '--worker-connections', '2')
    first, second = (ws_connect('ws://127.0.0.1:%d/echo' % server.port) for _ in range(2))
    with socket.create_connection(('127.0.0.1', server.port), timeout=1) as third:
        third.sendall(b'GET /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n'
                      b'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
                      b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
        with pytest.raises(socket.timeout):
            third.recv(100)
        first.close()
        third.settimeout(10)
        assert third.recv(100).startswith(b'HTTP/1.1 101 Switching Protocols')
    assert_echoes(second)
    second.close()


# -- the connections' options ------------------------------------------------------------------

OPTIONS = {'max_message_size': 100000, 'max_queue': 4, 'close_timeout': 2.0,
           'ping_interval': 0.3, 'ping_timeout': None, 'write_limit': 1000}


def _options_of(port):
    ws = ws_connect('ws://127.0.0.1:%d/options' % port)
    try:
        return json.loads(ws.recv())
    finally:
        ws.close()


def test_connection_options_from_the_environment(programs):
    port = free_port()
    env = python_env(GEVENTWS_MAX_MESSAGE_SIZE='100000', GEVENTWS_MAX_QUEUE='4',
                     GEVENTWS_CLOSE_TIMEOUT='2', GEVENTWS_PING_INTERVAL='0.3',
                     GEVENTWS_PING_TIMEOUT='none', GEVENTWS_WRITE_LIMIT='1000')
    programs([PYTHON, '-m', 'gunicorn', '-k', WORKER, '-w', '2', '-b', '127.0.0.1:%d' % port,
              '--no-control-socket', '--chdir', APPS_DIR, 'flask_app:app'], port, env=env,
             stop_signal=QUICK_STOP)
    for _ in range(4):   # whichever worker answers
        assert _options_of(port) == OPTIONS


def test_connection_options_from_a_config_file(programs, tmp_path):
    config = tmp_path / 'gunicorn.conf.py'
    config.write_text('from geventws.gunicorn import GeventWebSocketWorker\n'
                      'worker_class = GeventWebSocketWorker.configure(%s)\n'
                      % ', '.join('%s=%r' % item for item in OPTIONS.items()))
    port = free_port()
    programs([PYTHON, '-m', 'gunicorn', '-c', str(config), '-w', '2',
              '-b', '127.0.0.1:%d' % port, '--no-control-socket', '--chdir', APPS_DIR,
              'flask_app:app'], port, env=python_env(GEVENTWS_MAX_QUEUE='99'),
             stop_signal=QUICK_STOP)
    for _ in range(4):
        assert _options_of(port) == OPTIONS   # the config file's win over the environment


def test_server_options_from_the_environment(programs):
    port = free_port()
    env = python_env(GEVENTWS_HANDSHAKE_TIMEOUT='1',
                     GEVENTWS_ORIGINS='https://chat.example, none', GEVENTWS_LEGACY='off',
                     GEVENTWS_MAX_REQUEST_HEAD='4000')
    programs([PYTHON, '-m', 'gunicorn', '-k', WORKER, '-w', '1', '-b', '127.0.0.1:%d' % port,
              '--no-control-socket', '--chdir', APPS_DIR, 'flask_app:app'], port, env=env,
             stop_signal=QUICK_STOP)
    assert_server_options(port)


def test_server_options_from_a_config_file(programs, tmp_path):
    config = tmp_path / 'gunicorn.conf.py'
    config.write_text('from geventws.gunicorn import GeventWebSocketWorker\n'
                      'worker_class = GeventWebSocketWorker.configure(%s)\n'
                      % ', '.join('%s=%r' % item for item in SERVER_OPTIONS.items()))
    port = free_port()
    programs([PYTHON, '-m', 'gunicorn', '-c', str(config), '-w', '1',
              '-b', '127.0.0.1:%d' % port, '--no-control-socket', '--chdir', APPS_DIR,
              'flask_app:app'], port, env=python_env(), stop_signal=QUICK_STOP)
    assert_server_options(port)


def test_configure_checks_the_options():
    from geventws.gunicorn import GeventWebSocketWorker
    with pytest.raises(TypeError):
        GeventWebSocketWorker.configure(ping_intreval=1)
    with pytest.raises(TypeError, match="gunicorn's keepalive"):
        GeventWebSocketWorker.configure(keepalive_timeout=1)
