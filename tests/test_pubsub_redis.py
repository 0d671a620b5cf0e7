"""``geventws.pubsub.Broker`` on Redis, with real parts: a ``redis-server`` of each test's
own on a free port, and the app of tests/apps/pubsub_app.py in ``geventws serve`` processes
(the Redis backend needs a monkey-patched process, which this one is not). Each message a
subscriber gets is ``<id> <message>``.

Order across processes over 10,000 messages; the history's limit; Redis restarted under
publishers and subscribers. The deployment behind HAProxy is in test_pubsub_deploy.py.
"""
import threading
import time

import pytest
import websocket

from geventws.pubsub import parse_id
from helpers import APPS_DIR, PYTHON, free_port, python_env

pytestmark = pytest.mark.redis


def serve_pubsub(programs, redis, **env):
    """``geventws serve pubsub_app:app`` on Redis; returns its port."""
    port = free_port()
    programs([PYTHON, '-m', 'geventws', 'serve', 'pubsub_app:app', '--port', str(port)],
             port, cwd=APPS_DIR, env=python_env(REDIS_URL=redis.url, **env))
    return port


def open_socket(port, path, **options):
    ws = websocket.create_connection('ws://127.0.0.1:%d%s' % (port, path), timeout=20,
                                     **options)
    ws.backlog = []   # a subscriber's: what came before the app said it had subscribed
    while True:
        message = ws.recv()
        if message.startswith('pid '):
            return ws
        ws.backlog.append(message)


class Subscriber(threading.Thread):
    """Reads ``count`` messages of ``channel`` on ``port`` in a thread: ``messages`` as
    (id, text)."""

    def __init__(self, port, channel, count):
        super().__init__(daemon=True)
        self.ws = open_socket(port, '/sub/' + channel)
        self.count = count
        self.messages = []
        self.error = None
        self.start()

    def run(self):
        try:
            while len(self.messages) < self.count:
                message_id, text = self.ws.recv().split(' ', 1)
                self.messages.append((message_id, text))
        except Exception as exc:   # reported by result()
            self.error = exc

    def result(self, timeout=60):
        self.join(timeout)
        assert not self.is_alive(), 'only %d of %d messages' % (len(self.messages), self.count)
        assert self.error is None, (self.error, len(self.messages))
        self.ws.close()
        return self.messages


def publish_all(port, channel, messages):
    """Publish ``messages`` through the app at ``port``; their ids (None: failed)."""
    ws = open_socket(port, '/pub/' + channel)
    for message in messages:
        ws.send(message)
    ids = []
    for message in messages:
        answer, rest = ws.recv().split(' ', 1)
        ids.append(rest if answer == 'ok' else None)
    ws.close()
    return ids


def assert_in_order(messages, publishers):
    """Ids strictly increasing, and each publisher's messages (``<publisher>-<n>``) all
    there, in its order."""
    ids = [parse_id(message_id) for message_id, _ in messages]
    assert all(a < b for a, b in zip(ids, ids[1:]))
    seen = {}
    for _, text in messages:
        publisher, n = text.rsplit('-', 1)
        seen.setdefault(publisher, []).append(int(n))
    assert seen == publishers, {p: len(n) for p, n in seen.items()}


def test_order_of_10000_messages_from_4_publishers_on_2_processes(programs, redis_server):
    redis = redis_server()
    ports = [serve_pubsub(programs, redis) for _ in range(2)]
    total, per_publisher = 10000, 2500
    subscribers = [Subscriber(port, 'order', total) for port in ports for _ in range(2)]
    start = time.monotonic()
    publishers = [threading.Thread(target=publish_all, daemon=True, args=(
        ports[k % 2], 'order', ['p%d-%d' % (k, n) for n in range(per_publisher)]))
        for k in range(4)]
    for thread in publishers:
        thread.start()
    for thread in publishers:
        thread.join(120)
    results = [subscriber.result(120) for subscriber in subscribers]
    elapsed = time.monotonic() - start
    print('%d messages from 4 publishers on 2 processes to 4 subscribers: %.2f s, '
          '%.0f messages/s published, %.0f deliveries/s'
          % (total, elapsed, total / elapsed, 4 * total / elapsed))
    expected = {'p%d' % k: list(range(per_publisher)) for k in range(4)}
    for messages in results:
        assert_in_order(messages, expected)
        assert messages == results[0]   # one order, whichever process published


def test_history_limit_on_redis_is_reported(programs, redis_server):
    # Redis trims a stream (MAXLEN ~) by whole nodes: small nodes make it trim soon.
    redis = redis_server('--stream-node-max-entries', '5')
    port = serve_pubsub(programs, redis, PUBSUB_HISTORY='10')
    ids = publish_all(port, 'h', ['m-%d' % n for n in range(100)])
    assert None not in ids
    lost = open_socket(port, '/sub/h?since=' + ids[0])
    assert lost.backlog == ['lost ' + ids[-1]]
    resumed = open_socket(port, '/sub/h', header=['Last-Event-ID: ' + ids[-3]])
    assert resumed.backlog == ['%s m-%d' % (ids[n], n) for n in (98, 99)]
    for ws in (lost, resumed):
        ws.close()


def test_redis_restart_under_publishers_and_subscribers(programs, redis_server):
    """Publishers get a clear failure while Redis is down; subscribers stay connected and
    get every message that was published (acknowledged), once, in order."""
    redis = redis_server()
    ports = [serve_pubsub(programs, redis) for _ in range(2)]
    subscribers = [Subscriber(port, 'r', 10 ** 9) for port in ports]
    publisher = open_socket(ports[0], '/pub/r')
    published, failed, n = [], 0, 0
    down_at = up_at = None
    while len(published) < 600:
        if len(published) == 300 and down_at is None:
            redis.stop()
            down_at = time.monotonic()
        if down_at is not None and up_at is None and time.monotonic() - down_at > 0.5:
            redis.start()
            up_at = time.monotonic()
        publisher.send('m-%d' % n)
        answer, rest = publisher.recv().split(' ', 1)
        if answer == 'ok':
            published.append((rest, 'm-%d' % n))
        else:
            failed += 1
            assert rest == 'm-%d' % n
            time.sleep(0.01)
        n += 1
    publisher.close()
    deadline = time.monotonic() + 30
    while any(len(s.messages) < len(published) for s in subscribers):
        assert time.monotonic() < deadline, [len(s.messages) for s in subscribers]
        time.sleep(0.05)
    caught_up = time.monotonic() - up_at
    print('Redis down %.2f s: %d publishes failed, %d acknowledged; subscribers on both '
          'processes had all of them %.2f s after the restart'
          % (up_at - down_at, failed, len(published), caught_up))
    assert failed > 0
    for subscriber in subscribers:
        assert subscriber.is_alive() and subscriber.error is None   # still connected
        assert subscriber.messages == published
        subscriber.ws.close()
