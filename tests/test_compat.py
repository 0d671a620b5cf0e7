"""geventws.compat, gevent-websocket's API on geventws (a migration aid), and the parts of
geventws's own API that gevent-websocket apps rely on: ``close(code, message=...)``,
``send()`` on a closed socket raising ``ConnectionClosed`` for any argument, ``WebSocketError``
an ``OSError``. Apps in gevent-websocket's examples' shapes run with their import lines
naming geventws.compat, and again naming the real gevent-websocket, with the same results;
``import geventwebsocket`` gives geventws.compat only in processes that register it, and
only where gevent-websocket is not installed."""
import json
import os
import socket
import time

import pytest
import websocket

from geventws import ConnectionClosed, HandshakeTimeout, ProtocolError, WebSocketError
from geventws.compat import Resource, WebSocketApplication
from geventws.compat.handler import WebSocketHandler as CompatHandler
from geventws.compat.server import WebSocketServer
from helpers import (APPS_DIR, PYTHON, free_port, http_get, python_env, read_until_close,
                     run_python, ws_connect)

#: PYTHONPATH entry of an interpreter where gevent-websocket is not installed.
HIDDEN = os.path.join(APPS_DIR, 'hide_gevent_websocket')


# -- the core API as gevent-websocket apps use it ------------------------------------------

def test_websocket_error_is_an_os_error_like_gevent_websockets():
    import geventwebsocket.exceptions as real
    assert issubclass(real.WebSocketError, OSError)
    for cls in (WebSocketError, ProtocolError, ConnectionClosed):
        assert issubclass(cls, OSError) and issubclass(cls, WebSocketError)
    assert issubclass(HandshakeTimeout, TimeoutError)
    error = ProtocolError('bad frame', 1007)
    assert (str(error), error.code, error.reason, error.errno) == ('bad frame', 1007,
                                                                   'bad frame', None)
    assert str(ConnectionClosed(1000, 'bye')) == 'connection closed: 1000 bye'


def _closing_app(closed):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        message = ws.receive()
        ws.close(4000, message='done: %s' % message)
        for argument in (None, 'text', b'bytes', ['a', 'b'], 5):
            try:
                ws.send(argument)
            except ConnectionClosed as exc:
                closed.append((repr(argument), exc.code))
            except Exception as exc:   # noqa: BLE001   (recorded as a failure)
                closed.append((repr(argument), repr(exc)))
        return []
    return app


def test_close_takes_message_and_send_on_a_closed_socket_raises_connection_closed(serve):
    closed = []
    server = serve(_closing_app(closed))
    ws = ws_connect('ws://127.0.0.1:%d/' % server.port)
    ws.send('x')
    assert read_until_close(ws) == ([], (4000, 'done: x'))
    ws.close()
    deadline = time.monotonic() + 5
    while len(closed) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed == [('None', 4000), ("'text'", 4000), ("b'bytes'", 4000),
                      ("['a', 'b']", 4000), ('5', 4000)]


def test_a_closed_client_raises_connection_closed_for_any_argument(echo_server):
    import geventws
    client = geventws.connect('ws://127.0.0.1:%d/' % echo_server.port)
    client.send('x')
    assert client.receive() == 'x'
    client.close(1000, message=b'bye')
    for argument in (None, 'text', b'bytes', ['a'], 5):
        with pytest.raises(ConnectionClosed):
            client.send(argument)


def test_send_of_what_receive_gave_ends_the_loop_after_the_peer_closed(serve):
    """``ws.send(ws.receive())``, gevent-websocket's echo idiom: the None of the close makes
    send raise ConnectionClosed, which ends the loop."""
    ended = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        try:
            while True:
                ws.send(ws.receive())
        except WebSocketError as exc:
            ended.append(type(exc).__name__)
        return []

    server = serve(app)
    ws = ws_connect('ws://127.0.0.1:%d/' % server.port)
    ws.send('one')
    assert ws.recv() == 'one'
    ws.close()
    deadline = time.monotonic() + 5
    while not ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ended == ['ConnectionClosed']


# -- geventws.compat in process ------------------------------------------------------------

