"""A Bottle app with WebSocket routes from ``geventws.routing.Sockets`` next to HTTP routes."""
import bottle

from common import echo, whoami
from geventws.routing import Sockets

app = bottle.Bottle()
sockets = Sockets(app)


@app.get('/')
def index():
    return 'hello from bottle'


@app.get('/whoami')
def whoami_page():
    return whoami(bottle.request.environ)


@sockets.route('/echo')
def echo_socket(ws):
    echo(ws)


@sockets.route('/room/<name>')
def room(ws, name):
    ws.send('welcome to %s' % name)
