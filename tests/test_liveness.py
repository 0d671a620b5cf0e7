"""Every connection answers on its own and never holds unbounded memory: reading never waits
for the app, keepalive finds dead peers, writes are bounded, a flooding peer is served in
turns, and the close echo carries its reason. Against peers no one here wrote (websockets,
websocket-client, a raw socket, a stopped process); each test prints what it measured."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import gevent
import pytest
import websocket
from websockets.exceptions import ConnectionClosed as PeerClosed
from websockets.sync.client import connect as websockets_connect

from geventws import ConnectionClosed, WebSocketHandler, connect
from geventws.protocol.frames import OP_CLOSE, OP_PING, OP_TEXT
from helpers import RawClient, echo_app, frame, rss_kib

TIMEOUT = 10


def _handler(**options):
    return WebSocketHandler.configure(**options)


class AppState:
    """What a server app saw, set from the server's thread."""

    def __init__(self):
        self.done = threading.Event()
        self.wake = threading.Event()
        self.outcome = None


# -- reading never depends on the app ----------------------------------------------------------

def test_an_app_that_only_sends_keeps_a_pinging_client_and_sees_its_close(serve):
    """A ticker that never reads: websockets' keepalive (every 0.5 s, 0.5 s to answer) is
    answered by the hub, and the client's close is answered at once with its code."""
    state = AppState()

    def ticker(environ, start_response):
        ws = environ['wsgi.websocket']
        try:
            while True:
                ws.send('tick')
                gevent.sleep(0.05)
        except ConnectionClosed as exc:
            state.outcome = (exc.code, ws.close_code, ws.close_reason)
            state.done.set()
        return []

    server = serve(ticker)
    with websockets_connect(server.url, ping_interval=0.5, ping_timeout=0.5) as client:
        started = time.monotonic()
        ticks = 0
        while time.monotonic() - started < 4:
            assert client.recv(timeout=TIMEOUT) == 'tick'
            ticks += 1
        closing = time.monotonic()
        client.close(4001, 'bye now')
        took = time.monotonic() - closing
        received = client.protocol.close_rcvd
    print('\n%d ticks in 4 s through 8 keepalive pings; close answered in %.1f ms with %s %r'
          % (ticks, took * 1000, received.code, received.reason))
    assert (received.code, received.reason) == (4001, 'bye now')   # the echo, reason included
    assert took < 1.0   # (the old server never read: the client waited 10 s, then 1006)
    assert state.done.wait(TIMEOUT)
    assert state.outcome[1:] == (4001, 'bye now')


