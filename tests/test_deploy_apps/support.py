"""Real programs (gunicorn, ``python -m geventws serve``, nginx, haproxy) started by a test on
127.0.0.1 free ports, waited for until their port accepts, and always stopped; the TLS files
they serve wss with; a WebSocket client that reads up to the server's close."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
START_TIMEOUT = 20


class Program:
    """One started program; its stdout and stderr go to ``log_path``."""

    def __init__(self, argv, port, log_path, cwd=None, env=None, stop_signal=signal.SIGTERM):
        self.argv, self.port, self.log_path = argv, port, log_path
        self.stop_signal = stop_signal
        with open(log_path, 'wb') as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_for_port(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail('%s exited with %s:\n%s' % (self.argv[0], self.proc.returncode,
                                                        self.output()))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail('%s did not listen on %d:\n%s' % (self.argv[0], self.port,
                                                                  self.output()))
                time.sleep(0.02)

    def output(self):
        with open(self.log_path, encoding='utf-8', errors='replace') as log:
            return log.read()

    def wait_for_output(self, text, timeout=START_TIMEOUT):
        """Wait until ``text`` appears in the output; returns the whole output."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                pytest.fail('%r never appeared in:\n%s' % (text, self.output()))
            time.sleep(0.05)
        return self.output()

    def send(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def programs(tmp_path):
    """``programs(argv, port, cwd=None, env=None, wait=True, stop_signal=SIGTERM) ->
    Program``; all are stopped at the end of the test."""
    started = []

    def start(argv, port, cwd=None, env=None, wait=True, stop_signal=signal.SIGTERM):
        program = Program(argv, port, str(tmp_path / ('program%d.log' % len(started))),
                          cwd=cwd, env=env, stop_signal=stop_signal)
        started.append(program)
        return program.wait_for_port() if wait else program

    yield start
    for program in started:
        program.stop()


def python_env(**extra):
    """The environment for a Python child: this checkout importable, output unbuffered."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', **extra)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, HERE, env.get('PYTHONPATH')]))
    return env


PYTHON = sys.executable


@pytest.fixture
def tls_files(tmp_path):
    """``(certfile, keyfile, cafile)``: a trustme CA and its certificate for 127.0.0.1."""
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1')
    paths = [str(tmp_path / name) for name in ('cert.pem', 'key.pem', 'ca.pem')]
    cert.cert_chain_pems[0].write_to_path(paths[0])
    cert.private_key_pem.write_to_path(paths[1])
    ca.cert_pem.write_to_path(paths[2])
    return paths


def ws_connect(url, cafile=None, **options):
    """A websocket-client connection (verifying against ``cafile`` for wss)."""
    sslopt = {'ca_certs': cafile} if cafile else None
    return websocket.create_connection(url, timeout=10, sslopt=sslopt, **options)


def read_until_close(ws):
    """The messages that arrive before the server's close, and that close's (code, reason);
    websocket-client answers the close."""
    messages = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return messages, (int.from_bytes(data[:2], 'big'), data[2:].decode('utf-8'))
        if opcode == websocket.ABNF.OPCODE_TEXT:
            messages.append(data.decode('utf-8'))
        elif opcode == websocket.ABNF.OPCODE_BINARY:
            messages.append(data)
