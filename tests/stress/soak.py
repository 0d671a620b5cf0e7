"""Churn soak (``make soak``; not part of ``make test``, and not collected by pytest): one
``python -m geventws serve stress_app:app`` process under a steady churn of connections for
SOAK_SECONDS (600 by default), while its memory and descriptors are sampled every few
seconds. Each kind of connection runs in its own thread at its own steady rate:

    echo             websocket-client: open, echo three messages (text, 1 KB, binary), close
    http             a raw socket: two plain requests on one keep-alive connection, close
    reset-head       a raw socket: part of the upgrade request, then RST (SO_LINGER 0)
    reset-after-head the whole upgrade request, then RST at once (racing the 101)
    reset-open       a raw socket: the handshake and one echo, then RST mid-connection

The report is a table of the samples (RSS and descriptors over time should stay flat) and a
summary: connections made, errors on the client side, and the server's log sorted into
access lines, tracebacks and other lines (a reset may cost at most one line, never a
traceback). Exit status 1 on any client error, any traceback, more other lines than
resets, descriptors or WebSocket objects left once the churn stops, or RSS growth after the
warm-up of more than SOAK_MAX_GROWTH_KIB (4096).

    SOAK_SECONDS=60 .venv/bin/python tests/stress/soak.py [--rate 20] [--interval 5]
"""
import argparse
import base64
import collections
import json
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

import websocket  # noqa: E402

#: pywsgi's access log line (as stresskit reads it).
_ACCESS_LINE = re.compile(r'^\S* - - \[[^\]]*\] ".*" \S+ \S+ [\d.]+$')

MASK_KEY = b'\x37\xfa\x21\x3d'
TIMEOUT = 10


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def upgrade_request(port):
    key = base64.b64encode(os.urandom(16)).decode()
    return ('GET /soak HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
            'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
            'User-Agent: soak\r\n\r\n' % (port, key)).encode('ascii')


def masked_text(payload):
    masked = bytes(b ^ MASK_KEY[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + MASK_KEY + masked


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    sock.close()


def read_until(sock, marker, buf=b''):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError('closed by the server after %r' % buf[:80])
        buf += chunk
    return buf


# -- the kinds of connection ------------------------------------------------------------

def echo(port):
    ws = websocket.create_connection('ws://127.0.0.1:%d/' % port, timeout=TIMEOUT)
    try:
        for message in ('hello', 'x' * 1000):
            ws.send(message)
            if ws.recv() != message:
                raise AssertionError('wrong echo')
        ws.send_binary(b'\x00\xff' * 100)
        if ws.recv() != b'\x00\xff' * 100:
            raise AssertionError('wrong binary echo')
    finally:
        ws.close(timeout=TIMEOUT)
    return False


def http(port):
    with socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT) as sock:
        for _ in range(2):
            sock.sendall(b'GET /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
            head = read_until(sock, b'\r\n\r\n')
            if not head.startswith(b'HTTP/1.1 404 '):
                raise AssertionError('answered %r' % head[:40])
            length = int(head.lower().split(b'content-length:')[1].split(b'\r\n')[0])
            body = head.split(b'\r\n\r\n', 1)[1]
            while len(body) < length:
                body += sock.recv(65536)
    return False


def reset_head(port):
    request = upgrade_request(port)
    sock = socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT)
    sock.sendall(request[:random.randrange(1, len(request) - 1)])
    time.sleep(random.random() * 0.01)
    reset(sock)
    return True


def reset_after_head(port):
    sock = socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT)
    sock.sendall(upgrade_request(port))
    reset(sock)
    return True


def reset_open(port):
    sock = socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT)
    try:
        sock.sendall(upgrade_request(port))
        data = read_until(sock, b'\r\n\r\n')
        if not data.startswith(b'HTTP/1.1 101 '):
            raise AssertionError('answered %r' % data[:40])
        rest = data.split(b'\r\n\r\n', 1)[1]
        sock.sendall(masked_text(b'ping me back'))
        read_until(sock, b'ping me back', rest)
    except BaseException:
        sock.close()
        raise
    reset(sock)
    return True


