"""An app written for gevent-websocket, in the shape of its examples/plot_graph.py (Python 3):
a ``WebSocketApplication`` whose ``on_open`` streams data points, next to a plain WSGI app,
under ``WebSocketServer(..., debug=True)``. Only the import lines name geventws.compat; the
tests also run it with them naming gevent-websocket. ``python gws_plot_graph.py PORT``."""
import random
import sys

import gevent

from geventws.compat.server import WebSocketServer
from geventws.compat.resource import WebSocketApplication, Resource


class PlotApplication(WebSocketApplication):
    def on_open(self):
        for i in range(10000):
            self.ws.send('0 %s %s\n' % (i, random.random()))
            gevent.sleep(0.01)


def static_wsgi_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/html')])
    return [b'<html>plot</html>']


if __name__ == '__main__':
    resource = Resource(apps={
        '/': static_wsgi_app,
        '/data': PlotApplication
    })
    server = WebSocketServer(('127.0.0.1', int(sys.argv[1])), resource, debug=True)
    server.serve_forever()
