"""What the stress tests share: ``python -m geventws serve stress_app:app`` as a subprocess
whose descriptors, memory, greenlets and log a test reads from outside; the swarm (swarm.py,
many raw sockets from one helper process); a normal client written by others
(websocket-client) that must keep getting through; the server's log sorted into access lines,
tracebacks and everything else.

The server runs in its own process so that its descriptors are its own (a test counts them
in /proc/PID/fd), its RLIMIT_NOFILE can be set apart from the test's, and its stderr is the
log a test reads. The test process is never monkey-patched; the swarm is a subprocess too.
"""
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import websocket

from helpers import CI, PYTHON, free_port, python_env

STRESS_DIR = os.path.dirname(os.path.abspath(__file__))
SWARM = os.path.join(STRESS_DIR, 'swarm.py')
#: The handshake_timeout the server is documented to default to.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
START_TIMEOUT = 20

#: pywsgi's access log line: '127.0.0.1 - - [2025-01-01 12:00:00] "GET / HTTP/1.1" 101 0 0.001'
_ACCESS_LINE = re.compile(r'^\S* - - \[[^\]]*\] ".*" \S+ \S+ [\d.]+$')


def hard_nofile():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def require_nofile(count, why):
    """The hard limit of descriptors must allow ``count`` (raising the soft limit up to it is
    the children's business); skip on a developer machine that cannot, fail under CI=true."""
    hard = hard_nofile()
    if hard != resource.RLIM_INFINITY and hard < count:
        message = 'RLIMIT_NOFILE hard limit %d < %d (%s)' % (hard, count, why)
        if CI:
            pytest.fail(message + ' under CI=true')
        pytest.skip(message)


def _nofile_setter(soft):
    """For ``preexec_fn``: the child's soft limit of descriptors (None: the hard limit)."""
    def set_limit():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if soft is None else soft, hard))
    return set_limit