def test_the_peers_close_is_answered_while_the_app_sleeps(serve):
    state = AppState()

    def sleeper(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.send('hello')
        while not state.wake.is_set():
            gevent.sleep(0.01)   # busy with something else: never reads
        state.outcome = (ws.receive(), ws.close_code, ws.close_reason, ws.closed)
        state.done.set()
        return []

    server = serve(sleeper)
    client = websocket.create_connection(server.url, timeout=TIMEOUT)
    assert client.recv() == 'hello'
    started = time.monotonic()
    client.send_close(1000, b'done')
    opcode, payload = client.recv_data(control_frame=True)
    took = time.monotonic() - started
    print('\nclose answered in %.1f ms while the app slept' % (took * 1000))
    assert (opcode, payload) == (OP_CLOSE, b'\x03\xe8done')
    assert took < 1.0
    client.shutdown()
    state.wake.set()
    assert state.done.wait(TIMEOUT)
    assert state.outcome == (None, 1000, 'done', True)


def test_messages_before_the_close_still_reach_an_app_that_was_not_reading(serve):
    state = AppState()

    def late_reader(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.accept()
        state.wake.wait(TIMEOUT)   # blocks the server's thread: the client waits too
        state.outcome = list(ws)
        state.done.set()
        return []

    server = serve(late_reader)
    client = RawClient(server.port)
    client.handshake()
    client.send(frame(OP_TEXT, b'one') + frame(OP_TEXT, b'two') +
                frame(OP_CLOSE, b'\x03\xe8', masked=True))
    state.wake.set()
    assert client.recv_close() == (1000, '')
    client.assert_eof()
    assert state.done.wait(TIMEOUT)
    assert state.outcome == ['one', 'two']


# -- keepalive ------------------------------------------------------------------------------------

STOPPABLE_CLIENT = textwrap.dedent('''
    import sys, websocket
    ws = websocket.create_connection(sys.argv[1])
    print('connected', flush=True)
    while True:
        ws.recv()
''')


def test_keepalive_closes_a_peer_that_stopped(serve):
    """A client process under SIGSTOP answers nothing: the server closes it (1011 sent,
    1006 seen by the app) within ping_interval + ping_timeout and some slack."""
    state = AppState()

    def waiter(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.accept()
        started = time.monotonic()
        state.outcome = (ws.receive(), ws.close_code, ws.close_reason, started)
        state.closed_at = time.monotonic()
        state.done.set()
        return []

    server = serve(waiter, _handler(ping_interval=0.4, ping_timeout=0.4))
    peer = subprocess.Popen([sys.executable, '-c', STOPPABLE_CLIENT, server.url],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == 'connected'
        time.sleep(1.0)   # a few pings answered while it runs
        assert not state.done.is_set()
        peer.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        assert state.done.wait(TIMEOUT)
        took = state.closed_at - stopped
        print('\nthe stopped peer was closed %.2f s after SIGSTOP (interval 0.4 + timeout 0.4)'
              % took)
        assert state.outcome[:3] == (None, 1006, 'keepalive ping timeout')
        assert took < 0.8 + 1.5
    finally:
        peer.send_signal(signal.SIGCONT)
        peer.kill()
        peer.wait(TIMEOUT)


def _silent_server():
    """A server that answers the opening handshake, then reads and writes nothing more;
    returns (url, the frames it was sent, a stop function)."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    received = []

    def run():
        conn, _ = listener.accept()
        head = b''
        while b'\r\n\r\n' not in head:
            head += conn.recv(4096)
        key = [line.split(b':', 1)[1].strip() for line in head.split(b'\r\n')
               if line.lower().startswith(b'sec-websocket-key:')][0]
        from geventws.protocol.handshake import accept_key
        conn.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
                     b'Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n'
                     % accept_key(key.decode()).encode())
        received.append(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def stop():
        thread.join(TIMEOUT)
        for conn in received:
            conn.close()
        listener.close()
    return 'ws://127.0.0.1:%d/' % listener.getsockname()[1], received, stop


def test_a_client_whose_server_went_silent_is_closed_by_keepalive():
    url, accepted, stop = _silent_server()
    try:
        ws = connect(url, timeout=TIMEOUT, ping_interval=0.3, ping_timeout=0.3)
        started = time.monotonic()
        with gevent.Timeout(TIMEOUT):
            assert ws.receive() is None   # not a wait forever
        took = time.monotonic() - started
        print('\nthe silent server was given up %.2f s after the 101' % took)
        assert (ws.close_code, ws.close_reason) == (1006, 'keepalive ping timeout')
        assert took < 0.6 + 1.5
        data = accepted[0].recv(4096)   # what the client sent: a ping, then its close
        assert data[0] == 0x80 | OP_PING and OP_CLOSE in (data[i] & 0x0F for i in range(len(data)))
    finally:
        stop()


def test_latency_is_the_last_pings_round_trip(echo_server):
    ws = connect(echo_server.url, timeout=TIMEOUT, ping_interval=0.1)
    assert ws.latency == 0.0
    gevent.sleep(0.5)
    print('\nlatency %.3f ms' % (ws.latency * 1000))
    assert 0 < ws.latency < 1
    ws.ping(b'mine').wait(TIMEOUT)
    assert 0 < ws.latency < 1
    ws.close()


def test_keepalive_can_be_turned_off(serve):
    url, accepted, stop = _silent_server()
    try:
        ws = connect(url, timeout=TIMEOUT, ping_interval=None)
        gevent.sleep(0.5)
        assert ws.ready_state == ws.OPEN
        accepted[0].settimeout(0.2)
        with pytest.raises(socket.timeout):
            accepted[0].recv(1)   # no ping was sent
        ws._terminate(1000, '', True)
    finally:
        stop()


def test_handler_options_are_checked():
    with pytest.raises(TypeError):
        WebSocketHandler.configure(ping_interal=3)
    handler = WebSocketHandler.configure(ping_interval=None, ping_timeout=5, max_queue=4,
                                         write_limit=1 << 16)
    assert (handler.ping_interval, handler.ping_timeout, handler.max_queue,
            handler.write_limit) == (None, 5, 4, 1 << 16)


# -- memory stays bounded ---------------------------------------------------------------------------

def test_a_pipelining_client_that_never_reads_costs_bounded_memory(serve):
    """1,000 requests for 1 MB answers, and the client reads none: the app waits in send(),
    reading pauses after max_queue messages, TCP pushes back; the server does not grow."""
    reply = b'r' * (1 << 20)

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        for _ in ws:
            ws.send(reply)
        return []

    server = serve(app)
    before = rss_kib()
    client = RawClient(server.port)
    client.handshake()
    requests = frame(OP_TEXT, b'give') * 1000
    sender = threading.Thread(target=lambda: _send_quietly(client.sock, requests), daemon=True)
    sender.start()
    time.sleep(2)
    grown = rss_kib() - before
    print('\nserver RSS grew by %.1f MiB for 1,000 pipelined requests of 1 MB answers'
          % (grown / 1024))
    assert grown < 64 * 1024   # (it grew by about 1 GB when answers were corked unbounded)
    client.reset()
    sender.join(TIMEOUT)


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


# -- writes ------------------------------------------------------------------------------------

def test_an_interrupted_send_leaves_no_partial_frame(serve):
    """A timeout in the middle of a large send: the frame is still written whole, and the
    next message follows it (websocket-client parses them both)."""
    big = os.urandom(32 << 20)   # more than the kernel's buffers hold
    state = AppState()

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.receive()
        try:
            with gevent.Timeout(0.05):
                ws.send(big)
        except gevent.Timeout:
            state.outcome = ws.buffered_amount
        ws.send('after')
        ws.receive()
        return []

    client = websocket.create_connection(serve(app).url, timeout=TIMEOUT)
    client.send('go')
    time.sleep(0.3)   # not reading: the send times out with most of it still buffered
    assert client.recv() == big
    assert client.recv() == 'after'
    print('\n%.1f MiB were still buffered when the send timed out' % (state.outcome / 2**20))
    assert state.outcome > 0
    client.close()


def test_buffered_amount_counts_what_waits_for_a_slow_reader(serve):
    state = AppState()

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.receive()
        from geventws import broadcast
        taken = broadcast([ws], b'x' * (4 << 20))   # never waits
        state.outcome = (taken, ws.buffered_amount)
        state.done.set()
        ws.receive()
        state.after = ws.buffered_amount
        return []

    client = websocket.create_connection(serve(app).url, timeout=TIMEOUT)
    client.send('go')
    assert state.done.wait(TIMEOUT)
    taken, buffered = state.outcome
    assert taken == 1 and 0 < buffered <= 4 << 20
    assert client.recv() == b'x' * (4 << 20)
    client.send('read it')
    client.close()
    print('\n%.1f MiB waited for the reader' % (buffered / 2**20))


# -- fairness -----------------------------------------------------------------------------------

FLOODER = textwrap.dedent('''
    import os, socket, sys, threading, time, base64
    sock = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade'
                 b'\\r\\nSec-WebSocket-Key: ' + key + b'\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
    head = b''
    while b'\\r\\n\\r\\n' not in head:
        head += sock.recv(4096)
    threading.Thread(target=lambda: [sock.recv(1 << 20) for _ in iter(int, 1)],
                     daemon=True).start()
    payload = b'f' * 100
    one = bytes([0x82, 0x80 | len(payload)]) + b'\\0\\0\\0\\0' + payload   # zero mask key
    batch = one * 500
    print('flooding', flush=True)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        sock.sendall(batch)
''')


def test_a_flooding_peer_does_not_hold_up_the_others(serve):
    server = serve(echo_app)
    flooder = subprocess.Popen([sys.executable, '-c', FLOODER, str(server.port), '6'],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout.readline().strip() == 'flooding'
        time.sleep(0.5)
        client = websocket.create_connection(server.url, timeout=TIMEOUT)
        round_trips = []
        for i in range(100):
            started = time.monotonic()
            client.send('ping %d' % i)
            assert client.recv() == 'ping %d' % i
            round_trips.append(time.monotonic() - started)
            time.sleep(0.01)
        client.close()
    finally:
        flooder.kill()
        flooder.wait(TIMEOUT)
    round_trips.sort()
    print('\nround trips beside a flooding peer: median %.2f ms, max %.2f ms'
          % (round_trips[50] * 1000, round_trips[-1] * 1000))
    assert round_trips[-1] < 0.25   # (it was seconds when a busy socket kept the hub)


# -- both ends of the same story, with our own client ----------------------------------------------

def test_our_client_answers_pings_and_the_servers_close_while_it_only_sends(serve):
    """The client role reads on its own too: a client app that only sends keeps a server
    that pings it, and sees the server's close (with its reason) at its next send."""
    def closing_app(environ, start_response):
        ws = environ['wsgi.websocket']
        for i, _ in enumerate(ws):
            if i == 20:
                ws.close(4002, 'enough')
        return []

    server = serve(closing_app, _handler(ping_interval=0.1, ping_timeout=0.2))
    ws = connect(server.url, timeout=TIMEOUT)
    with pytest.raises(ConnectionClosed):
        with gevent.Timeout(TIMEOUT):
            while True:
                ws.send('data')
                gevent.sleep(0.02)
    assert (ws.close_code, ws.close_reason) == (4002, 'enough')


def test_a_server_app_that_never_reads_is_closed_politely_by_the_server(serve):
    """Nothing stays half-open: a server close() from another greenlet than the one that
    sends works while nobody reads."""
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.send('hi')
        gevent.spawn_later(0.1, ws.close, 1001, 'bye')
        try:
            while True:
                ws.send('more')
                gevent.sleep(0.01)
        except ConnectionClosed:
            pass
        return []

    client = websocket.create_connection(serve(app).url, timeout=TIMEOUT)
    messages = []
    while True:
        opcode, data = client.recv_data(control_frame=True)
        if opcode == OP_CLOSE:
            break
        messages.append(data)
    assert data == b'\x03\xe9bye' and messages[0] == b'hi'
    client.close()



# -- broadcast ------------------------------------------------------------------------------------

def _raise_fd_limit(needed):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


class FrameCounter:
    """Counts the whole frames (and their payload bytes) a server sends on many raw
    sockets, read by one thread with a selector."""

    def __init__(self, socks):
        import selectors
        self.selector = selectors.DefaultSelector()
        self.pending = {}
        self.counts = {}
        for sock in socks:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.pending[sock] = b''
            self.counts[sock] = 0

    def read_until(self, expected, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(count >= expected for count in self.counts.values()):
                return True
            for key, _ in self.selector.select(0.1):
                sock = key.fileobj
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                buf = self.pending[sock] + data
                while len(buf) >= 2:
                    length, start = buf[1] & 0x7F, 2
                    if length == 126:
                        if len(buf) < 4:
                            break
                        length, start = int.from_bytes(buf[2:4], 'big'), 4
                    if len(buf) < start + length:
                        break
                    buf = buf[start + length:]
                    self.counts[sock] += 1
                self.pending[sock] = buf
        return False


def _registering_app(opened):
    """An app that accepts, puts each WebSocket in ``opened`` and holds it until its client
    goes."""
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.accept()
        opened.append(ws)
        ws.receive()
        return []
    return app


def _stuck_client(port):
    """A client that completes the handshake and then never reads."""
    client = RawClient(port)
    client.handshake()
    return client


def test_broadcast_to_1000_with_one_that_never_reads(serve):
    """One non-reader among 1,000: the others get all 100 messages, and the broadcaster
    never waits for it."""
    from geventws import broadcast
    _raise_fd_limit(4096)
    opened = []
    state = AppState()
    server = serve(_registering_app(opened))
    stuck = _stuck_client(server.port)
    clients = [_stuck_client(server.port) for _ in range(999)]
    while len(opened) < 1000:
        time.sleep(0.01)

    def broadcast_all():
        started = time.monotonic()
        taken = [broadcast(opened, 'm' * 2000) for _ in range(100)]
        state.outcome = (taken, time.monotonic() - started)

    before = rss_kib()
    server.call(broadcast_all)
    started = time.monotonic()
    counter = FrameCounter([client.sock for client in clients])
    assert counter.read_until(100, timeout=30)
    taken, took = state.outcome
    print('\n100 broadcasts to 1,000: queued in %.2f s, all 999 readers had them %.2f s later;'
          ' server RSS %+.1f MiB' % (took, time.monotonic() - started,
                                     (rss_kib() - before) / 1024))
    assert min(taken) >= 999
    stuck.close()
    for client in clients:
        client.close()


@pytest.mark.parametrize('on_full', ['skip', 'close'])
def test_broadcast_leaves_out_a_connection_over_its_write_limit(serve, on_full):
    """Past ``write_limit`` the non-reader is skipped (``on_full='skip'``, its buffer stays
    bounded) or closed with 1008 (``'close'``); the readers get every message."""
    from geventws import broadcast
    opened = []
    state = AppState()
    server = serve(_registering_app(opened), _handler(write_limit=256 * 1024))
    stuck = _stuck_client(server.port)
    readers = [websocket.create_connection(server.url, timeout=TIMEOUT) for _ in range(3)]
    while len(opened) < 4:
        time.sleep(0.01)
    message = b'b' * (64 * 1024)
    rounds = 200   # 12.5 MiB: more than the kernel's buffers and write_limit together

    def broadcast_all():
        taken = []
        for _ in range(rounds):
            taken.append(broadcast(opened, message, on_full=on_full))
            gevent.sleep(0.002)
        state.outcome = (taken, opened[0].buffered_amount, opened[0].close_code,
                         opened[0].close_reason)

    got = []
    threads = [threading.Thread(target=lambda r=reader: got.append(
        sum(r.recv() == message for _ in range(rounds)))) for reader in readers]
    for thread in threads:
        thread.start()
    server.call(broadcast_all)
    for thread in threads:
        thread.join(TIMEOUT)
    assert got == [rounds] * 3
    taken, buffered, code, reason = state.outcome
    skipped = rounds * 4 - sum(taken)
    print('\nthe non-reader was left out of %d of %d messages; %d KiB wait for it'
          % (skipped, rounds, buffered // 1024))
    assert skipped > 0 and min(taken) >= 3
    if on_full == 'close':
        assert (code, reason) == (1006, 'write limit exceeded')
    else:
        assert code is None and buffered <= 256 * 1024 + len(message) + 14
    stuck.close()
    for reader in readers:
        reader.close()
