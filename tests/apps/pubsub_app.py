"""A plain WSGI app on a ``geventws.pubsub.Broker``, for the pub/sub tests: the broker is
Redis at $REDIS_URL when set (each program the tests start), this process's otherwise.

- ``/sub/<channel>?since=ID`` (or a ``Last-Event-ID`` header): every message of the channel
  as ``<id> <message>``, with ``pid <pid>`` once subscribed (after those published since
  ID); when ID is no longer kept, ``lost <last>`` and the messages after ``last``. What the
  client sends is published.
- ``/pub/<channel>``: ``pid <pid>``, then each message the client sends is published and
  answered ``ok <id>``, or ``failed <message>`` when the broker cannot be reached.
"""
import os
from urllib.parse import parse_qs

from geventws.pubsub import Broker, BrokerUnavailable, HistoryLost


def make_app(broker):
    def app(environ, start_response):
        ws = environ.get('wsgi.websocket')
        kind, _, channel = environ['PATH_INFO'].strip('/').partition('/')
        if ws is None or kind not in ('sub', 'pub'):
            start_response('404 Not Found', [('Content-Type', 'text/plain')])
            return [b'not here']
        if kind == 'pub':
            ws.send('pid %d' % os.getpid())
            for message in ws:
                try:
                    ws.send('ok ' + broker.publish(channel, message))
                except BrokerUnavailable:
                    ws.send('failed ' + message)
            return []
        since = (parse_qs(environ.get('QUERY_STRING', '')).get('since', [None])[0] or
                 environ.get('HTTP_LAST_EVENT_ID'))
        try:
            broker.subscribe(ws, channel, since=since)
        except HistoryLost as exc:
            ws.send('lost %s' % exc.last)
            broker.subscribe(ws, channel, since=exc.last)
        ws.send('pid %d' % os.getpid())
        for message in ws:
            broker.publish(channel, message)
        return []
    return app


def with_id(message_id, message):
    return '%s %s' % (message_id, message)


broker = Broker(os.environ.get('REDIS_URL') or None, envelope=with_id,
                history=int(os.environ.get('PUBSUB_HISTORY', '1000')))
app = make_app(broker)
