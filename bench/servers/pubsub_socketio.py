"""S8, the same app on python-socketio with its RedisManager (Flask-SocketIO's message queue)
on gevent-websocket: every client joins the room ``bench`` on connecting.
``python pubsub_socketio.py PORT`` with $REDIS_URL."""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402

import socketio  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

sio = socketio.Server(async_mode='gevent',
                      client_manager=socketio.RedisManager(os.environ['REDIS_URL']))


@sio.event
def connect(sid, environ):
    sio.enter_room(sid, 'bench')


app = socketio.WSGIApp(sio)

if __name__ == '__main__':
    WSGIServer(('127.0.0.1', int(sys.argv[1])), app, handler_class=WebSocketHandler,
               log=None).serve_forever()
