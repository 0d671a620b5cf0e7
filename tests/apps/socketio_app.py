"""A Flask-SocketIO app as its users write one (nothing in it names geventws), served by
``python -m geventws serve``, the gunicorn worker or ``socketio_script.py``.
``SOCKETIO_MESSAGE_QUEUE`` (a redis:// URL) makes it Flask-SocketIO's scaled-out form, whose
emits reach the clients of every process. The ``info`` event tells the tests which engine
served the WebSocket: the middleware around the app keeps the ``wsgi.websocket`` of the
upgrade requests in progress (observing only)."""
import os
import sys
import time

from flask import Flask, request
from flask_socketio import SocketIO, disconnect, emit, join_room, leave_room

app = Flask(__name__)
socketio = SocketIO(app, message_queue=os.environ.get('SOCKETIO_MESSAGE_QUEUE') or None)
connected = set()
upgrades = []


@app.route('/')
def index():
    return 'hello from flask-socketio'


@socketio.on('connect')
def on_connect():
    connected.add(request.sid)


@socketio.on('disconnect')
def on_disconnect(*args):
    connected.discard(request.sid)


@socketio.on('echo')
def on_echo(data):
    emit('echo', data)


@socketio.on('join')
def on_join(room):
    join_room(room)
    emit('joined', {'room': room, 'pid': os.getpid()})


@socketio.on('leave')
def on_leave(room):
    leave_room(room)
    emit('left', room)


@socketio.on('to_room')
def on_to_room(message):
    socketio.emit('room_message', {'text': message['text'], 'from': os.getpid()},
                  to=message['room'])


@socketio.on('ticks')
def on_ticks(count):
    sid = request.sid

    def tick():
        for i in range(count):
            socketio.sleep(0.01)
            socketio.emit('tick', i, to=sid)
    socketio.start_background_task(tick)


@socketio.on('hog')
def on_hog(seconds):
    """Holds this process's CPU without yielding for ``seconds``: meanwhile only the other
    workers accept connections (the tests place clients on each worker so)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@socketio.on('kick')
def on_kick():
    disconnect()


@socketio.on('info')
def on_info():
    from engineio.async_drivers import gevent as engineio_gevent
    module = sys.modules.get('geventwebsocket')
    return {'pid': os.getpid(), 'connected': len(connected),
            'geventwebsocket': module.__name__ if module is not None else None,
            'engineio_websocket': ('simple-websocket' if engineio_gevent.SimpleWebSocketWSGI
                                   else 'gevent-websocket'),
            'open_websockets': sorted('%s.%s' % (type(ws).__module__, type(ws).__name__)
                                      for ws in upgrades if ws.ready_state == 1)}


def _observing(wsgi_app):
    def observed(environ, start_response):
        ws = environ.get('wsgi.websocket')
        if ws is None:
            return wsgi_app(environ, start_response)
        upgrades.append(ws)
        try:
            return wsgi_app(environ, start_response)
        finally:
            upgrades.remove(ws)
    return observed


app.wsgi_app = _observing(app.wsgi_app)
