"""``geventws.routing.Sockets``: WebSocket routes declared on Flask and Bottle apps, next to
their own HTTP routes; and Bottle's own ``bottle.run(server='gevent', handler_class=...)``."""
import os
import urllib.error

import flask
import pytest
import websocket
from gevent.pywsgi import WSGIHandler

from geventws.routing import Sockets
from helpers import (PYTHON, ROOT, assert_echoes, free_port, http_get, import_app,
                     python_env)

bottle_app = import_app('bottle_app')
flask_app = import_app('flask_app')


def flask_page_and_socket():
    """One path with a page and a WebSocket, and a blueprint's socket with a URL variable."""
    app = flask.Flask(__name__)
    sockets = Sockets(app)

    @app.route('/')
    def page():
        return 'the page'

    @sockets.route('/')
    def greet(ws):
        ws.send('the socket')

    @sockets.route('/private')
    def private(ws):
        return 'members only', 403   # refused: the socket was never used

    blueprint = flask.Blueprint('rooms', __name__)
    room_sockets = Sockets(blueprint)

    @room_sockets.route('/<int:number>')
    def room(ws, number):
        ws.send('room %d' % (number + 1))

    app.register_blueprint(blueprint, url_prefix='/rooms')
    return app


@pytest.mark.parametrize('app', [flask_app.app, bottle_app.app])
def test_websocket_and_http_routes(serve, app):
    server = serve(app)
    base = '127.0.0.1:%d' % server.port
    assert http_get('http://%s/' % base).startswith('hello from')
    ws = websocket.create_connection('ws://%s/echo' % base, timeout=10)
    assert_echoes(ws)
    ws.close()
    ws = websocket.create_connection('ws://%s/room/kitchen' % base, timeout=10)
    assert ws.recv() == 'welcome to kitchen'


@pytest.mark.parametrize('app', [flask_app.app, bottle_app.app])
def test_plain_get_on_a_websocket_route_is_refused(serve, app):
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_get('http://127.0.0.1:%d/echo' % serve(app).port)
    assert refused.value.code == 400


def test_flask_page_and_websocket_on_one_path_and_blueprints(serve):
    server = serve(flask_page_and_socket())
    assert http_get('http://127.0.0.1:%d/' % server.port) == 'the page'
    ws = websocket.create_connection('ws://127.0.0.1:%d/' % server.port, timeout=10)
    assert ws.recv() == 'the socket'
    ws = websocket.create_connection('ws://127.0.0.1:%d/rooms/41' % server.port, timeout=10)
    assert ws.recv() == 'room 42'
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection('ws://127.0.0.1:%d/private' % server.port, timeout=10)
    assert refused.value.status_code == 403


def test_flask_plain_route_declared_websocket(serve):
    ws = websocket.create_connection('ws://127.0.0.1:%d/plain' % serve(flask_app.app).port,
                                     timeout=10)
    assert_echoes(ws)


@pytest.mark.parametrize('app', [flask_app.app, bottle_app.app])
def test_server_without_websocket_support_fails_the_upgrade(serve, app):
    server = serve(app, handler_class=WSGIHandler)
    with pytest.raises(websocket.WebSocketBadStatusException) as failure:
        websocket.create_connection('ws://127.0.0.1:%d/echo' % server.port, timeout=10)
    assert failure.value.status_code == 500


def test_server_without_websocket_support_says_what_to_run():
    app = flask_page_and_socket()
    app.testing = True   # the view's exception reaches the test
    with pytest.raises(RuntimeError, match="a WebSocket upgrade reached '/' but the server "
                                           "has no WebSocket support: run it with"):
        app.test_client().get('/', headers={'Upgrade': 'websocket', 'Connection': 'Upgrade'})


def test_sockets_need_flask_or_bottle():
    with pytest.raises(TypeError, match='a Flask app or blueprint or a Bottle app'):
        Sockets(object())


def test_bottle_example_runs_bottle_gevent_server_with_our_handler(programs):
    port = free_port()
    programs([PYTHON, os.path.join('examples', 'bottle_app.py'), '--port', str(port)], port,
             cwd=ROOT, env=python_env())
    assert http_get('http://127.0.0.1:%d/' % port).startswith('Bottle with geventws')
    ws = websocket.create_connection('ws://127.0.0.1:%d/echo' % port, timeout=10)
    assert_echoes(ws)
    ws.close()


def test_sockets_is_also_importable_from_the_package():
    import geventws
    assert geventws.Sockets is Sockets