class Recording(WebSocketApplication):
    events = []

    def on_open(self):
        self.events.append(('open', self.ws.protocol, type(self.ws.handler).__name__,
                            self.ws.handler.websocket is self.ws,
                            self.ws.current_app.on_close('ignored')))
        self.ws.send_frame('hello', self.ws.OPCODE_TEXT)
        self.ws.send_frame(b'\x01\x02', self.ws.OPCODE_BINARY)

    def on_message(self, message):
        self.events.append(('message', message))   # None too: it ignores nothing


def page(environ, start_response):
    start_response('200 OK', [])
    return [b'page']


def test_resource_websocket_application_and_server_clients(serve):
    Recording.protocol_class = type('Chat', (Recording.protocol_class,),
                                    {'PROTOCOL_NAME': 'chat'})
    Recording.events = []
    resource = Resource({'^/ws': Recording, '^/': page})
    server = serve(resource, handler_class=CompatHandler)
    port = server.port
    assert http_get('http://127.0.0.1:%d/' % port) == 'page'
    ws = ws_connect('ws://127.0.0.1:%d/ws' % port, subprotocols=['other', 'chat'])
    assert ws.getsubprotocol() == 'chat'
    assert ws.recv() == 'hello' and ws.recv() == b'\x01\x02'
    assert list(server.server.clients) == [ws.sock.getsockname()]
    client = next(iter(server.server.clients.values()))
    ws.send('one')
    ws.close()
    deadline = time.monotonic() + 5
    while server.server.clients and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.server.clients and client.ws.closed
    assert Recording.events == [('open', 'chat', 'WebSocketHandler', True, None),
                                ('message', 'one'), ('message', None)]
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        ws_connect('ws://127.0.0.1:%d/nothing' % port)
    assert refused.value.status_code == 404
    assert http_get('http://127.0.0.1:%d/' % port) == 'page'   # (the server goes on)


def test_receive_after_the_close_raises_as_in_gevent_websocket(serve):
    """An app that skips None instead of stopping on it does not spin: the next
    ``receive()`` raises WebSocketError, as gevent-websocket's does."""
    seen = []

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        try:
            while True:
                message = ws.receive()
                seen.append(message)
                if message:
                    ws.send(message)
        except WebSocketError as exc:
            seen.append(str(exc))
        return []

    server = serve(app, handler_class=CompatHandler)
    ws = ws_connect('ws://127.0.0.1:%d/' % server.port)
    ws.send('a')
    assert ws.recv() == 'a'
    ws.close()
    deadline = time.monotonic() + 5
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == ['a', None, 'Connection is already closed']


def test_send_frame_ping_pong_and_close(serve):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.send_frame(b'are you there', ws.OPCODE_PING)
        ws.send_frame('unasked', ws.OPCODE_PONG)
        ws.read_message()
        ws.send_frame(b'\x0f\xa0' + 'gone é'.encode(), ws.OPCODE_CLOSE)
        return []

    server = serve(app, handler_class=CompatHandler)
    ws = ws_connect('ws://127.0.0.1:%d/' % server.port)
    assert ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PING, b'are you there')
    assert ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG, b'unasked')
    ws.send('go on')
    assert read_until_close(ws) == ([], (4000, 'gone é'))
    ws.close()


def test_the_gunicorn_worker_under_gevent_websockets_name():
    from geventws.compat.gunicorn.workers import GeventWebSocketWorker
    from geventws.gunicorn import GeventWebSocketWorker as ours
    assert GeventWebSocketWorker is ours


def test_websocket_server_is_a_wsgi_server_with_clients(serve):
    server = WebSocketServer(('127.0.0.1', 0), Resource(), debug=True)
    assert server.clients == {} and server.handler_class is CompatHandler
    assert server.logger.name == 'geventws.compat'


# -- gevent-websocket's examples' shapes, with either package --------------------------------

def _script(tmp_path, name, package):
    """tests/apps/``name``, with its import lines naming ``package``."""
    if package == 'geventws.compat':
        return os.path.join(APPS_DIR, name)
    with open(os.path.join(APPS_DIR, name)) as source:
        lines = [line.replace('geventws.compat as geventwebsocket', 'geventwebsocket')
                 .replace('geventws.compat', 'geventwebsocket')
                 if line.startswith(('import ', 'from ')) else line for line in source]
    path = tmp_path / name
    path.write_text(''.join(lines))
    return str(path)


