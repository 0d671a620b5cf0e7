"""10,000 WebSocket connections open at once on one server process, each echoing once, then
all closed with the closing handshake: the server's descriptors, greenlets and WebSocket
objects come back to what they were before (nothing leaked), and its memory per open
connection is printed. A second round shows whether what the first left in the allocators
is reused. The clients are one swarm.py process (a selectors loop)."""
import pytest

from stresskit import figures, require_nofile, stress_server, swarms  # noqa: F401

pytestmark = pytest.mark.stress

CONNECTIONS = 10000
WARM_UP = 300


def test_ten_thousand_connections_leave_nothing_behind(stress_server, swarms):
    require_nofile(CONNECTIONS + 200, '10,000 connections in the server and in the swarm')
    server = stress_server()   # its soft RLIMIT_NOFILE raised to the hard limit
    # Warm up: what the first connections allocate, every later one reuses.
    warm = swarms('open', server.port, '--conns', WARM_UP)
    assert warm.next_event()['open'] == WARM_UP
    warm.tell('close')
    assert warm.next_event()['clean'] == WARM_UP
    warm.finish()
    baseline = server.quiet_stats()
    fds_before, rss_before = server.fd_count(), server.rss_kib()

    swarm = swarms('open', server.port, '--conns', CONNECTIONS)
    opened = swarm.next_event()
    peak = server.stats()
    fds_open, rss_open = server.fd_count(), server.rss_kib()
    swarm.tell('close')
    closed = swarm.next_event()
    swarm.finish()
    after = server.settled_stats(baseline)
    fds_after, rss_after = server.fd_count(), server.rss_kib()

    # A second round: what the first left in the allocators is reused, not added to.
    again = swarms('open', server.port, '--conns', CONNECTIONS)
    reopened = again.next_event()
    again.tell('close')
    reclosed = again.next_event()
    again.finish()
    after_again = server.settled_stats(baseline)
    rss_again = server.rss_kib()

    log = server.log()
    figures('10,000 connections', opened='%d in %.2f s' % (opened['open'], opened['seconds']),
            open_errors=opened['errors'],
            closed='%d cleanly of %d in %.2f s' % (closed['clean'], closed['closed'],
                                                   closed['seconds']),
            close_codes=closed['close_codes'], close_errors=closed['errors'],
            server_fds='%d before, %d open, %d after' % (fds_before, fds_open, fds_after),
            greenlets='%d before, %d open, %d after' % (baseline['greenlets'],
                                                        peak['greenlets'], after['greenlets']),
            websockets='%d before, %d open, %d after' % (
                baseline['websockets'], peak['websockets'], after['websockets']),
            rss_kib='%d before, %d open, %d after, %d after a second round' % (
                rss_before, rss_open, rss_after, rss_again),
            rss_per_connection_kib=round((rss_open - rss_before) / CONNECTIONS, 2),
            second_round='%d opened, %d closed cleanly; %s' % (
                reopened['open'], reclosed['clean'], after_again),
            server_log='%d access lines, %d tracebacks, other: %s' % (
                log['access'], log['tracebacks'], log['other'][:4]))
    assert opened['open'] == CONNECTIONS, opened
    assert closed['clean'] == CONNECTIONS, closed
    assert reopened['open'] == reclosed['clean'] == CONNECTIONS, (reopened, reclosed)
    assert peak['websockets'] - baseline['websockets'] == CONNECTIONS
    assert fds_open - fds_before >= CONNECTIONS
    for seen in (after, after_again):
        assert seen['websockets'] <= baseline['websockets'], seen
        assert seen['greenlets'] <= baseline['greenlets'], seen
        assert seen['fds'] <= baseline['fds'], seen
        assert seen['garbage'] == 0, seen
    server.assert_running()
    assert log['tracebacks'] == 0, server.first_traceback()
