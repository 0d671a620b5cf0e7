"""A bottle-websocket app as its users write one, run on geventws: only the server adapter's
import names geventws.compat.bottle instead of bottle_websocket. ``python
bottle_websocket_app.py PORT``."""
import sys

from gevent import monkey
monkey.patch_all()

from bottle import get, run  # noqa: E402
from bottle_websocket import websocket  # noqa: E402
from geventws.compat.bottle import GeventWebSocketServer  # noqa: E402


@get('/')
def index():
    return 'hello from bottle-websocket'


@get('/websocket', apply=[websocket])
def echo(ws):
    while True:
        msg = ws.receive()
        if msg is not None:
            ws.send(msg)
        else:
            break


@get('/which', apply=[websocket])
def which(ws):
    ws.send('%s.%s' % (type(ws).__module__, type(ws).__name__))


run(host='127.0.0.1', port=int(sys.argv[1]), server=GeventWebSocketServer, quiet=True)
