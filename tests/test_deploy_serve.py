"""``python -m geventws serve module:app``: any WSGI app with WebSocket support, ws and wss,
graceful SIGTERM with 1001; X-Forwarded-* believed from the proxies named and nobody else;
the frame-stack cache installed."""
import json
import re
import signal
import socket
import subprocess

import pytest

from geventws.io.forwarded import TrustedProxies
from geventws.protocol.frames import OP_PING
from helpers import (APPS_DIR, PYTHON, RawClient, assert_echoes, assert_server_options,
                     assert_frame_stacks_as_expected, free_port, http_get, python_env,
                     read_until_close, ws_connect)

FORWARDED = {'X-Forwarded-Proto': 'wss', 'X-Forwarded-For': '203.0.113.7'}


@pytest.fixture
def geventws_serve(programs):
    def start(app, *options):
        port = free_port()
        return programs([PYTHON, '-m', 'geventws', 'serve', app, '--port', str(port),
                         *options], port, cwd=APPS_DIR, env=python_env())
    return start


@pytest.mark.parametrize('app', ['flask_app:app', 'bottle_app:app'])
def test_serves_websocket_and_http(geventws_serve, app):
    server = geventws_serve(app)
    assert 'serving %s at http://127.0.0.1:%d/ and ws://127.0.0.1:%d/' % (
        app, server.port, server.port) in server.wait_for_output('serving')
    assert http_get('http://127.0.0.1:%d/' % server.port).startswith('hello from')
    ws = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    assert_echoes(ws)
    ws.close()


def test_the_frame_stack_cache_is_installed(geventws_serve):
    """``serve`` calls ``recycle_frame_stacks()`` at start-up (on the compiled path, from
    CPython 3.11); the pure-Python run's server must leave the allocator alone."""
    server = geventws_serve('flask_app:app')
    seen = assert_frame_stacks_as_expected('http://127.0.0.1:%d/framestacks' % server.port)
    assert seen['pid'] == server.pid


def test_wss_with_certfile_and_keyfile(geventws_serve, tls_files):
    certfile, keyfile, cafile = tls_files
    server = geventws_serve('flask_app:app', '--certfile', certfile, '--keyfile', keyfile)
    banner = server.wait_for_output('serving')
    assert 'https://127.0.0.1:%d/ and wss://' % server.port in banner
    ws = ws_connect('wss://127.0.0.1:%d/whoami' % server.port, cafile=cafile)
    assert json.loads(ws.recv())['scheme'] == 'https'
    assert_echoes(ws)
    ws.close()


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_closes_websockets_with_1001_and_loses_nothing(geventws_serve, signum):
    server = geventws_serve('flask_app:app')
    clients = [ws_connect('ws://127.0.0.1:%d/echo' % server.port) for _ in range(3)]
    sent = ['message %d' % i for i in range(100)]
    for ws in clients:
        for message in sent:
            ws.send(message)
        assert ws.recv() == sent[0]
    server.send(signum)
    reports = []
    for ws in clients:
        echoed, close = read_until_close(ws)
        assert close == (1001, 'server shutting down')
        assert [sent[0]] + echoed == sent[:1 + len(echoed)]
        reports.append('echo: 100 messages, %d echoed' % (1 + len(echoed)))
    assert server.wait() == 0
    assert sorted(reports) == sorted(re.findall('echo: .*', server.output()))
    assert 'Traceback' not in server.output()


def test_forwarded_headers_are_ignored_by_default(geventws_serve):
    server = geventws_serve('flask_app:app')
    seen = json.loads(http_get('http://127.0.0.1:%d/whoami' % server.port, headers=FORWARDED))
    assert (seen['scheme'], seen['remote']) == ('http', '127.0.0.1')


def test_forwarded_headers_from_allowed_proxies(geventws_serve):
    server = geventws_serve('flask_app:app', '--forwarded-allow-ips', '127.0.0.0/8')
    ws = ws_connect('ws://127.0.0.1:%d/whoami' % server.port,
                    header=['%s: %s' % item for item in FORWARDED.items()])
    seen = json.loads(ws.recv())
    assert (seen['scheme'], seen['remote']) == ('https', '203.0.113.7')
    ws.close()


