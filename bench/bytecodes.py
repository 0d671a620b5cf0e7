"""Bytecodes per S5 connection of the geventws benchmark server: a count that does not move
with the machine's speed, unlike S5's time on a shared VM (bench/RESULTS.md, "S5").

``bench/bytecodes.py [--duration 1] [--top 25]`` serves the benchmark's echo app
(bench/servers/geventws_server.py) in this process on a free 127.0.0.1 port, warms it up
with one churn worker of the load generator, then counts every bytecode that the
connections' greenlets run (``sys.settrace`` with opcode events; ``sys.monitoring`` from
Python 3.12 on) while one worker makes
connections for ``--duration`` seconds, and prints them per connection: the total, by source
file and by function. With ``GEVENTWS_NO_EXTENSIONS=1`` it counts the pure-Python path.

Tracing makes the server about ten times slower, which changes nothing counted: one worker
means one connection at a time, each running the same code.
"""
import argparse
import collections
import json
import os
import sys
from pathlib import Path

import gevent
from gevent import subprocess
from gevent.pywsgi import WSGIServer
from greenlet import getcurrent

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / 'servers'))
import run  # noqa: E402  (bench/run.py: the load generator)
from geventws_server import app  # noqa: E402

import geventws  # noqa: E402

_monitoring = getattr(sys, 'monitoring', None)   # Python 3.12 and later


class BytecodeCounter:
    """Counts the bytecodes run per code object, and its calls, in every greenlet but the
    main one (this script's, waiting for the load generator).

    Up to Python 3.11 with ``sys.settrace`` and opcode events; from 3.12 on with
    ``sys.monitoring`` (PEP 669), because there a frame that turns on ``f_trace_opcodes``
    in its own call event gets no opcode events. The instruction sets differ between
    versions, so counts compare within one Python version only."""

    def __init__(self):
        self.opcodes = collections.Counter()
        self.calls = collections.Counter()
        self._main = getcurrent()

    def start(self):
        if _monitoring is None:
            sys.settrace(self._trace)
            return
        tool = _monitoring.PROFILER_ID
        _monitoring.use_tool_id(tool, 'geventws bytecodes')
        _monitoring.register_callback(tool, _monitoring.events.PY_START, self._started)
        _monitoring.register_callback(tool, _monitoring.events.INSTRUCTION, self._instruction)
        _monitoring.set_events(tool, _monitoring.events.PY_START |
                               _monitoring.events.INSTRUCTION)

    def stop(self):
        if _monitoring is None:
            sys.settrace(None)
            return
        tool = _monitoring.PROFILER_ID
        _monitoring.set_events(tool, 0)
        _monitoring.free_tool_id(tool)

    def _trace(self, frame, event, arg):   # a new frame: trace its opcodes, not its lines
        if getcurrent() is self._main:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        self.calls[frame.f_code] += 1
        return self._opcode

    def _opcode(self, frame, event, arg):
        if event == 'opcode':
            self.opcodes[frame.f_code] += 1
        return self._opcode

    def _started(self, code, offset):
        if getcurrent() is not self._main:
            self.calls[code] += 1

    def _instruction(self, code, offset):
        if getcurrent() is not self._main:
            self.opcodes[code] += 1


def _churn(port, duration):
    """One churn worker for ``duration`` seconds: the connections it opened."""
    done = subprocess.run([str(run.LOADGEN), '--port', str(port), '--mode', 'churn',
                           '--conns', '1', '--size', '32', '--warmup', '0',
                           '--duration', str(duration)],
                          stdout=subprocess.PIPE, check=True)
    return json.loads(done.stdout)['connections_opened']


def _where(code):
    path = code.co_filename
    for prefix in sorted({os.path.dirname(geventws.__file__) + os.sep,
                          os.path.dirname(gevent.__file__) + os.sep,
                          os.path.dirname(os.__file__) + os.sep}, key=len, reverse=True):
        if path.startswith(prefix):
            root = os.path.basename(prefix.rstrip(os.sep))
            return root + '/' + path[len(prefix):]
    return path


def report(counter, connections, top):
    total = sum(counter.opcodes.values())
    print('%d connections (%s path): %.0f bytecodes and %.1f Python calls per connection'
          % (connections, 'compiled' if geventws.speedups_enabled() else 'pure-Python',
             total / connections, sum(counter.calls.values()) / connections))
    by_file = collections.Counter()
    for code, count in counter.opcodes.items():
        by_file[_where(code)] += count
    print('\nby file:')
    for path, count in by_file.most_common(top):
        print('%8.0f  %s' % (count / connections, path))
    print('\nby function (bytecodes, calls per connection):')
    for code, count in counter.opcodes.most_common(top):
        print('%8.0f %6.2f  %s:%d %s' % (count / connections, counter.calls[code] / connections,
                                          _where(code), code.co_firstlineno, code.co_name))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration', type=float, default=1.0,
                        help='seconds of counted connections (default 1)')
    parser.add_argument('--top', type=int, default=25, help='rows per table (default 25)')
    options = parser.parse_args()
    run.build_tools()
    server = WSGIServer(('127.0.0.1', 0), app, handler_class=geventws.WebSocketHandler,
                        log=None)
    server.start()
    try:
        _churn(server.server_port, 0.2)   # first connections: imports, caches, frame stacks
        counter = BytecodeCounter()
        counter.start()
        try:
            connections = _churn(server.server_port, options.duration)
        finally:
            counter.stop()
    finally:
        server.stop()
    report(counter, connections, options.top)


if __name__ == '__main__':
    main()
