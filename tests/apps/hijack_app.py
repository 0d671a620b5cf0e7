"""Apps that answer the upgrade on the socket themselves, taking it from the environ as they
do under plain gevent.pywsgi or gunicorn: flask-sock routes (``/echo`` and ``/clock``, in
the shape of flask-sock's examples: a ``ws.receive()`` loop that ends on 'close', and a
thread that sends to the socket on its own), and simple-websocket's own Flask example
(``/sw-echo``, below)."""
import json
import threading
import time

from flask import Flask, request
from flask_sock import Sock

app = Flask(__name__)
app.config['SOCK_SERVER_OPTIONS'] = {'ping_interval': 25}
sock = Sock(app)


@app.route('/')
def index():
    return 'hello from flask-sock'


@sock.route('/echo')
def echo(ws):
    while True:
        data = ws.receive()
        if data == 'close':
            break
        ws.send(json.dumps({'type': 'log', 'text': data}))


@sock.route('/clock')
def clock(ws):
    def send_time():
        for i in range(3):
            time.sleep(0.05)
            ws.send(json.dumps({'type': 'clock', 'tick': i}))
    threading.Thread(target=send_time).start()
    while True:
        data = ws.receive()
        if data == 'close':
            break


# simple-websocket 1.1.0, docs/intro.rst, "Server Example #1: Flask", unchanged but for its
# import line and the app it adds the route to (the app above).
# Copyright (c) 2021 Miguel Grinberg. MIT License: permission is hereby granted, free of
# charge, to any person obtaining a copy of this software ... to deal in the Software
# without restriction (the full text: simple-websocket's LICENSE).
from simple_websocket import Server, ConnectionClosed  # noqa: E402


@app.route('/sw-echo', websocket=True)
def sw_echo():
    ws = Server.accept(request.environ)
    try:
        while True:
            data = ws.receive()
            ws.send(data)
    except ConnectionClosed:
        pass
    return ''
