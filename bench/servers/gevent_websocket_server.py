"""gevent-websocket 0.10.1 echo server (geventws' predecessor): ``python ... PORT``."""
import sys

from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler


OPEN = set()


def app(environ, start_response):
    """Echo; a text message starting with '!' goes to every open connection (S6), a loop of
    its (blocking) ``send``."""
    ws = environ['wsgi.websocket']
    OPEN.add(ws)
    try:
        while True:
            message = ws.receive()
            if message is None:
                break
            if type(message) is str and message[:1] == '!':
                for other in list(OPEN):
                    other.send(message)
            else:
                ws.send(message)
    finally:
        OPEN.discard(ws)
    return []


if __name__ == '__main__':
    WSGIServer(('127.0.0.1', int(sys.argv[1])), app, handler_class=WebSocketHandler,
               log=None).serve_forever()
