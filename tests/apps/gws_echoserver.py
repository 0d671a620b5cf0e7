"""An app written for gevent-websocket, in the shape of its examples/echoserver.py (Python 3):
the low-level API (``wsgi.websocket``, ``receive()`` until None, ``close()``, its
``WebSocketError``) under gevent's own WSGIServer. Only the import lines name geventws.compat;
the tests also run it with them naming gevent-websocket. ``python gws_echoserver.py PORT``."""
import sys

from gevent.pywsgi import WSGIServer
import geventws.compat as geventwebsocket
from geventws.compat.handler import WebSocketHandler


def echo(environ, start_response):
    websocket = environ.get('wsgi.websocket')
    if websocket is None:
        return http_handler(environ, start_response)
    try:
        while True:
            message = websocket.receive()
            if message is None:
                break
            websocket.send(message)
        websocket.close()
    except geventwebsocket.WebSocketError as ex:
        print('%s: %s' % (ex.__class__.__name__, ex))


def http_handler(environ, start_response):
    if environ['PATH_INFO'].strip('/') == 'version':
        start_response('200 OK', [])
        return [agent.encode()]
    start_response('400 Bad Request', [])
    return [b'WebSocket connection is expected here.']


agent = 'gevent-websocket/%s' % geventwebsocket.get_version()
print('Running %s' % agent, flush=True)
WSGIServer(('127.0.0.1', int(sys.argv[1])), echo,
           handler_class=WebSocketHandler).serve_forever()
