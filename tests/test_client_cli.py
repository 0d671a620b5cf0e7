"""``python -m geventws connect URL``, driven through pipes as a user would at a terminal:
lines typed are sent, messages received are printed after ``< ``, end of input closes with
1000; and ``python -m geventws serve`` hands its arguments to ``geventws.serve``."""
import os
import queue
import ssl
import subprocess
import sys

import pytest
import trustme

from helpers import cooperative_server_context, echo_app

TIMEOUT = 20
ENV = dict(os.environ, PYTHONIOENCODING='utf-8')


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, '-m', 'geventws'] + list(args), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV, **kw)


@pytest.fixture
def app_server(serve):
    """Our server with an app per path; the close codes it receives go to ``closes``."""
    closes = queue.Queue()

    def app(environ, start_response):
        ws = environ.get('wsgi.websocket')
        if ws is None or environ['PATH_INFO'] == '/forbidden':
            start_response('403 Forbidden', [('Content-Length', '0')])
            return []
        if environ['PATH_INFO'] == '/greet':
            ws.send('welcome')
            ws.send(b'\x00\xffbin')
            ws.close(4000, 'that is all')
            return []
        for message in ws:
            ws.send(message)
        closes.put((ws.close_code, ws.close_reason))
        return []

    server = serve(app)
    server.closes = closes
    return server


def test_lines_are_sent_and_end_of_input_closes(app_server):
    process = _cli('connect', app_server.url + 'echo')
    out, err = process.communicate('hello\nwörld ✓\n\nlast line\n', timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert out == '< hello\n< wörld ✓\n< \n< last line\n'
    assert 'connected to %secho' % app_server.url in err
    assert 'closed: 1000' in err
    assert app_server.closes.get(timeout=TIMEOUT) == (1000, '')


def test_server_close_ends_the_session_while_input_is_open(app_server):
    process = _cli('connect', app_server.url + 'greet')
    try:
        process.wait(TIMEOUT)            # stdin is still open: the server's close ends it
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == "< welcome\n< b'\\x00\\xffbin'\n"
    assert 'closed: 4000 that is all' in err


def test_handshake_failure_is_reported(app_server):
    process = _cli('connect', app_server.url + 'forbidden')
    out, err = process.communicate('', timeout=TIMEOUT)
    assert process.returncode == 1
    assert '403 Forbidden' in err and out == ''


def test_subprotocol_and_headers_options(raw_request_server):
    url, requests = raw_request_server
    process = _cli('connect', url, '-s', 'chat', '-s', 'v2', '-H', 'Authorization: Bearer x',
                   '-o', 'https://example.com')
    process.communicate('', timeout=TIMEOUT)
    head = requests.get(timeout=TIMEOUT)
    assert 'Sec-WebSocket-Protocol: chat, v2\r\n' in head
    assert 'Authorization: Bearer x\r\n' in head
    assert 'Origin: https://example.com\r\n' in head


@pytest.fixture
def raw_request_server():
    """Answers one request with 403 and keeps its head."""
    import socket
    import threading
    listener = socket.create_server(('127.0.0.1', 0))
    requests = queue.Queue()

    def run():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            data = b''
            while b'\r\n\r\n' not in data:
                data += conn.recv(4096) or b'\r\n\r\n'
            requests.put(data.decode('latin-1'))
            conn.sendall(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n')

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield 'ws://127.0.0.1:%d/' % listener.getsockname()[1], requests
    listener.close()
    thread.join(TIMEOUT)


def test_wss_with_cafile(serve, tmp_path):
    ca = trustme.CA()
    server = serve(echo_app, ssl_context=cooperative_server_context(ca, '127.0.0.1'))
    url = 'wss://127.0.0.1:%d/' % server.port
    ca.cert_pem.write_to_path(str(tmp_path / 'ca.pem'))

    process = _cli('connect', url, '--cafile', str(tmp_path / 'ca.pem'))
    out, err = process.communicate('secure\n', timeout=TIMEOUT)
    assert (process.returncode, out) == (0, '< secure\n'), err

    process = _cli('connect', url)
    out, err = process.communicate('', timeout=TIMEOUT)
    assert process.returncode == 1
    assert 'certificate verify failed' in err


def test_bad_arguments_are_usage_errors():
    process = _cli('connect', 'ws://127.0.0.1:1/', '--no-such-option')
    out, err = process.communicate('', timeout=TIMEOUT)
    assert process.returncode == 2 and 'unrecognized arguments' in err
    process = _cli('connect', 'ws://127.0.0.1:1/', '-H', 'no colon')
    out, err = process.communicate('', timeout=TIMEOUT)
    assert process.returncode == 2 and "'Name: value'" in err


def test_serve_hands_its_arguments_to_geventws_serve(monkeypatch):
    import types

    from geventws.__main__ import main
    seen = []
    fake = types.ModuleType('geventws.serve')
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, 'geventws.serve', fake)
    import geventws
    monkeypatch.setattr(geventws, 'serve', fake, raising=False)
    assert main(['serve', '--host', '127.0.0.1', 'pkg.mod:app', '--port', '0']) == 0
    assert seen == [['--host', '127.0.0.1', 'pkg.mod:app', '--port', '0']]
