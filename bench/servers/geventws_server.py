"""geventws echo server for the benchmark: ``python geventws_server.py PORT``.

With ``GEVENTWS_NO_EXTENSIONS=1`` it runs the pure-Python twin; without it, it refuses to
start unless the compiled hot path is in use, so a table row is never mislabelled.
"""
import os
import sys

from gevent.pywsgi import WSGIServer

import geventws


def app(environ, start_response):
    ws = environ['wsgi.websocket']
    for message in ws:
        ws.send(message)
    return []


if __name__ == '__main__':
    if not os.environ.get('GEVENTWS_NO_EXTENSIONS') and not geventws.speedups_enabled():
        sys.exit('geventws_server: the compiled speedups are not built (run make build)')
    geventws.recycle_frame_stacks()   # as geventws serve and the gunicorn worker do
    WSGIServer(('127.0.0.1', int(sys.argv[1])), app, handler_class=geventws.WebSocketHandler,
               log=None).serve_forever()
