"""A chat room in Flask: ``python examples/chat/app.py --host 127.0.0.1 --port 8000``.

http://127.0.0.1:8000/ is the room's page (static/: HTML, JS and CSS, no build step): each
tab joins through one WebSocket at ``/chat?name=...`` and sees every message and who comes
and goes. A WebSocket at ``/`` itself gets an echo server (text and binary), so this is also
the server that ``make run`` promises WebSocket clients. It also runs under gunicorn, with
one worker since the room lives in the worker's memory::

    gunicorn -k geventws.gunicorn.GeventWebSocketWorker --chdir examples/chat app:app
"""
import argparse
import json
import logging

from flask import Flask, request

from geventws import broadcast
from geventws.routing import Sockets
from geventws.serve import make_server, serve_until_stopped, urls

app = Flask(__name__)
sockets = Sockets(app)
log = logging.getLogger('chat')
MAX_NAME = 32
MAX_TEXT = 2000


class Room:
    """Who is in the room, and telling all of them."""

    def __init__(self):
        self.members = {}   # WebSocket -> name

    def join(self, ws, name):
        self.members[ws] = name
        log.info('%s joined', name)
        self.broadcast(type='join', name=name, online=sorted(self.members.values()))

    def say(self, ws, text):
        self.broadcast(type='message', name=self.members[ws], text=text[:MAX_TEXT])

    def leave(self, ws):
        name = self.members.pop(ws)
        log.info('%s left (%s %s)', name, ws.close_code, ws.close_reason or '')
        self.broadcast(type='leave', name=name, code=ws.close_code, reason=ws.close_reason,
                       online=sorted(self.members.values()))

    def broadcast(self, **event):
        # One frame for every member, queued without waiting for any of them: a member
        # whose tab stopped reading falls behind (skipped past 1 MiB), not the room.
        broadcast(self.members, json.dumps(event))


room = Room()


@app.route('/')
def page():
    return app.send_static_file('index.html')


@sockets.route('/')
def echo(ws):
    for message in ws:
        ws.send(message)


@sockets.route('/chat')
def chat(ws):
    name = request.args.get('name', '').strip()[:MAX_NAME] or 'guest'
    room.join(ws, name)
    try:
        for message in ws:
            if isinstance(message, str):   # binary messages have no place in the room
                room.say(ws, message)
    finally:
        room.leave(ws)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000, help='8000 (0: any free port)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    server = make_server(app, args.host, args.port, log=None)
    page_url, ws_url = urls(server)
    print('chat room at %s (its socket: %schat); WebSocket echo at %s'
          % (page_url, ws_url, ws_url), flush=True)
    serve_until_stopped(server)


if __name__ == '__main__':
    main()
