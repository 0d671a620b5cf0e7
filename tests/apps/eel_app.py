"""An Eel app on geventws: Eel starts its server through bottle-websocket's
``GeventWebSocketServer``; the one line before ``import eel`` puts geventws's adapter in its
place. No browser is opened (``mode=None``): the tests speak Eel's protocol over a WebSocket
as its eel.js does. ``python eel_app.py PORT``."""
import os
import sys

import bottle_websocket
from geventws.compat.bottle import GeventWebSocketServer
bottle_websocket.GeventWebSocketServer = GeventWebSocketServer

import eel  # noqa: E402

eel.init(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'eel_web'))


@eel.expose
def add(a, b):
    return a + b


@eel.expose
def shout_to_pages(text):
    eel.shout(text)   # a JavaScript function the page exposed (eel_web/main.html)
    return 'sent'


@eel.expose
def websocket_classes():
    return ['%s.%s' % (type(ws).__module__, type(ws).__name__) for _, ws in eel._websockets]


eel.start('main.html', mode=None, host='127.0.0.1', port=int(sys.argv[1]),
          close_callback=lambda page, sockets: None)
