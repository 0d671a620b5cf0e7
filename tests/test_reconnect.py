"""``WebSocketClient(url, reconnect=True)``: a new connection after each that the app did not
close, with its headers asked anew (the last id seen), ``onopen`` again, the blocking API
going on with the next connection's messages, backoff between failed attempts up to a
number of them, and ``close()`` ending it all, also between two attempts. The client runs in
this thread's hub; the servers in their own threads (``serve``).

Across a worker killed behind HAProxy, with the broker's ids: test_pubsub_deploy.py."""
import time

import gevent

from geventws import WebSocketClient, connect
from helpers import free_port


def counting_app(environ, start_response):
    """Each connection gets the Last-Event-ID it came with, then one more message, then the
    server closes it with 1001 (as a server going away does)."""
    ws = environ['wsgi.websocket']
    last = environ.get('HTTP_LAST_EVENT_ID', 'none')
    ws.send('since %s' % last)
    ws.send('%d' % (int(last) + 1 if last.isdigit() else 1))
    ws.receive()   # the client's answer, then the server goes away
    ws.close(1001, 'going away')
    return []


def test_receive_goes_on_across_connections_with_the_last_id(serve):
    server = serve(counting_app)
    last = {'id': None}
    opened = []
    ws = WebSocketClient(server.url, reconnect=True, reconnect_delay=0.01,
                         headers=lambda: {'Last-Event-ID': last['id']} if last['id'] else {})
    ws.onopen = lambda event: opened.append(ws.connections)
    seen = []
    for message in ws:
        seen.append(message)
        if not message.startswith('since'):
            last['id'] = message
            ws.send('thanks')
            if message == '3':
                break
    ws.close()
    assert seen == ['since none', '1', 'since 1', '2', 'since 2', '3']
    assert opened == [1, 2, 3] and ws.connections == 3
    assert ws.receive() is None   # closed by the app: no fourth


def test_failed_attempts_back_off_and_end_after_the_limit():
    url = 'ws://127.0.0.1:%d/' % free_port()   # nobody listens
    events = []
    ws = WebSocketClient(url, reconnect=True, reconnect_delay=0.05, reconnect_max_delay=0.2,
                         reconnect_attempts=4)
    ws.onerror = lambda event: events.append(('error', time.monotonic()))
    ws.onclose = lambda event: events.append((event.code, time.monotonic()))
    ws.run_forever()
    assert [kind for kind, _ in events] == ['error', 1006] * 4
    closes = [at for kind, at in events if kind == 1006]
    gaps = [b - a for a, b in zip(closes, closes[1:])]
    print('delays between 4 failed attempts (0.05 s doubling, cap 0.2 s, jittered): %s'
          % ', '.join('%.3f s' % gap for gap in gaps))
    # each delay is at least half of its unjittered value: 0.05, 0.1, 0.2 (capped)
    assert all(gap >= bound for gap, bound in zip(gaps, (0.025, 0.05, 0.1)))
    assert ws.ready_state == ws.CLOSED and ws.connections == 0


def test_close_between_attempts_ends_run_forever(serve):
    url = 'ws://127.0.0.1:%d/' % free_port()
    ws = WebSocketClient(url, reconnect=True, reconnect_delay=30)
    runner = ws.start()
    gevent.sleep(0.1)   # the first attempt failed; the next is 15-30 s away
    ws.close()
    assert ws.join(5)
    assert runner.successful()


def test_connect_opens_the_first_and_reconnects_after(serve):
    server = serve(counting_app)
    ws = connect(server.url, reconnect=True, reconnect_delay=0.01,
                 headers=lambda: {'Last-Event-ID': '41'})
    assert ws.ready_state == ws.OPEN and ws.connections == 1
    assert [ws.receive(), ws.receive()] == ['since 41', '42']
    ws.send('thanks')
    assert [ws.receive(), ws.receive()] == ['since 41', '42'] and ws.connections == 2
    ws.close()


def test_without_reconnect_one_connection_only(serve):
    server = serve(counting_app)
    ws = WebSocketClient(server.url)
    assert ws.receive() == 'since none'
    assert ws.receive() == '1'
    ws.send('thanks')
    assert ws.receive() is None and ws.close_code == 1001 and ws.connections == 1
