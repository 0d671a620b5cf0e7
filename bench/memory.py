"""Where the memory of an idle geventws connection goes (S4), by Python source line.

Runs the benchmark's geventws echo server in this process with tracemalloc on, has the load
generator open idle connections (idle mode, held open while we look), and prints the Python
allocations still alive per connection, by the line that made them, next to the growth of the
RSS per connection. What RSS shows and tracemalloc does not is C memory: the greenlet's saved
stack, zlib streams, the allocators' slack (and tracemalloc's own bookkeeping, which makes RSS
here larger than in S4).

    python bench/memory.py [--conns 2000] [--deflate] [--top 15]
"""
import argparse
import gc
import json
import os
import sys
import tracemalloc
from pathlib import Path

import gevent.subprocess
from gevent.pywsgi import WSGIServer

import geventws
import run

sys.path.insert(0, str(Path(__file__).resolve().parent / 'servers'))
from geventws_server import app  # noqa: E402  (the same application as in the benchmark)


def idle_connections(port, conns, deflate):
    """Start the load generator; return it and its report once CONNS connections are idle."""
    proc = gevent.subprocess.Popen(
        [str(run.LOADGEN), '--mode', 'idle', '--conns', str(conns), '--size', '128',
         '--settle', '0.5', '--hold', '600', '--port', str(port), '--server-pid',
         str(os.getpid())] + (['--deflate'] if deflate else []),
        stdout=gevent.subprocess.PIPE)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        sys.exit('memory: the load generator failed (exit %s)' % proc.returncode)
    return proc, json.loads(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--conns', type=int, default=2000)
    parser.add_argument('--deflate', action='store_true',
                        help='offer permessage-deflate as browsers do')
    parser.add_argument('--top', type=int, default=15)
    options = parser.parse_args()
    run.build_tools()
    run.raise_nofile()
    server = WSGIServer(('127.0.0.1', 0), app, handler_class=geventws.WebSocketHandler,
                        log=None)
    server.start()
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.take_snapshot()
    proc, report = idle_connections(server.server_port, options.conns, options.deflate)
    gc.collect()
    after = tracemalloc.take_snapshot()
    proc.kill()
    proc.wait()
    n = options.conns
    stats = after.compare_to(before, 'lineno')
    python_bytes = sum(stat.size_diff for stat in stats)
    print('%d idle connections%s, geventws %s (%s)\n' % (
        n, ' with permessage-deflate' if options.deflate else '', geventws.__version__,
        'compiled' if geventws.speedups_enabled() else 'pure Python'))
    print('- RSS growth (tracemalloc on): %.1f KiB per connection' % report['kib_per_connection'])
    print('- Python allocations alive: %.1f KiB per connection\n' % (python_bytes / n / 1024))
    print('| bytes per connection | blocks per connection | allocated at |\n|---|---|---|')
    for stat in stats[:options.top]:
        frame = stat.traceback[0]
        print('| %.0f | %.1f | `%s:%d` |' % (stat.size_diff / n, stat.count_diff / n,
                                            _short(frame.filename), frame.lineno))


def _short(filename):
    """site-packages/gevent/pywsgi.py -> gevent/pywsgi.py; our files relative to the root."""
    path = Path(filename)
    for anchor in ('site-packages', 'lib'):
        if anchor in path.parts:
            return '/'.join(path.parts[len(path.parts) - path.parts[::-1].index(anchor):])
    try:
        return str(path.relative_to(run.ROOT))
    except ValueError:
        return filename


if __name__ == '__main__':
    main()
