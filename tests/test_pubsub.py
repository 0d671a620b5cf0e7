"""``geventws.pubsub.Broker`` in one process (the default backend): order, resuming with
``since=``, the history's limit, ids, unsubscribing (also by closing), and the arguments it
refuses. The Redis backend, across processes, is in test_pubsub_redis.py."""
import pytest
import websocket

from geventws import WebSocketHandler
from geventws.pubsub import Broker, HistoryLost, parse_id
from helpers import import_app, settled

pubsub_app = import_app('pubsub_app')


@pytest.fixture
def broker():
    broker = Broker(envelope=pubsub_app.with_id, history=5)
    yield broker
    broker.close()


@pytest.fixture
def server(serve, broker):
    return serve(pubsub_app.make_app(broker))


def subscribe(server, channel, since=None):
    ws = websocket.create_connection(
        'ws://127.0.0.1:%d/sub/%s%s' % (server.port, channel,
                                        '?since=' + since if since else ''), timeout=10)
    ws.backlog = []   # what came before the app said it had subscribed
    while True:
        message = ws.recv()
        if message.startswith('pid '):
            return ws
        ws.backlog.append(message)


def received(ws, count):
    """``count`` messages as (id, text), the backlog first."""
    messages = [ws.backlog.pop(0) if ws.backlog else ws.recv() for _ in range(count)]
    return [tuple(message.split(' ', 1)) for message in messages]


def test_every_subscriber_gets_every_message_in_order(server, broker):
    subscribers = [subscribe(server, 'room') for _ in range(3)]
    ids = [server.call(broker.publish, 'room', 'm%d' % i) for i in range(20)]
    assert [parse_id(i) for i in ids] == sorted(parse_id(i) for i in ids)
    for ws in subscribers:
        assert received(ws, 20) == [(ids[i], 'm%d' % i) for i in range(20)]
        ws.close()
    subscribers[0].close()


def test_what_a_subscriber_sends_reaches_the_others_but_not_other_channels(server):
    alice, bob, other = subscribe(server, 'a'), subscribe(server, 'a'), subscribe(server, 'b')
    alice.send('hi')
    assert received(bob, 1)[0][1] == 'hi'
    assert received(alice, 1)[0][1] == 'hi'
    other.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        other.recv()
    for ws in (alice, bob, other):
        ws.close()


def test_resume_since_an_id_without_gap_or_duplicate(server, broker):
    ids = [server.call(broker.publish, 'r', 'm%d' % i) for i in range(4)]
    late = subscribe(server, 'r', since=ids[1])
    server.call(broker.publish, 'r', 'm4')
    assert [text for _, text in received(late, 3)] == ['m2', 'm3', 'm4']
    late.close()


def test_an_id_older_than_the_history_is_reported(server, broker):
    ids = [server.call(broker.publish, 'h', 'm%d' % i) for i in range(8)]   # keeps 5
    kept = subscribe(server, 'h', since=ids[2])   # m3 is the oldest kept
    assert received(kept, 5) == [(ids[i], 'm%d' % i) for i in range(3, 8)]
    kept.close()
    ws = subscribe(server, 'h', since=ids[1])   # m2 is gone: the app is told
    assert ws.backlog == ['lost %s' % ids[7]]
    ws.backlog = []
    after = server.call(broker.publish, 'h', 'after')
    assert received(ws, 1) == [(after, 'after')]
    with pytest.raises(HistoryLost) as lost:   # an id from before this broker
        server.call(broker.subscribe, None, 'h', '1-1')
    assert lost.value.last == after and lost.value.channel == 'h'
    with pytest.raises(HistoryLost):   # and on a channel nobody here reads: it stays so
        server.call(broker.subscribe, None, 'other', '1-1')
    assert 'other' not in server.call(lambda: broker._channels)
    ws.close()


def test_closing_unsubscribes_and_unsubscribe_stops_delivery(server, broker):
    first, second = subscribe(server, 'c'), subscribe(server, 'c')
    server.call(broker.publish, 'c', 'x')
    received(first, 1)
    received(second, 1)
    assert server.call(broker.subscribers, 'c') == 2
    first.close()
    assert settled(lambda: server.call(broker.subscribers, 'c'), 1) == 1
    second.close()
    assert settled(lambda: server.call(broker.subscribers, 'c'), 0) == 0
    assert server.call(lambda: broker._sockets) == {}


def test_a_subscriber_that_does_not_read_delays_nobody(serve):
    """Delivery is broadcast(): the one that stops reading is dropped at its write_limit
    (on_full='close'), the other gets every message meanwhile."""
    broker = Broker(envelope=pubsub_app.with_id, on_full='close')
    server = serve(pubsub_app.make_app(broker), WebSocketHandler.configure(write_limit=262144))
    stalled, reader = subscribe(server, 'big'), subscribe(server, 'big')
    big = 'x' * 65536
    for n in range(200):   # the reader keeps up: it has each message before the next
        server.call(broker.publish, 'big', '%d %s' % (n, big))
        assert received(reader, 1)[0][1].split(' ', 1)[0] == str(n)
    had = 0
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        while stalled.recv():   # (no close frame: it could not get past what waits)
            had += 1
    print('the stalled subscriber had %d of 200 messages of 64 KiB when the server '
          'dropped it' % had)
    assert had < 200
    assert settled(lambda: server.call(broker.subscribers, 'big'), 1) == 1
    reader.close()
    broker.close()


def test_arguments_it_refuses():
    with pytest.raises(ValueError):
        Broker(history=0)
    with pytest.raises(ValueError):
        Broker(on_full='wait')
    with pytest.raises(TypeError):
        Broker(socket_timeout=1)
    unpatched = Broker('redis://127.0.0.1:1/0')   # (gunicorn --preload: in the master)
    with pytest.raises(RuntimeError):   # redis-py would block gevent's hub
        unpatched.publish('c', 'x')
    unpatched.close()
    for bad in ('x', '1-x', '-1-0'):
        with pytest.raises(ValueError):
            parse_id(bad)
    broker = Broker()
    broker.close()
    with pytest.raises(RuntimeError):
        broker.publish('c', 'after close')
