"""gevent-websocket 0.10.1 echo server (geventws' predecessor): ``python ... PORT``."""
import sys

from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler


def app(environ, start_response):
    ws = environ['wsgi.websocket']
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message)
    return []


if __name__ == '__main__':
    WSGIServer(('127.0.0.1', int(sys.argv[1])), app, handler_class=WebSocketHandler,
               log=None).serve_forever()