KINDS = {'echo': echo, 'http': http, 'reset-head': reset_head,
         'reset-after-head': reset_after_head, 'reset-open': reset_open}


class Worker(threading.Thread):
    """One kind of connection at ``rate`` per second until stopped."""

    def __init__(self, name, port, rate, stopping):
        super().__init__(daemon=True, name=name)
        self.op, self.port, self.period, self.stopping = KINDS[name], port, 1.0 / rate, stopping
        self.done = self.resets = 0
        self.errors = collections.Counter()

    def run(self):
        due = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.resets += self.op(self.port)
                self.done += 1
            except Exception as exc:   # noqa: BLE001  (counted and reported)
                self.errors['%s: %s' % (type(exc).__name__, str(exc)[:80])] += 1
            due += self.period
            delay = due - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            elif delay < -1:   # fallen behind: the rate is what the machine gives
                due = time.monotonic()


# -- the server -------------------------------------------------------------------------

class Server:
    def __init__(self, log_path):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.port = free_port()
        self.log_path = log_path
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, HERE, env.get('PYTHONPATH')]))
        with open(log_path, 'wb') as log:
            self.proc = subprocess.Popen(
                [sys.executable, '-m', 'geventws', 'serve', 'stress_app:app', '--port',
                 str(self.port)], cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))
        deadline = time.monotonic() + 20
        while 'serving' not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit('soak: the server did not start:\n' + self.output())
            time.sleep(0.05)

    def output(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as log:
            return log.read()

    def rss_kib(self):
        with open('/proc/%d/status' % self.proc.pid) as status:
            return int(next(line for line in status if line.startswith('VmRSS:')).split()[1])

    def fds(self):
        return len(os.listdir('/proc/%d/fd' % self.proc.pid))

    def stats(self):
        url = 'http://127.0.0.1:%d/stats' % self.port
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return json.loads(response.read())

    def log(self):
        """(access lines, tracebacks, other lines) of the log so far."""
        access, tracebacks, other = 0, 0, []
        in_traceback = False
        for line in self.output().splitlines():
            if not line.strip() or line.startswith('serving '):
                continue
            if _ACCESS_LINE.match(line):
                access, in_traceback = access + 1, False
            elif line.startswith('Traceback (most recent call last)'):
                tracebacks, in_traceback = tracebacks + 1, True
            elif in_traceback:
                in_traceback = line.startswith(' ')
            else:
                other.append(line)
        return access, tracebacks, other

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


def _shape(line):
    """A log line without what differs from one connection to the next."""
    line = re.sub(r'0x[0-9a-f]+', '0x..', line)
    line = re.sub(r"\('127\.0\.0\.1', \d+\)", "('127.0.0.1', ..)", line)
    return re.sub(r'fd=\d+', 'fd=..', line)[:160]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float,
                        default=float(os.environ.get('SOAK_SECONDS', 600)))
    parser.add_argument('--rate', type=float, default=20.0,
                        help='connections per second of each kind (20)')
    parser.add_argument('--interval', type=float, default=5.0, help='seconds between samples')
    parser.add_argument('--max-growth-kib', type=int,
                        default=int(os.environ.get('SOAK_MAX_GROWTH_KIB', 4096)))
    args = parser.parse_args()
    warmup = min(60.0, args.seconds * 0.2)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(os.path.join(tmp, 'server.log'))
        try:
            baseline = server.stats()
            fds_before = server.fds()
            print('soak: %s for %g s, %g connections/s of each of %s; server pid %d, %s' % (
                'compiled' if not os.environ.get('GEVENTWS_NO_EXTENSIONS') else 'pure Python',
                args.seconds, args.rate, ', '.join(KINDS), server.proc.pid, baseline),
                flush=True)
            stopping = threading.Event()
            workers = [Worker(name, server.port, args.rate, stopping) for name in KINDS]
            started = time.monotonic()
            for worker in workers:
                worker.start()
            samples = []
            print('%8s %10s %6s %12s %14s %14s' % ('seconds', 'RSS KiB', 'fds', 'connections',
                                                  'server errors', 'client errors'))
            while True:
                elapsed = time.monotonic() - started
                if elapsed >= args.seconds or server.proc.poll() is not None:
                    break
                time.sleep(min(args.interval, max(0.0, args.seconds - elapsed)))
                if server.proc.poll() is not None:
                    break
                _, tracebacks, other = server.log()
                sample = (time.monotonic() - started, server.rss_kib(), server.fds(),
                          sum(w.done for w in workers), tracebacks + len(other),
                          sum(sum(w.errors.values()) for w in workers))
                samples.append(sample)
                print('%8.0f %10d %6d %12d %14d %14d' % sample, flush=True)
            stopping.set()
            for worker in workers:
                worker.join(TIMEOUT * 2)
            if server.proc.poll() is not None:
                failures.append('the server exited with %s' % server.proc.returncode)
                print(server.output()[-3000:])
                return 1
            # Settled: what the churn held is let go.
            deadline, fds_after = time.monotonic() + 15, server.fds()
            while fds_after > fds_before and time.monotonic() < deadline:
                time.sleep(0.2)
                fds_after = server.fds()
            after = server.stats()
            access, tracebacks, other = server.log()
        finally:
            server.stop()

    resets = sum(w.resets for w in workers)
    client_errors = collections.Counter()
    for worker in workers:
        for what, count in worker.errors.items():
            client_errors['%s: %s' % (worker.name, what)] += count
    under_load = [s for s in samples if s[0] >= warmup] or samples
    rss_start = under_load[0][1]
    rss_end = statistics.median(s[1] for s in under_load[-3:])
    growth = rss_end - rss_start
    minutes = (under_load[-1][0] - under_load[0][0]) / 60 or 1
    print('\nconnections: %s (%d in all, %.0f/s), %d of them reset by the client' % (
        ', '.join('%s %d' % (w.name, w.done) for w in workers),
        sum(w.done for w in workers), sum(w.done for w in workers) / samples[-1][0], resets))
    print('server RSS: %d KiB at %.0f s (after the warm-up), %d KiB at the end: %+d KiB '
          '(%+.0f KiB/min); min %d, max %d' % (
              rss_start, under_load[0][0], rss_end, growth, growth / minutes,
              min(s[1] for s in samples), max(s[1] for s in samples)))
    print('server descriptors: %d before, %d..%d under load, %d after' % (
        fds_before, min(s[2] for s in samples), max(s[2] for s in samples), fds_after))
    print('server objects: before %s, after %s' % (baseline, after))
    print('server log: %d access lines, %d tracebacks, %d other lines' % (
        access, tracebacks, len(other)))
    for shape, count in collections.Counter(map(_shape, other)).most_common(8):
        print('  %6d x %s' % (count, shape))
    print('client errors: %d' % sum(client_errors.values()))
    for what, count in client_errors.most_common(8):
        print('  %6d x %s' % (count, what))

    if client_errors:
        failures.append('%d client errors' % sum(client_errors.values()))
    if tracebacks:
        failures.append('%d tracebacks in the server log' % tracebacks)
    if len(other) > resets:
        failures.append('%d log lines beyond the access log for %d resets' % (len(other), resets))
    if fds_after > fds_before:
        failures.append('descriptors: %d before, %d after' % (fds_before, fds_after))
    if after['websockets'] > baseline['websockets']:
        failures.append('WebSocket objects: %d before, %d after' % (baseline['websockets'],
                                                                   after['websockets']))
    if growth > args.max_growth_kib:
        failures.append('RSS grew %d KiB after the warm-up (limit %d)' % (growth,
                                                                       args.max_growth_kib))
    print('\nsoak: %s' % ('; '.join(failures) if failures else 'ok'))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
