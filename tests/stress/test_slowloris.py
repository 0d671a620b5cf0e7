"""Slowloris: 2,000 connections that send their request head one byte every 3 s are all
closed once handshake_timeout (10 s by default) has passed, however steadily they trickle,
while a normal client (websocket-client) gets through on every attempt. The same deadlines
hold for the next request of a keep-alive connection, and keepalive_timeout (5 s by default)
for a connection idle between requests."""
import threading
import time

import pytest

from helpers import settled
from stresskit import (DEFAULT_HANDSHAKE_TIMEOUT, figures, normal_round_trip, require_nofile,
                       stress_server, swarms)  # noqa: F401  (fixtures)

pytestmark = pytest.mark.stress

SLOW_CONNECTIONS = 2000
#: Beyond handshake_timeout, for the server's timers to fire and the closes to arrive.
SLACK = 5.0
#: websocket-client's timeout for one whole attempt's steps.
CLIENT_TIMEOUT = 10.0
#: Ways the swarm sees a slow connection end: the server's FIN, RST, or its 408.
CLOSED = {'eof', 'reset', 'reset on send', 'answer 408'}


class NormalClient(threading.Thread):
    """Connects, echoes and closes over and over until stopped; every attempt must work."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.trips, self.failures = [], []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.trips.append(normal_round_trip(self.port, CLIENT_TIMEOUT))
            except Exception as exc:   # noqa: BLE001  (every failure is reported)
                self.failures.append('%.1f s: %r' % (time.monotonic(), exc))
            self.stopping.wait(0.1)

    def stop(self):
        self.stopping.set()
        self.join(CLIENT_TIMEOUT * 2)


def test_slow_heads_are_closed_within_the_handshake_timeout(stress_server, swarms):
    require_nofile(SLOW_CONNECTIONS + 200, '2,000 slow connections')
    server = stress_server()   # handshake_timeout: the default
    normal_round_trip(server.port, CLIENT_TIMEOUT)
    fds_before = server.fd_count()
    client = NormalClient(server.port)
    client.start()
    try:
        swarm = swarms('slow', server.port, '--conns', SLOW_CONNECTIONS, '--interval', 3,
                       '--limit', DEFAULT_HANDSHAKE_TIMEOUT * 3 + 10)
        opened = swarm.next_event()
        summary = swarm.next_event()
        swarm.finish()
    finally:
        client.stop()
    fds_after = settled(server.fd_count, fds_before)
    log = server.log()
    figures('slowloris', opened_in_s=opened['seconds'], **{
        'closed': '%d of %d' % (summary['closed'], summary['opened']),
        'all_closed_after_s': summary['all_closed_after'],
        'lifetime_s': summary['lifetime'], 'outcomes': summary['outcomes'],
        'bytes_sent_at_most': summary['max_bytes_sent'],
        'normal_attempts': len(client.trips) + len(client.failures),
        'normal_failures': len(client.failures),
        'normal_worst_ms': round(max(client.trips, default=0) * 1000, 1),
        'normal_median_ms': round(sorted(client.trips)[len(client.trips) // 2] * 1000, 1)
        if client.trips else None,
        'server_fds': '%d before, %d after' % (fds_before, fds_after),
        'server_log': '%d access lines, %d tracebacks, %d other' % (
            log['access'], log['tracebacks'], len(log['other']))})
    for line in log['other'][:5]:
        print('  server log:', line)
    assert opened['opened'] == SLOW_CONNECTIONS and opened['failed'] == 0, opened
    assert summary['still_open'] == 0, summary
    assert set(summary['outcomes']) <= CLOSED, summary['outcomes']
    assert summary['lifetime']['max'] <= DEFAULT_HANDSHAKE_TIMEOUT + SLACK, summary
    assert client.failures == []
    assert len(client.trips) >= 5
    server.assert_running()
    assert fds_after <= fds_before
    assert log['tracebacks'] == 0, server.output()[-5000:]


DEFAULT_KEEPALIVE_TIMEOUT = 5.0
KEEP_ALIVE_CONNECTIONS = 500


def test_keep_alive_requests_have_the_same_deadlines(stress_server, swarms):
    """After a first request answered on the connection: a next head trickled a byte every
    3 s is closed once handshake_timeout has passed since its first byte (not at the idle
    connection's keepalive_timeout, nor never), and a connection that sends nothing more is
    closed once keepalive_timeout has passed."""
    server = stress_server()   # both timeouts: the defaults
    limit = DEFAULT_HANDSHAKE_TIMEOUT * 3 + 10
    trickling = swarms('slow', server.port, '--conns', KEEP_ALIVE_CONNECTIONS,
                       '--first-request', '--interval', 3, '--limit', limit)
    idle = swarms('slow', server.port, '--conns', KEEP_ALIVE_CONNECTIONS, '--first-request',
                  '--silent', '--limit', limit)
    opened = [trickling.next_event(), idle.next_event()]
    summaries = [trickling.next_event(), idle.next_event()]
    trickling.finish()
    idle.finish()
    normal = normal_round_trip(server.port, CLIENT_TIMEOUT)
    log = server.log()
    for name, summary in zip(('trickling a next request', 'idle after a request'), summaries):
        figures('keep-alive, %s' % name, closed='%d of %d' % (summary['closed'],
                                                              summary['opened']),
                lifetime_s=summary['lifetime'], outcomes=summary['outcomes'],
                all_closed_after_s=summary['all_closed_after'])
    figures('keep-alive', normal_round_trip_ms=round(normal * 1000, 1),
            server_log='%d access lines, %d tracebacks, %d other' % (
                log['access'], log['tracebacks'], len(log['other'])))
    assert [o['opened'] for o in opened] == [KEEP_ALIVE_CONNECTIONS] * 2, opened
    for summary in summaries:
        assert summary['still_open'] == 0, summary
        assert set(summary['outcomes']) <= CLOSED, summary['outcomes']
    slow, quiet = summaries[0]['lifetime'], summaries[1]['lifetime']
    assert DEFAULT_HANDSHAKE_TIMEOUT - 1 <= slow['min'] <= slow['max'] <= (
        DEFAULT_HANDSHAKE_TIMEOUT + SLACK), slow
    assert DEFAULT_KEEPALIVE_TIMEOUT - 1 <= quiet['min'] <= quiet['max'] <= (
        DEFAULT_KEEPALIVE_TIMEOUT + SLACK), quiet
    server.assert_running()
    assert log['tracebacks'] == 0, server.first_traceback()
