"""What permessage-deflate costs an idle connection.

The test counts zlib's memory with tracemalloc (zlib allocates through Python's raw
allocator): nothing before the first compressed message, about 50 KiB after it with context
takeover (the defaults), and nothing again when context takeover is off.

Run as a script for the whole-server figure, RSS of a real server per idle connection:
``python tests/test_deflate_memory.py [connections]`` (clients run in a subprocess).
"""
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc

import pytest

from geventws.protocol.deflate import client_negotiate, client_offer, negotiate
from geventws.protocol.handshake import parse_extension_header
from geventws.protocol import Connection

MESSAGE = json.dumps({'items': [{'k': i, 'v': 'value %d' % i} for i in range(100)]})


def connection_pair(options):
    header, server_ext = negotiate(parse_extension_header(client_offer(options)), options)
    return (Connection(client=False, extension=server_ext),
            Connection(client=True, extension=client_negotiate(header, options)))


def server_kib_per_connection(options, exchange, n=100):
    """tracemalloc's count of what ``n`` server connections hold, in KiB each."""
    pairs = [connection_pair(options) for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for server, client in pairs:
            if exchange:
                server.receive_data(b''.join(client.send_message(MESSAGE)))
                client.receive_data(b''.join(server.send_message(MESSAGE)))
        # Drop what the clients hold, so only the servers' share is counted.
        clients = [client for _, client in pairs]
        for client in clients:
            client.extension._deflater = client.extension._inflater = None
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / n / 1024
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize('options, exchange, low, high', [
    (True, False, 0, 2),            # negotiated, never used: no zlib object yet
    (True, True, 40, 70),           # 12-bit deflater (38 KiB) + 12-bit inflater (11 KiB)
    (dict(server_no_context_takeover=True, client_no_context_takeover=True), True, 0, 2),
    (dict(server_max_window_bits=9, client_max_window_bits=9, mem_level=1), True, 10, 25),
])
def test_zlib_memory_per_connection(options, exchange, low, high):
    kib = server_kib_per_connection(options, exchange)
    assert low <= kib <= high, '%.1f KiB per connection' % kib


# -- the whole-server measurement (a script, not a test) ------------------------------------------

_CLIENTS = """
import sys, json
sys.path.insert(0, %r)
from helpers import CoreClient
port, n, compression = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
clients = [CoreClient(port, compression) for _ in range(n)]
for c in clients:
    c.send(%r); c.recv()
print('ready', flush=True)
sys.stdin.readline()
"""


def _rss():
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def measure_rss(compression, n):
    """Server RSS per idle connection (KiB) after one echoed message on each of ``n``."""
    from helpers import ThreadedServer, echo_app
    from geventws import WebSocketHandler
    server = ThreadedServer(echo_app, WebSocketHandler.configure(compression=compression))
    server.start()
    script = _CLIENTS % (os.path.dirname(os.path.abspath(__file__)), MESSAGE)

    def clients(count):
        return subprocess.Popen([sys.executable, '-c', script, str(server.port), str(count),
                                 json.dumps(compression)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        warm = clients(20)
        warm.stdout.readline()
        warm.communicate('\n', timeout=60)
        time.sleep(0.3)
        gc.collect()
        before = _rss()
        proc = clients(n)
        proc.stdout.readline()
        time.sleep(0.5)
        grown = _rss() - before
        proc.communicate('\n', timeout=60)
    finally:
        server.stop()
    return grown / n / 1024


SETTINGS = [None, True, dict(server_no_context_takeover=True, client_no_context_takeover=True)]

if __name__ == '__main__':
    # One fresh process per setting: memory freed by a previous run would hide the growth.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    if len(sys.argv) > 2:
        setting = json.loads(sys.argv[2])
        print('compression=%r: %.1f KiB per idle connection' % (setting,
                                                                measure_rss(setting, count)))
    else:
        for setting in SETTINGS:
            subprocess.run([sys.executable, __file__, str(count), json.dumps(setting)],
                           check=True, timeout=300)
