"""Thousands of sockets against one server from one process, for the stress tests, which run
it as a subprocess (their own process stays unpatched and its descriptors its own). One
selectors loop over non-blocking sockets; no threads, no gevent, no C.

    swarm.py slow --port P --conns N [--interval 3] [--silent] [--first-request]
                  [--rate 1000] [--limit 60]
        N connections, opened at RATE per second, that send an RFC 6455 upgrade request
        one byte every INTERVAL seconds (--silent: nothing at all) until the server closes
        them; with --first-request, only after a whole plain request on the same
        connection was answered (keep-alive). Prints {"opened": ...} once all have started
        their slow part, then the summary once the server has closed them all or LIMIT
        seconds have passed since the first.

    swarm.py open --port P --conns N [--concurrency 100]
        N WebSocket connections with a fixed handshake (RFC 6455 1.3's key; the accept
        value is checked), at most CONCURRENCY handshakes at a time, each echoing one
        message, then held (pings answered). Prints {"open": ...}; on a line on stdin,
        starts the closing handshake (1000) on every one, waits for the server's close
        frame and its TCP close, and prints {"closed": ...}.

Every line printed is one JSON object. Times are seconds; a lifetime runs from the start of
a connection's slow part (its TCP connect, or the answer to its first request) to the moment
the server's close (or answer) was seen.
"""
import argparse
import collections
import errno
import heapq
import itertools
import json
import resource
import selectors
import socket
import statistics
import struct
import sys
import time

KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
ACCEPT = b's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
MASK_KEY = b'\x37\xfa\x21\x3d'


def request(port):
    return ('GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
            'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
            '\r\n' % (port, KEY)).encode('ascii')


