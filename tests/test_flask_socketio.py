"""Flask-SocketIO on geventws's engine, with the real python-socketio client: an unmodified
Flask-SocketIO app (apps/socketio_app.py) under ``python -m geventws serve``, the gunicorn
worker (two workers sharing Flask-SocketIO's Redis message queue, a real redis-server) and a
script of its own (``socketio.run`` after ``import geventws.compat.install``). Where
gevent-websocket is not installed (apps/hide_gevent_websocket), engineio finds
geventws.compat under its name and takes its gevent-websocket path, whose WebSocket is
geventws's; where it is installed, that path is taken all the same and the WebSocket is still
geventws's (the handler is ours). Websocket-only and polling-then-upgrade, rooms, emits
from the server, a server-side disconnect, a client gone without a word."""
import os
import socket
import subprocess
import threading
import time

import pytest
import socketio

from helpers import (APPS_DIR, PYTHON, free_port, http_get, python_env, require_tool)

HIDDEN = os.path.join(APPS_DIR, 'hide_gevent_websocket')
OURS = ['geventws.io.websocket.WebSocket']
TIMEOUT = 10


def _env(hidden, **extra):
    env = python_env(**extra)
    if hidden:
        env['PYTHONPATH'] = os.pathsep.join([HIDDEN, env['PYTHONPATH']])
    return env