class ServerProcess:
    """``python -m geventws serve stress_app:app --port N *options``, its stdout and stderr
    in ``log_path``; ``nofile``: its soft RLIMIT_NOFILE (None: raised to the hard limit)."""

    def __init__(self, log_path, *options, nofile=None):
        self.port = free_port()
        self.log_path = log_path
        self.argv = [PYTHON, '-m', 'geventws', 'serve', 'stress_app:app',
                     '--port', str(self.port), *options]
        env = python_env()
        env['PYTHONPATH'] = STRESS_DIR + os.pathsep + env['PYTHONPATH']
        with open(log_path, 'wb') as log:
            self.proc = subprocess.Popen(self.argv, cwd=STRESS_DIR, env=env, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         preexec_fn=_nofile_setter(nofile))
        self.pid = self.proc.pid
        self._wait_ready()

    @property
    def url(self):
        return 'ws://127.0.0.1:%d/' % self.port

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while 'serving stress_app:app' not in self.output():
            if self.proc.poll() is not None:
                pytest.fail('the server exited with %s:\n%s' % (self.proc.returncode,
                                                                self.output()))
            if time.monotonic() > deadline:
                pytest.fail('the server did not start:\n%s' % self.output())
            time.sleep(0.02)

    def output(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as log:
            return log.read()

    def log(self):
        """The log sorted: ``{'access': n, 'tracebacks': n, 'exceptions': [the last line of
        each traceback], 'other': [lines]}`` (the banner and blank lines left out)."""
        access, tracebacks, exceptions, other = 0, 0, [], []
        in_traceback = False
        for line in self.output().splitlines():
            if line.startswith('serving stress_app:app') or not line.strip():
                continue
            if _ACCESS_LINE.match(line):
                access += 1
                in_traceback = False
            elif line.startswith('Traceback (most recent call last)'):
                tracebacks += 1
                in_traceback = True
            elif in_traceback and line.startswith(' '):
                continue
            elif in_traceback:   # the exception's own line ends the traceback
                exceptions.append(line)
                in_traceback = False
            else:
                other.append(line)
        return {'access': access, 'tracebacks': tracebacks, 'exceptions': exceptions,
                'other': other}

    def first_traceback(self, size=2000):
        text = self.output()
        start = text.find('Traceback (most recent call last)')
        return text[start:start + size] if start >= 0 else ''

    def assert_running(self):
        assert self.proc.poll() is None, 'the server exited with %s:\n%s' % (
            self.proc.returncode, self.output()[-5000:])

    # -- what the server holds, read from outside (no connection of ours counted) --------

    def fd_count(self):
        return len(os.listdir('/proc/%d/fd' % self.pid))

    def rss_kib(self):
        with open('/proc/%d/status' % self.pid) as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise RuntimeError('no VmRSS for %d' % self.pid)

    def stats(self):
        """The app's /stats: descriptors, greenlets and WebSocket objects in the server
        (the request asking holds one descriptor and one greenlet)."""
        url = 'http://127.0.0.1:%d/stats' % self.port
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def settled_stats(self, baseline, timeout=15):
        """``stats()`` once greenlets and WebSockets are back to ``baseline``'s, else its
        last reading: connections end in the server a moment after the client is gone."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.stats()
            if (seen['greenlets'] <= baseline['greenlets'] and
                    seen['websockets'] <= baseline['websockets'] and
                    seen['fds'] <= baseline['fds']) or time.monotonic() > deadline:
                return seen
            time.sleep(0.1)

    def quiet_stats(self, timeout=10):
        """``stats()`` once two readings in a row agree (what was finishing has finished)."""
        deadline = time.monotonic() + timeout
        last = self.stats()
        while True:
            time.sleep(0.2)
            seen = self.stats()
            if seen == last or time.monotonic() > deadline:
                return seen
            last = seen

    def stop(self):
        """SIGTERM, and a second one a moment later (stop now: connections still in their
        handshake would otherwise hold up the graceful stop); killed if that fails."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(0.5)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def stress_server(tmp_path):
    """``stress_server(*options, nofile=None) -> ServerProcess``; all are stopped at the end."""
    started = []

    def start(*options, nofile=None):
        server = ServerProcess(str(tmp_path / ('server%d.log' % len(started))), *options,
                               nofile=nofile)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class Swarm:
    """swarm.py in a subprocess (its descriptor limit raised to the hard one); ``events()``
    are the JSON lines it prints."""

    def __init__(self, mode, port, *args):
        self.proc = subprocess.Popen([sys.executable, SWARM, mode, '--port', str(port),
                                      *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     preexec_fn=_nofile_setter(None))

    def next_event(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            pytest.fail('swarm exited with %s: %s' % (self.proc.returncode,
                                                      self.proc.stderr.read()))
        return json.loads(line)

    def tell(self, line):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def finish(self, timeout=60):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail('swarm did not finish in %s s' % timeout)
        assert self.proc.returncode == 0, self.proc.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def swarms():
    """``swarms(mode, port, *args) -> Swarm``; all are killed at the end of the test."""
    started = []

    def start(mode, port, *args):
        swarm = Swarm(mode, port, *args)
        started.append(swarm)
        return swarm

    yield start
    for swarm in started:
        swarm.kill()


def normal_round_trip(port, timeout):
    """A websocket-client connection: open, echo a message, close; seconds it took. Raises
    whatever websocket-client raises when it does not get through within ``timeout``."""
    started = time.monotonic()
    ws = websocket.create_connection('ws://127.0.0.1:%d/' % port, timeout=timeout)
    try:
        ws.send('are you there?')
        assert ws.recv() == 'are you there?'
    finally:
        ws.close(timeout=timeout)
    return time.monotonic() - started


def figures(title, **values):
    """Print a test's figures as one block (pytest -s shows them; -q keeps them with a
    failure)."""
    print('\n%s: %s' % (title, ', '.join('%s=%s' % item for item in values.items())))
