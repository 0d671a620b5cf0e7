"""A chat room in Flask: ``python examples/chat/app.py --host 127.0.0.1 --port 8000``.

http://127.0.0.1:8000/ is the room's page (static/: HTML, JS and CSS, no build step): each
tab joins through one WebSocket at ``/chat?name=...`` and sees every message and who comes
and goes. A WebSocket at ``/`` itself gets an echo server (text and binary), so this is also
the server that ``make run`` promises WebSocket clients.

The room is a channel of ``geventws.pubsub.Broker``: in this process by default, or on Redis
with ``--redis URL`` (or $REDIS_URL), and then in any number of processes and hosts, for
example gunicorn's workers::

    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -c examples/gunicorn.conf.py -w 4 \
        --chdir examples/chat app:app

Every event has an id; a page keeps its log and the last id in the tab's sessionStorage, so
a reloaded page (or one whose connection broke: it reconnects) asks for what came after
that id (``/chat?since=ID``) and misses nothing the room's history (1,000 events) still
holds; past that, it is told to start over.
"""
# Before Flask: the Redis client (redis-py) then yields to the hub like everything else.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402

from flask import Flask, request  # noqa: E402

from geventws.pubsub import Broker, BrokerUnavailable, HistoryLost  # noqa: E402
from geventws.routing import Sockets  # noqa: E402
from geventws.serve import make_server, serve_until_stopped, urls  # noqa: E402

app = Flask(__name__)
sockets = Sockets(app)
log = logging.getLogger('chat')
MAX_NAME = 32
MAX_TEXT = 2000


ROOM = 'room'


def with_id(message_id, event):
    """The event (JSON text) with its id inside, as the page stores it for ``since``."""
    return '{"id": %s, %s' % (json.dumps(message_id), event[1:])


class Presence:
    """Who is online: counted in this process, or in a Redis hash that all share (a process
    killed without its leave notices leaves its members counted there)."""

    def __init__(self, redis_url=None):
        self.redis = None
        self.counts = collections.Counter()
        if redis_url:
            import redis
            self.redis = redis.Redis.from_url(redis_url)

    def add(self, name, step=1):
        if self.redis is None:
            self.counts[name] += step
            if self.counts[name] <= 0:
                del self.counts[name]
        elif self.redis.hincrby('chat:online', name, step) <= 0:
            self.redis.hdel('chat:online', name)

    def names(self):
        if self.redis is None:
            return sorted(self.counts)
        return sorted(name.decode() for name, count in self.redis.hgetall('chat:online').items()
                      if int(count) > 0)


class Room:
    """Who is in the room here, and telling everyone in it, here or in the other processes
    (the broker's channel)."""

    def __init__(self, redis_url=None):
        self.redis_url = redis_url
        self.broker = self.presence = None
        self.members = {}   # WebSocket -> name, in this process

    def open(self):
        self.broker = Broker(self.redis_url, envelope=with_id)
        self.presence = Presence(self.redis_url)

    def join(self, ws, name, since):
        if self.broker is None:
            self.open()
        try:
            self.broker.subscribe(ws, ROOM, since=since)
        except (HistoryLost, ValueError) as exc:
            # Too far behind (or nonsense): the page starts over from what comes next.
            ws.send(json.dumps({'type': 'resync'}))
            self.broker.subscribe(ws, ROOM, since=getattr(exc, 'last', None))
        self.members[ws] = name
        self.presence.add(name)
        log.info('%s joined', name)
        self.publish(type='join', name=name, online=self.presence.names())

    def say(self, ws, text):
        try:
            self.publish(type='message', name=self.members[ws], text=text[:MAX_TEXT])
        except BrokerUnavailable:
            ws.send(json.dumps({'type': 'error', 'text': 'not sent: the room is unreachable'}))

    def leave(self, ws):
        name = self.members.pop(ws, None)
        if name is None:
            return
        log.info('%s left (%s %s)', name, ws.close_code, ws.close_reason or '')
        self.presence.add(name, -1)
        self.publish(type='leave', name=name, code=ws.close_code, reason=ws.close_reason,
                     online=self.presence.names())

    def publish(self, **event):
        # Each member gets one frame, queued without waiting for anyone (broadcast()): a
        # member whose tab stopped reading falls behind (skipped past 1 MiB), not the room.
        self.broker.publish(ROOM, json.dumps(event))


room = Room(os.environ.get('REDIS_URL') or None)


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
    try:
        room.join(ws, name, request.args.get('since') or None)
        for message in ws:
            if isinstance(message, str):   # binary messages have no place in the room
                room.say(ws, message)
    finally:
        room.leave(ws)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000, help='8000 (0: any free port)')
    parser.add_argument('--redis', metavar='URL', default=room.redis_url,
                        help='the room on Redis (redis://host:port/db), shared by every '
                             'process that uses it (default: $REDIS_URL, or this process only)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    room.redis_url = args.redis
    room.open()
    server = make_server(app, args.host, args.port, log=None)
    page_url, ws_url = urls(server)
    print('chat room at %s (its socket: %schat); WebSocket echo at %s'
          % (page_url, ws_url, ws_url), flush=True)
    serve_until_stopped(server)


if __name__ == '__main__':
    main()