class Member:
    """A python-socketio client that keeps what the server emits to it, per event."""

    def __init__(self, port, transports=('websocket',)):
        self.sio = socketio.Client(reconnection=False)
        self.received = {}
        self.arrived = threading.Condition()
        self.disconnected = threading.Event()
        self.sio.on('*', self._record)
        self.sio.on('disconnect', lambda *args: self.disconnected.set())
        self.sio.connect('http://127.0.0.1:%d' % port,
                         transports=list(transports) if transports else None,
                         wait_timeout=TIMEOUT)

    def _record(self, event, data=None):
        with self.arrived:
            self.received.setdefault(event, []).append(data)
            self.arrived.notify_all()

    def wait_for(self, event, count=1):
        """The first ``count`` payloads of ``event`` once they arrived."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received.get(event, ())) >= count,
                                         TIMEOUT), (event, self.received)
            return self.received[event][:count]

    def info(self):
        return self.sio.call('info', timeout=TIMEOUT)

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()


@pytest.fixture
def members():
    made = []

    def connect(port, transports=('websocket',)):
        member = Member(port, transports)
        made.append(member)
        return member

    yield connect
    for member in made:
        member.close()


def _until(check, what):
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, what
            return value
        time.sleep(0.05)


def _raw_engineio_client(port):
    """A socket.io client made of a plain socket (websocket-client's handshake, then the
    engine.io and socket.io open packets by hand), to be dropped without a close frame."""
    import websocket
    ws = websocket.create_connection(
        'ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket' % port, timeout=TIMEOUT)
    assert ws.recv().startswith('0{')   # engine.io open
    ws.send('40')                       # socket.io connect, default namespace
    assert ws.recv().startswith('40{')
    return ws


def _drop(ws):
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    ws.sock.close()   # a reset: no close frame, no FIN


def _exercise(port, members, expect_module, ours=OURS):
    """Every Flask-SocketIO feature the tests ask for, against one server process whose
    WebSockets are of the classes ``ours`` names (a list of one)."""
    first = members(port)
    info = first.info()
    assert info['geventwebsocket'] == expect_module
    assert info['engineio_websocket'] == 'gevent-websocket'
    assert info['open_websockets'] == ours
    # websocket-only: an event echoed
    first.sio.emit('echo', {'text': 'hello é', 'n': 1})
    assert first.wait_for('echo') == [{'text': 'hello é', 'n': 1}]
    # polling, then the upgrade to websocket
    upgraded = members(port, transports=None)
    _until(lambda: upgraded.sio.transport() == 'websocket', 'no upgrade to websocket')
    assert upgraded.info()['open_websockets'] == ours * 2
    upgraded.sio.emit('echo', 'after the upgrade')
    assert upgraded.wait_for('echo') == ['after the upgrade']
    # rooms
    first.sio.emit('join', 'blue')
    first.wait_for('joined')
    upgraded.sio.emit('to_room', {'room': 'blue', 'text': 'to blue'})
    assert first.wait_for('room_message')[0]['text'] == 'to blue'
    upgraded.sio.emit('echo', 'fence')   # everything the server sent before this arrived
    upgraded.wait_for('echo', 2)
    assert 'room_message' not in upgraded.received
    # emits from a background task of the server
    upgraded.sio.emit('ticks', 3)
    assert upgraded.wait_for('tick', 3) == [0, 1, 2]
    # a server-side disconnect
    upgraded.sio.emit('kick')
    assert upgraded.disconnected.wait(TIMEOUT)
    _until(lambda: first.info()['connected'] == 1, 'the kicked client is still connected')
    # a client gone without a word: its socket is reset, the server lets it go
    dropped = _raw_engineio_client(port)
    _until(lambda: first.info()['connected'] == 2, 'the raw client did not connect')
    _drop(dropped)
    _until(lambda: first.info()['connected'] == 1, 'the dropped client was kept')
    assert first.info()['open_websockets'] == ours


@pytest.mark.parametrize('hidden', [True, False], ids=['without-gevent-websocket',
                                                       'with-gevent-websocket'])
def test_geventws_serve(programs, members, hidden):
    port = free_port()
    server = programs([PYTHON, '-m', 'geventws', 'serve', 'socketio_app:app', '--port',
                       str(port)], port, cwd=APPS_DIR, env=_env(hidden))
    assert http_get('http://127.0.0.1:%d/' % port) == 'hello from flask-socketio'
    _exercise(port, members, 'geventws.compat' if hidden else 'geventwebsocket')
    assert 'Traceback' not in server.output()


def test_a_script_of_its_own_with_the_one_line(programs, members):
    port = free_port()
    server = programs([PYTHON, 'socketio_script.py', str(port)], port, cwd=APPS_DIR,
                      env=_env(True))
    # socketio.run() serves with gevent-websocket's handler: geventws.compat's, whose
    # WebSockets are geventws's with gevent-websocket's members besides.
    _exercise(port, members, 'geventws.compat', ['geventws.compat.websocket.WebSocket'])
    assert 'Traceback' not in server.output()


@pytest.mark.parametrize('hidden', [True, False], ids=['without-gevent-websocket',
                                                       'with-gevent-websocket'])
def test_a_wsgi_server_of_its_own_without_the_line(programs, members, hidden):
    """Without gevent-websocket and without the line, engineio falls back to simple-websocket
    on the socket that ``wsgi.input`` leads to (its own WebSocket); with gevent-websocket
    installed, its path gives geventws's WebSocket. Both transports work either way."""
    port = free_port()
    server = programs([PYTHON, 'socketio_handler_script.py', str(port)], port, cwd=APPS_DIR,
                      env=_env(hidden))
    for transports in (('websocket',), None):
        member = members(port, transports)
        _until(lambda: member.sio.transport() == 'websocket', 'no upgrade to websocket')
        info = member.info()
        assert info['geventwebsocket'] == (None if hidden else 'geventwebsocket')
        assert (info['engineio_websocket'], info['open_websockets']) == (
            ('simple-websocket', []) if hidden else ('gevent-websocket', OURS))
        member.sio.emit('echo', 'é')
        assert member.wait_for('echo') == ['é']
        member.close()
    assert 'Traceback' not in server.output()


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of this test's own on a free port (no persistence)."""
    binary = require_tool('redis-server', "Flask-SocketIO's message queue")
    port = free_port()
    proc = subprocess.Popen([binary, '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                             '--appendonly', 'no', '--dir', str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        import redis
        client = redis.Redis(port=port)
        _until(lambda: _pings(client), 'redis-server did not answer')
        yield 'redis://127.0.0.1:%d/0' % port
    finally:
        proc.terminate()
        proc.wait(10)


def _pings(client):
    try:
        return client.ping()
    except Exception:   # noqa: BLE001   (not listening yet)
        return False


@pytest.mark.gunicorn
@pytest.mark.redis
@pytest.mark.parametrize('hidden', [True, False], ids=['without-gevent-websocket',
                                                       'with-gevent-websocket'])
def test_gunicorn_two_workers_with_the_redis_message_queue(programs, members, redis_url,
                                                           hidden):
    """Clients of both workers; what one worker emits to a room reaches the members the
    other serves, through Redis. (Polling without sticky sessions cannot work with several
    workers, as Flask-SocketIO's documentation says: websocket-only here, both transports
    under one worker.)"""
    port = free_port()
    programs([PYTHON, '-m', 'gunicorn', '-k', 'geventws.gunicorn.GeventWebSocketWorker',
              '-w', '2', '-b', '127.0.0.1:%d' % port, '--no-control-socket',
              '--graceful-timeout', '1', 'socketio_app:app'], port, cwd=APPS_DIR,
             env=_env(hidden, SOCKETIO_MESSAGE_QUEUE=redis_url))
    # Clients on both workers: while one worker is kept busy (the 'hog' event), only the
    # other accepts; then the other way round.
    first = members(port)
    by_pid = {first.info()['pid']: [first]}
    for hogged_by in (first, None):
        hogged_by = hogged_by or next(group[0] for pid, group in by_pid.items()
                                      if pid != first.info()['pid'])
        hogged_by.sio.emit('hog', 1.5)
        time.sleep(0.2)   # (the event is being handled)
        for _ in range(2):
            member = members(port)
            by_pid.setdefault(member.info()['pid'], []).append(member)
        hogged_by.info()   # answered once the hog is over
    assert len(by_pid) == 2 and all(len(group) >= 2 for group in by_pid.values()), by_pid
    everyone = [member for group in by_pid.values() for member in group]
    info = everyone[0].info()
    assert info['geventwebsocket'] == ('geventws.compat' if hidden else 'geventwebsocket')
    assert (info['engineio_websocket'], info['open_websockets']) == ('gevent-websocket',
                                                                     OURS * len(by_pid[info['pid']]))
    for member in everyone:
        member.sio.emit('join', 'all')
        member.wait_for('joined')
    senders = [group[0] for group in by_pid.values()]
    for number, sender in enumerate(senders):
        sender.sio.emit('to_room', {'room': 'all', 'text': 'from sender %d' % number})
    for member in everyone:
        got = member.wait_for('room_message', 2)
        assert sorted(message['text'] for message in got) == ['from sender 0',
                                                              'from sender 1']
        assert {message['from'] for message in got} == set(by_pid)


@pytest.mark.gunicorn
@pytest.mark.parametrize('preload', [[], ['--preload']], ids=['', 'preload'])
def test_gunicorn_one_worker_both_transports(programs, members, preload):
    """Also with ``--preload``, where the app is imported in the arbiter, before any worker:
    the worker class registers geventws.compat as gunicorn loads it, earlier still."""
    port = free_port()
    programs([PYTHON, '-m', 'gunicorn', '-k', 'geventws.gunicorn.GeventWebSocketWorker',
              '-w', '1', '-b', '127.0.0.1:%d' % port, '--no-control-socket',
              '--graceful-timeout', '1', *preload, 'socketio_app:app'], port, cwd=APPS_DIR,
             env=_env(True))
    _exercise(port, members, 'geventws.compat')


def test_benchmark_s7_smoke(tmp_path):
    """bench/run.py's S7 in a smoke run: the load generator speaks Socket.IO to the app on
    each of the three engines, and every echo it checks comes back (no timing asserted)."""
    require_tool('cc', 'compiles the load generator')
    require_tool('taskset', 'pins the servers and the load generator')
    bench = os.path.join(os.path.dirname(APPS_DIR.rstrip(os.sep)), '..', 'bench')
    proc = subprocess.run(
        [PYTHON, os.path.join(bench, 'run.py'), '--quick', '--servers',
         'socketio-geventws,socketio-gevent-websocket,socketio-simple-websocket',
         '--scenarios', 'S7', '--warmup', '0.1', '--duration', '0.3',
         '--output', str(tmp_path / 'smoke.md')], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '### S7 Flask-SocketIO, 64 connections' in proc.stdout
    for engine in ('geventws', 'gevent-websocket', 'simple-websocket'):
        assert ' on %s ' % engine in proc.stdout
    assert 'failed' not in proc.stdout and '- S7: Flask-SocketIO round trips/s' in proc.stdout
