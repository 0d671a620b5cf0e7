"""A Flask app with WebSocket routes from ``geventws.routing.Sockets`` and one plain
``websocket=True`` route, next to HTTP routes."""
from flask import Flask, request

from common import echo, frame_stacks, options, whoami
from geventws.routing import Sockets

app = Flask(__name__)
sockets = Sockets(app)


@app.route('/')
def index():
    return 'hello from flask'


@app.route('/whoami')
def whoami_page():
    return whoami(request.environ)


@app.route('/framestacks')
def frame_stacks_page():
    return frame_stacks()


@sockets.route('/echo')
def echo_socket(ws):
    echo(ws)


@sockets.route('/options')
def options_socket(ws):
    options(ws)


@sockets.route('/whoami')
def whoami_socket(ws):
    ws.send(whoami(ws.environ))
    echo(ws)


@sockets.route('/room/<name>')
def room(ws, name):
    ws.send('welcome to %s' % name)


@app.route('/plain', websocket=True)   # Werkzeug 2+: an upgrade matches only such rules
def plain():
    echo(request.environ['wsgi.websocket'])
    return ''
