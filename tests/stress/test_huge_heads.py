"""Request heads far over the limits (max_request_head 64 KiB in all, max_header_line 64 KiB,
max_headers 100) on an otherwise valid upgrade request: 431 Request Header Fields Too Large
with a one-line reason, or 414 for an over-long request line; never a 101. The answer must
reach a client that is still sending (no reset that loses it), and twenty such heads leave
the server's memory where it was."""
import select
import socket
import time

import pytest

from stresskit import figures, stress_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.stress

UPGRADE = (b'Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
           b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n')
MB = 1024 * 1024


def _head(fields=b'', target=b'/'):
    return b'GET %s HTTP/1.1\r\n%s%s\r\n' % (target, UPGRADE, fields)


#: name -> (request, the status it must get)
HEADS = {
    # 16 lines, each under max_header_line: the head's total is what is too large
    '1 MB in 16 lines of 64 KB': (_head(b''.join(b'X-Filler-%02d: %s\r\n' % (i, b'a' * 65000)
                                                   for i in range(16))), 431),
    '6 MB in one line': (_head(b'X-Huge: ' + b'a' * (6 * MB) + b'\r\n'), 431),
    '6 MB in 350,000 short lines': (_head(b''.join(b'X-F-%06d: abc\r\n' % i
                                                   for i in range(350000))), 431),
    '1 MB request line': (_head(target=b'/' + b'a' * MB), 414),
}
#: The two heads the memory check repeats, ten times each.
REPEATED = ('1 MB in 16 lines of 64 KB', '6 MB in one line')
ATTEMPTS = 20
TIMEOUT = 15


def send_huge(port, request):
    """Send ``request`` while reading what the server answers (it may answer, and close, long
    before the end); returns (the answer, bytes sent, how sending ended)."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT)
    sock.setblocking(False)
    view, sent, answer, ended = memoryview(request), 0, b'', 'all sent, then a close'
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            writing = [sock] if sent < len(request) else []
            readable, writable, _ = select.select([sock], writing, [], 0.5)
            if writable:
                try:
                    sent += sock.send(view[sent:sent + 256 * 1024])
                except (BrokenPipeError, ConnectionResetError) as exc:
                    ended = type(exc).__name__   # the rest unsent: read what came
                    sent = len(request)
                except BlockingIOError:
                    pass
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    return answer, sent, ended + ', then a reset'
                if not data:
                    if sent < len(request):
                        ended = 'closed by the server before the end'
                    return answer, sent, ended
                answer += data
        return answer, sent, ended + ', then no close in %d s' % TIMEOUT
    finally:
        sock.close()


def status_and_body(answer):
    head, _, body = answer.partition(b'\r\n\r\n')
    words = head.split(b'\r\n', 1)[0].split()
    return (int(words[1]) if len(words) > 1 and words[1].isdigit() else None), body


def test_huge_heads_are_refused_and_leave_memory_as_it_was(stress_server):
    server = stress_server()
    results = {}
    for name, (request, expected) in HEADS.items():
        started = time.monotonic()
        answer, sent, ended = send_huge(server.port, request)
        status, body = status_and_body(answer)
        results[name] = (status, body, expected)
        figures(name, status=status, body=body, sent='%d of %d bytes' % (sent, len(request)),
                sending=ended, took_s=round(time.monotonic() - started, 3))
    # The memory: warmed up by the heads above; then twenty more, one at a time.
    time.sleep(0.5)
    start, peak = server.rss_kib(), 0
    for i in range(ATTEMPTS):
        answer, _, _ = send_huge(server.port, HEADS[REPEATED[i % 2]][0])
        assert status_and_body(answer)[0] == 431, answer[:200]
        peak = max(peak, server.rss_kib())
    deadline, after = time.monotonic() + 10, server.rss_kib()
    while after > start + 1024 and time.monotonic() < deadline:
        time.sleep(0.2)
        after = server.rss_kib()
    log = server.log()
    figures('server memory over %d huge heads' % ATTEMPTS, rss_start_kib=start,
            rss_peak_kib=peak, rss_after_kib=after, growth_kib=after - start,
            server_log='%d access lines, %d tracebacks, other: %s' % (
                log['access'], log['tracebacks'], log['other'][:4]))
    for name, (status, body, expected) in results.items():
        assert status == expected, (name, status, body[:200])
        assert body.count(b'\n') <= 1 and b'\n' not in body.rstrip(b'\n'), (name, body[:200])
    assert after - start <= 1024
    server.assert_running()
    assert log['tracebacks'] == 0, server.first_traceback()
