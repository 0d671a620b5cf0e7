"""Apps that answer an upgrade on the socket themselves, as they do under plain
gevent.pywsgi and gunicorn: flask-sock routes and simple-websocket's own Flask example
(apps/hijack_app.py) take the connection from ``environ['wsgi.input']`` (which leads to the
socket as pywsgi's does) or ``environ['gunicorn.socket']``, under ``python -m geventws serve``
and gunicorn's worker; nothing is written on the socket after their WebSocket."""
import json
import socket

import pytest
import websocket

from geventws import WebSocketHandler
from helpers import APPS_DIR, PYTHON, free_port, http_get, python_env, ws_connect


def _check(port):
    assert http_get('http://127.0.0.1:%d/' % port) == 'hello from flask-sock'
    for _ in range(2):   # also a second connection: nothing of the first is left
        ws = ws_connect('ws://127.0.0.1:%d/echo' % port)
        ws.send('hello é')
        assert json.loads(ws.recv()) == {'type': 'log', 'text': 'hello é'}
        ws.send('close')
        assert ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_CLOSE,
                                                    b'\x03\xe8')
        ws.send_close()
        # No HTTP answer after the close (plain pywsgi reads the close frame as a next
        # request and answers it 400). The FIN comes when simple-websocket's reader
        # notices, which may be later.
        ws.sock.settimeout(0.5)
        try:
            assert ws.sock.recv(100) == b''
        except TimeoutError:
            pass
        ws.close()
    ws = ws_connect('ws://127.0.0.1:%d/clock' % port)
    assert [json.loads(ws.recv())['tick'] for _ in range(3)] == [0, 1, 2]
    ws.send('close')
    ws.close()
    ws = ws_connect('ws://127.0.0.1:%d/sw-echo' % port)
    ws.send('text é')
    assert ws.recv() == 'text é'
    ws.send_binary(b'\x00\xff' * 3000)
    assert ws.recv() == b'\x00\xff' * 3000
    ws.close()


def test_geventws_serve(programs):
    port = free_port()
    server = programs([PYTHON, '-m', 'geventws', 'serve', 'hijack_app:app', '--port',
                       str(port)], port, cwd=APPS_DIR, env=python_env())
    _check(port)
    assert 'Traceback' not in server.output()


@pytest.mark.gunicorn
def test_gunicorn_worker(programs):
    port = free_port()
    server = programs([PYTHON, '-m', 'gunicorn', '-k', 'geventws.gunicorn.GeventWebSocketWorker',
                       '-w', '2', '-b', '127.0.0.1:%d' % port, '--no-control-socket',
                       '--graceful-timeout', '1', 'hijack_app:app'], port, cwd=APPS_DIR,
                      env=python_env())
    _check(port)
    assert 'Traceback' not in server.output()


def test_wsgi_input_leads_to_the_socket_as_pywsgis_does(serve):
    """What simple-websocket looks for (``wsgi.input.raw._sock``, or ``.rfile.raw._sock``)
    is the connection's socket; an upgrade request's input has no body."""
    seen = {}

    def app(environ, start_response):
        wsgi_input = environ['wsgi.input']
        seen['body'] = wsgi_input.read()
        seen['same'] = wsgi_input.raw._sock is wsgi_input.rfile.raw._sock
        sock = wsgi_input.raw._sock
        sock.sendall(b'HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n')
        return []

    server = serve(app, handler_class=WebSocketHandler)
    ws = socket.create_connection(('127.0.0.1', server.port), timeout=5)
    ws.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
               b'Sec-WebSocket-Version: 13\r\n\r\n')
    answer = b''
    while True:
        chunk = ws.recv(4096)
        if not chunk:
            break
        answer += chunk
    ws.close()
    assert answer == b'HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n'
    assert seen == {'body': b'', 'same': True}

