"""S8, geventws: every WebSocket at /sub/bench subscribes to the channel ``bench`` of a
``geventws.pubsub.Broker`` on Redis ($REDIS_URL) and is told ``ready``:
``python -m geventws serve pubsub_geventws:app --port PORT`` (run from bench/servers)."""
import os

from geventws.pubsub import Broker

broker = Broker(os.environ['REDIS_URL'])


def app(environ, start_response):
    ws = environ['wsgi.websocket']
    broker.subscribe(ws, 'bench')
    ws.send('ready')
    ws.receive()   # until the subscriber goes
    return []