@pytest.fixture(params=['geventws.compat', 'geventwebsocket'])
def example(request, programs, tmp_path):
    """``example(name) -> Program``: a gevent-websocket-shaped script of tests/apps run
    with the import lines of this parameter."""
    def start(name):
        port = free_port()
        return programs([PYTHON, _script(tmp_path, name, request.param), str(port)], port,
                        cwd=APPS_DIR, env=python_env())
    start.package = request.param
    return start


def _cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def test_echoserver_example(example):
    server = example('gws_echoserver.py')
    assert http_get('http://127.0.0.1:%d/version' % server.port) == 'gevent-websocket/0.10.1'
    ws = ws_connect('ws://127.0.0.1:%d/' % server.port)
    ws.send('hello é')
    assert ws.recv() == 'hello é'
    ws.send_binary(b'\x00\xff')
    assert ws.recv() == b'\x00\xff'
    ws.close()
    assert 'Running gevent-websocket/0.10.1' in server.output()


def test_chat_example(example):
    server = example('gws_chat.py')
    url = 'ws://127.0.0.1:%d/chat' % server.port
    alice, bob = ws_connect(url), ws_connect(url)
    alice.send(json.dumps({'msg_type': 'update_clients', 'nickname': 'alice'}))
    assert json.loads(alice.recv())['clients'] == ['alice', 'anonymous']
    bob.send(json.dumps({'msg_type': 'message', 'nickname': 'bob', 'message': 'hi all'}))
    for member in (alice, bob):
        assert json.loads(member.recv()) == {'msg_type': 'message', 'nickname': 'bob',
                                             'message': 'hi all'}
    assert http_get('http://127.0.0.1:%d/' % server.port) == 'chat page'
    alice.close()
    bob.sock.shutdown(socket.SHUT_RDWR)   # gone without a close frame
    bob.sock.close()
    deadline = time.monotonic() + 10
    while True:
        state = json.loads(http_get('http://127.0.0.1:%d/state' % server.port))
        if state == {'clients': 0, 'closed': 2} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state == {'clients': 0, 'closed': 2}
    # Its on_message ignores the None of the close: the connections' loops ended, nothing
    # spins (a spinning loop would take the whole second).
    before = _cpu_seconds(server.pid)
    time.sleep(1)
    assert _cpu_seconds(server.pid) - before < 0.5


def test_plot_graph_example(example):
    server = example('gws_plot_graph.py')
    assert http_get('http://127.0.0.1:%d/' % server.port) == '<html>plot</html>'
    ws = ws_connect('ws://127.0.0.1:%d/data' % server.port)
    points = [ws.recv() for _ in range(5)]
    assert [point.split()[:2] for point in points] == [['0', str(i)] for i in range(5)]
    ws.close()
    assert http_get('http://127.0.0.1:%d/' % server.port) == '<html>plot</html>'


# -- who sees a geventwebsocket module -----------------------------------------------------

REPORT = ('import sys, importlib.util; print(sys.modules.get("geventwebsocket") and '
          'sys.modules["geventwebsocket"].__name__, end=" "); ')


@pytest.mark.parametrize('hidden', [False, True], ids=['installed', 'not-installed'])
def test_importing_geventws_registers_nothing(hidden):
    env = {'PYTHONPATH': os.pathsep.join(
        ([HIDDEN] if hidden else []) + [os.path.dirname(APPS_DIR.rstrip(os.sep))])}
    result = run_python('import geventws, geventws.compat, geventws.gunicorn, geventws.serve\n'
                        + REPORT + 'print(importlib.util.find_spec("geventwebsocket") '
                        'is not None)', **env)
    assert result.stdout.split() == ['None', str(not hidden)], result.stderr


def test_register_stands_in_only_where_gevent_websocket_is_not_installed():
    code = ('from geventws.compat import register; print(register(), register(), end=" "); '
            + REPORT + 'import geventwebsocket.handler as h, geventwebsocket.resource; '
            'from geventwebsocket import WebSocketServer, WebSocketError; '
            'print(h.WebSocketHandler.__module__)')
    hidden = run_python(code, PYTHONPATH=HIDDEN)
    assert hidden.stdout.split() == ['True', 'True', 'geventws.compat',
                                     'geventws.compat.handler'], hidden.stderr
    real = run_python(code)
    assert real.stdout.split() == ['False', 'False', 'None', 'geventwebsocket.handler'], \
        real.stderr