@pytest.mark.parametrize('argv, error', [
    (['no_such_module:app'], "cannot load no_such_module:app: No module named 'no_such_module'"),
    (['flask_app:nothing'], 'cannot load flask_app:nothing'),
    (['flask_app:app', '--certfile', 'cert.pem'], '--certfile and --keyfile go together'),
])
def test_usage_errors(argv, error):
    done = subprocess.run([PYTHON, '-m', 'geventws', 'serve', *argv, '--port', '0'], cwd=APPS_DIR,
                          env=python_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert error in done.stderr


@pytest.mark.parametrize('allow, peer, trusted', [
    ('127.0.0.1', '127.0.0.1', True),
    ('127.0.0.1', '127.0.0.2', False),
    ('10.0.0.0/8, ::1', '10.200.3.4', True),
    (['10.0.0.0/8', '::1'], '::1', True),
    ('10.0.0.0/8', 'not an address', False),
    ('*', '198.51.100.1', True),
    ('', '127.0.0.1', False),
])
def test_trusted_proxies(allow, peer, trusted):
    assert TrustedProxies(allow).trusts(peer) is trusted


@pytest.mark.parametrize('peer, headers, scheme, remote', [
    # A direct client's headers are its own claims.
    (('198.51.100.9', 5000), {'HTTP_X_FORWARDED_PROTO': 'https',
                              'HTTP_X_FORWARDED_FOR': '203.0.113.7'}, 'http', '198.51.100.9'),
    (('10.0.0.2', 5000), {'HTTP_X_FORWARDED_PROTO': 'wss',
                          'HTTP_X_FORWARDED_FOR': '203.0.113.7'}, 'https', '203.0.113.7'),
    # What a client sent ahead of the real chain does not count: the nearest untrusted hop.
    (('10.0.0.2', 5000), {'HTTP_X_FORWARDED_FOR': '1.2.3.4, 203.0.113.7, 10.0.0.3'},
     'http', '203.0.113.7'),
    (('10.0.0.2', 5000), {'HTTP_X_FORWARDED_PROTO': 'ftp'}, 'http', '10.0.0.2'),
    # A Unix socket peer (no address) is a local proxy.
    ('', {'HTTP_X_FORWARDED_PROTO': 'https'}, 'https', ''),
])
def test_forwarded_headers_rewrite_environ(peer, headers, scheme, remote):
    environ = dict(headers, REMOTE_ADDR=peer[0] if peer else '')
    environ['wsgi.url_scheme'] = 'http'
    TrustedProxies('10.0.0.0/8').apply(environ, peer)
    assert (environ['wsgi.url_scheme'], environ['REMOTE_ADDR']) == (scheme, remote)


def test_idle_keep_alive_connections_do_not_hold_up_the_stop(geventws_serve):
    server = geventws_serve('flask_app:app', '--graceful-timeout', '600',
                            '--keepalive-timeout', '600')
    with socket.create_connection(('127.0.0.1', server.port), timeout=30) as idle:
        idle.sendall(b'GET / HTTP/1.1\r\nHost: test\r\n\r\n')
        response = b''
        while not response.endswith(b'hello from flask'):
            response += idle.recv(65536)
        ws = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
        server.send(signal.SIGTERM)
        assert read_until_close(ws) == ([], (1001, 'server shutting down'))
        assert idle.recv(1) == b''   # ended at once, not after the 600 s
        assert server.wait() == 0


OPTIONS = {'max_message_size': 100000, 'max_queue': 4, 'close_timeout': 2.0,
           'ping_interval': 0.3, 'ping_timeout': None, 'write_limit': 1000}


def test_connection_options(geventws_serve):
    server = geventws_serve('flask_app:app', '--max-message-size', '100000', '--max-queue', '4',
                            '--close-timeout', '2', '--ping-interval', '0.3',
                            '--ping-timeout', 'none', '--write-limit', '1000')
    ws = ws_connect('ws://127.0.0.1:%d/options' % server.port)
    assert json.loads(ws.recv()) == OPTIONS
    ws.close()


def test_server_options(geventws_serve):
    server = geventws_serve('flask_app:app', '--handshake-timeout', '1', '--origins',
                            'https://chat.example,none', '--no-legacy',
                            '--max-request-head', '4000')
    assert_server_options(server.port)


def test_max_connections_makes_new_connections_wait(geventws_serve):
    server = geventws_serve('flask_app:app', '--max-connections', '2')
    first = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    second = ws_connect('ws://127.0.0.1:%d/echo' % server.port)
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as third:
        # Accepted by the kernel, not by the server: it waits in the backlog.
        third.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        third.settimeout(1)
        with pytest.raises(socket.timeout):
            third.recv(100)
        first.close()
        third.settimeout(10)
        assert third.recv(100).startswith(b'HTTP/1.1 200')
    assert_echoes(second)
    second.close()


def test_out_of_file_descriptors_the_server_waits_and_says_so_once(programs):
    """With its descriptors all held by silent connections, the server stops accepting (one
    line in the log, no traceback) until handshake_timeout ends them; then it serves again."""
    port = free_port()
    server = programs(['prlimit', '--nofile=64:64', PYTHON, '-m', 'geventws', 'serve',
                       'flask_app:app', '--port', str(port), '--handshake-timeout', '1'],
                      port, cwd=APPS_DIR, env=python_env())
    silent = [socket.create_connection(('127.0.0.1', port), timeout=10) for _ in range(80)]
    try:
        ws = ws_connect('ws://127.0.0.1:%d/echo' % port)   # waits for a descriptor
        assert_echoes(ws)
        ws.close()
    finally:
        for sock in silent:
            sock.close()
    output = server.output()
    assert output.count('Too many open files') == 1 and 'Traceback' not in output, output


def test_keepalive_closes_a_client_that_answers_no_ping(geventws_serve):
    server = geventws_serve('flask_app:app', '--ping-interval', '0.2', '--ping-timeout', '0.2')
    client = RawClient(server.port)
    client.handshake(path='/echo')
    opcode, payload, _ = client.recv_frame()
    assert opcode == OP_PING    # not answered: a raw socket does nothing by itself
    assert client.recv_close() == (1011, 'keepalive ping timeout')
    client.assert_eof()
    client.close()