def masked_frame(opcode, payload):
    """A client frame (FIN, masked), payload under 126 bytes."""
    masked = bytes(b ^ MASK_KEY[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + MASK_KEY + masked


def parse_frame(buf):
    """(opcode, payload, size) of the server frame at the start of ``buf``, or None."""
    if len(buf) < 2:
        return None
    n, i = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, i = struct.unpack('!H', buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, i = struct.unpack('!Q', buf[2:10])[0], 10
    if buf[1] & 0x80:
        raise ValueError('masked server frame')
    if len(buf) < i + n:
        return None
    return buf[0] & 0x0F, bytes(buf[i:i + n]), i + n


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def raise_nofile(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < count + 64:
        sys.exit('swarm: RLIMIT_NOFILE %d is too low for %d connections' % (hard, count))


def spread(values):
    if not values:
        return {}
    ordered = sorted(values)
    return {'min': round(ordered[0], 3), 'median': round(statistics.median(ordered), 3),
            'max': round(ordered[-1], 3)}


# -- slow: a request head one byte at a time (slowloris) ----------------------------------

#: --first-request: a whole plain request, answered (the stress app's 404) before the slow one.
FIRST_REQUEST = b'GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'


def answered(data):
    """Whether ``data`` holds a whole response (its head and Content-Length body)."""
    head, blank, body = data.partition(b'\r\n\r\n')
    if not blank:
        return False
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            return len(body) >= int(value)
    return True


class Slow:
    __slots__ = ('sock', 'sent', 'connected', 'opened_at', 'closed_at', 'outcome', 'first')

    def __init__(self, sock):
        self.sock = sock
        self.sent = 0
        self.connected = False
        self.opened_at = self.closed_at = None   # opened: when the slow part starts
        self.outcome = None
        self.first = None   # --first-request: the answer to it, while it comes


def run_slow(args):
    raise_nofile(args.conns)
    head = request(args.port)
    selector = selectors.DefaultSelector()
    conns, due = [], []   # due: a heap of (time, n, conn): each one's next byte
    order = itertools.count()
    outcomes, failures = collections.Counter(), collections.Counter()
    started = time.monotonic()
    opened = failed = closed = 0
    next_batch, told_opened = started, False

    def finish(conn, outcome, now):
        """The server closed (or answered) ``conn``: in its slow part, as it should; before
        it (the first request's answer), a failure."""
        nonlocal closed, failed
        conn.closed_at, conn.outcome = now, outcome
        if conn.opened_at is None:
            failures[outcome] += 1
            failed += 1
        else:
            outcomes[outcome] += 1
            closed += 1
        selector.unregister(conn.sock)
        conn.sock.close()

    while True:
        now = time.monotonic()
        while len(conns) < args.conns and now >= next_batch:   # open at --rate per second
            for _ in range(min(max(1, args.rate // 100), args.conns - len(conns))):
                sock = socket.socket()
                sock.setblocking(False)
                conn = Slow(sock)
                conns.append(conn)
                code = sock.connect_ex(('127.0.0.1', args.port))
                selector.register(sock, selectors.EVENT_WRITE, conn)
                if code not in (0, errno.EINPROGRESS):
                    finish(conn, 'connect: %s' % errno.errorcode.get(code, code), now)
            next_batch += 0.01
        for key, events in selector.select(0.01):
            conn, now = key.data, time.monotonic()
            if not conn.connected:   # connected, or not
                code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    finish(conn, 'connect: %s' % errno.errorcode.get(code, code), now)
                    continue
                conn.connected = True
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
                if args.first_request:
                    conn.first = b''
                    conn.sock.send(FIRST_REQUEST)
                    continue
                data = None
            else:
                try:
                    data = conn.sock.recv(4096)
                except ConnectionResetError:
                    finish(conn, 'reset', now)
                    continue
                if not data:
                    finish(conn, 'eof' if conn.first is None else 'eof before the first answer',
                           now)
                    continue
                if conn.first is not None:   # the first request's answer, coming
                    conn.first += data
                    if not answered(conn.first):
                        continue
                    if not conn.first.startswith(b'HTTP/1.1 404 '):
                        finish(conn, 'first answer %r' % conn.first[:20], now)
                        continue
                    conn.first = data = None
            if data is None:   # the slow part starts
                conn.opened_at = now
                opened += 1
                if not args.silent:
                    heapq.heappush(due, (now, next(order), conn))
                continue
            # An answer (408): the first line's status.
            words = data.split(b'\r\n', 1)[0].split()
            finish(conn, 'answer %s' % (words[1].decode('latin-1') if len(words) > 1
                                        else repr(data[:20])), now)
        now = time.monotonic()
        if not told_opened and opened + failed == args.conns:
            emit(opened=opened, failed=failed, failures=dict(failures),
                 seconds=round(now - started, 3))
            told_opened = True
        while due and due[0][0] <= now:
            _, _, conn = heapq.heappop(due)
            if conn.closed_at is not None:
                continue
            if conn.sent < len(head):
                try:
                    conn.sock.send(head[conn.sent:conn.sent + 1])
                    conn.sent += 1
                except (BrokenPipeError, ConnectionResetError):
                    finish(conn, 'reset on send', now)
                    continue
                except BlockingIOError:
                    pass
            heapq.heappush(due, (now + args.interval, next(order), conn))
        if len(conns) == args.conns and closed + failed == args.conns:
            break
        if now - started > args.limit:
            break
    lifetimes = [c.closed_at - c.opened_at for c in conns
                 if c.opened_at is not None and c.closed_at is not None]
    last = max((c.closed_at for c in conns if c.closed_at is not None), default=started)
    emit(conns=args.conns, opened=opened, failed=failed, failures=dict(failures), closed=closed,
         still_open=opened - closed, outcomes=dict(outcomes),
         max_bytes_sent=max((c.sent for c in conns), default=0),
         lifetime=spread(lifetimes), all_closed_after=round(last - started, 3))
    for conn in conns:
        if conn.closed_at is None:
            conn.sock.close()


# -- open: many WebSocket connections, held, then closed ----------------------------------

CONNECTING, HANDSHAKE, ECHO, HELD, CLOSING, DONE = range(6)


class Open:
    __slots__ = ('sock', 'n', 'state', 'buf', 'close_code')

    def __init__(self, sock, n):
        self.sock = sock
        self.n = n
        self.state = CONNECTING
        self.buf = bytearray()
        self.close_code = None


def run_open(args):
    raise_nofile(args.conns)
    head = request(args.port)
    selector = selectors.DefaultSelector()
    conns = []
    errors = collections.Counter()
    state_count = collections.Counter()
    started = time.monotonic()

    def fail(conn, why):
        errors[why] += 1
        if conn.state != DONE:
            state_count[conn.state] -= 1
            conn.state = DONE
            state_count[DONE] += 1
            selector.unregister(conn.sock)
            conn.sock.close()

    def move(conn, state):
        state_count[conn.state] -= 1
        conn.state = state
        state_count[state] += 1

    def answer_frames(conn):
        """Handle the whole frames in conn.buf; pings are answered."""
        while True:
            parsed = parse_frame(conn.buf)
            if parsed is None:
                return
            opcode, payload, size = parsed
            del conn.buf[:size]
            if opcode == 9:
                conn.sock.send(masked_frame(10, payload))
            elif opcode == 8:
                conn.close_code = struct.unpack('!H', payload[:2])[0] if payload else 1005
                if conn.state == HELD:   # the server closed first: answer it
                    conn.sock.send(masked_frame(8, payload[:2]))
                    errors['server closed first'] += 1
                move(conn, CLOSING)
            elif opcode == 1 and conn.state == ECHO:
                if payload != b'echo %d' % conn.n:
                    raise ValueError('wrong echo %r' % payload)
                move(conn, HELD)
            else:
                raise ValueError('unexpected frame %d %r' % (opcode, payload[:20]))

    def readable(conn):
        try:
            data = conn.sock.recv(65536)
        except ConnectionResetError:
            data = None
        if not data:
            if conn.state == CLOSING and conn.close_code is not None:
                move(conn, DONE)
                selector.unregister(conn.sock)
                conn.sock.close()
            else:
                fail(conn, 'closed by the server in state %d' % conn.state)
            return
        conn.buf += data
        if conn.state == HANDSHAKE:
            end = conn.buf.find(b'\r\n\r\n')
            if end < 0:
                return
            response = bytes(conn.buf[:end])
            del conn.buf[:end + 4]
            if not response.startswith(b'HTTP/1.1 101 ') or ACCEPT not in response:
                fail(conn, 'handshake answered %r' % response.split(b'\r\n')[0])
                return
            move(conn, ECHO)
            conn.sock.send(masked_frame(1, b'echo %d' % conn.n))
        try:
            answer_frames(conn)
        except (ValueError, OSError) as exc:
            fail(conn, str(exc))

    def pump(until, timeout):
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                return False
            for key, events in selector.select(0.05):
                conn = key.data
                if conn is None:
                    return True   # stdin: told to go on
                if conn.state == CONNECTING:
                    code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        fail(conn, 'connect: %s' % errno.errorcode.get(code, code))
                        continue
                    move(conn, HANDSHAKE)
                    selector.modify(conn.sock, selectors.EVENT_READ, conn)
                    conn.sock.send(head)
                else:
                    readable(conn)
            start_more()
        return True

    def start_more():
        in_progress = state_count[CONNECTING] + state_count[HANDSHAKE] + state_count[ECHO]
        while len(conns) < args.conns and in_progress < args.concurrency:
            sock = socket.socket()
            sock.setblocking(False)
            conn = Open(sock, len(conns))
            conns.append(conn)
            state_count[CONNECTING] += 1
            in_progress += 1
            code = sock.connect_ex(('127.0.0.1', args.port))
            selector.register(sock, selectors.EVENT_WRITE, conn)
            if code not in (0, errno.EINPROGRESS):
                fail(conn, 'connect: %s' % errno.errorcode.get(code, code))

    start_more()
    pump(lambda: len(conns) == args.conns and state_count[HELD] + state_count[DONE] == len(conns)
         and not (state_count[CONNECTING] or state_count[HANDSHAKE] or state_count[ECHO]),
         args.limit)
    emit(open=state_count[HELD], failed=sum(errors.values()), errors=dict(errors),
         seconds=round(time.monotonic() - started, 3))
    # Held, answering pings, until told to close.
    selector.register(sys.stdin, selectors.EVENT_READ, None)
    pump(lambda: False, args.limit)
    sys.stdin.readline()
    selector.unregister(sys.stdin)
    closing = time.monotonic()
    held = [conn for conn in conns if conn.state == HELD]
    for conn in held:
        move(conn, CLOSING)
        conn.sock.send(masked_frame(8, struct.pack('!H', 1000) + b'bye'))
    pump(lambda: state_count[CLOSING] == 0, args.limit)
    codes = collections.Counter(conn.close_code for conn in held)
    emit(closed=sum(1 for conn in held if conn.state == DONE),
         clean=sum(1 for conn in held if conn.state == DONE and conn.close_code == 1000),
         close_codes={str(k): v for k, v in codes.items()},
         still_open=state_count[CLOSING], errors=dict(errors),
         seconds=round(time.monotonic() - closing, 3))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=('slow', 'open'))
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--conns', type=int, required=True)
    parser.add_argument('--interval', type=float, default=3.0)
    parser.add_argument('--silent', action='store_true')
    parser.add_argument('--first-request', action='store_true')
    parser.add_argument('--rate', type=int, default=1000)
    parser.add_argument('--concurrency', type=int, default=100)
    parser.add_argument('--limit', type=float, default=60.0)
    args = parser.parse_args()
    (run_slow if args.mode == 'slow' else run_open)(args)


if __name__ == '__main__':
    main()
