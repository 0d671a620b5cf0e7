"""The app the stress tests serve with ``python -m geventws serve stress_app:app``: a WebSocket
echo at every path, ``/stats`` with what the server process holds (for leak counts), and a
one-line 404 for any other plain HTTP request, so that every answer a fuzzed head can get is
101, 4xx with one line, or a closed connection."""
import gc
import json
import os

import greenlet

from geventws.io.websocket import WebSocket


def app(environ, start_response):
    ws = environ.get('wsgi.websocket')
    if ws is not None:
        for message in ws:
            ws.send(message)
        return []
    if environ.get('PATH_INFO') == '/stats':
        return _answer(start_response, '200 OK', 'application/json', json.dumps(stats()))
    return _answer(start_response, '404 Not Found', 'text/plain', 'not a WebSocket request\n')


def stats():
    """The process's descriptors, greenlets and WebSocket objects (after a full collection);
    the request asking holds one descriptor and one greenlet of them."""
    gc.collect()
    objects = gc.get_objects()
    return {'fds': len(os.listdir('/proc/self/fd')),
            'greenlets': sum(1 for obj in objects if isinstance(obj, greenlet.greenlet)),
            'websockets': sum(1 for obj in objects if isinstance(obj, WebSocket)),
            'garbage': len(gc.garbage)}


def _answer(start_response, status, content_type, text):
    body = text.encode('utf-8')
    start_response(status, [('Content-Type', content_type),
                            ('Content-Length', str(len(body)))])
    return [body]
