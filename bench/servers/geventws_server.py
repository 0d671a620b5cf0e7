"""geventws echo server for the benchmark: ``python geventws_server.py PORT``.

A text message starting with '!' is sent to every open connection with ``broadcast()`` (S6);
every other message is echoed. With ``GEVENTWS_NO_EXTENSIONS=1`` it runs the pure-Python twin; without it, it refuses to
start unless the compiled hot path is in use, so a table row is never mislabelled.
"""
import os
import sys

from gevent.pywsgi import WSGIServer

import geventws


#: The open connections, for S6: a text message starting with '!' goes to all of them.
OPEN = set()


def app(environ, start_response):
    ws = environ['wsgi.websocket']
    OPEN.add(ws)
    try:
        for message in ws:
            if type(message) is str and message[:1] == '!':
                geventws.broadcast(OPEN, message)
            else:
                ws.send(message)
    finally:
        OPEN.discard(ws)
    return []


if __name__ == '__main__':
    if not os.environ.get('GEVENTWS_NO_EXTENSIONS') and not geventws.speedups_enabled():
        sys.exit('geventws_server: the compiled speedups are not built (run make build)')
    geventws.recycle_frame_stacks()   # as geventws serve and the gunicorn worker do
    WSGIServer(('127.0.0.1', int(sys.argv[1])), app, handler_class=geventws.WebSocketHandler,
               log=None).serve_forever()
