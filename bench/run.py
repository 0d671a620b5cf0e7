"""``make bench``: geventws against the other WebSocket echo servers, side by side.

Each server runs alone on core 0 (``taskset -c 0``), started fresh for each scenario on a free
127.0.0.1 port; one C load generator (bench/loadgen.c, compiled here with the system cc) drives
it from core 1. Every figure is compared with gevent-websocket measured in the same run. The
tables go to stdout and to bench/out/latest.md (--output), the figures to latest.json next to
it. Servers are stopped (their whole process group) after each scenario, also on errors and
Ctrl-C.

    python bench/run.py [--quick] [--servers geventws,picows] [--scenarios S1,S4,micro]
                        [--repeat 3] [--warmup 1] [--duration 3]
    python bench/run.py --profile geventws [--scenarios S5]   # py-spy profile (default S1)
"""
import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / 'out'
LOADGEN = OUT / 'loadgen'
C_ECHO = OUT / 'c_echo'
NODE_MODULES = ROOT / 'tests' / 'node' / 'node_modules'
SERVER_CORE, LOADGEN_CORE = '0', '1'


@dataclass
class Server:
    name: str
    label: str
    argv: list
    env: dict = field(default_factory=dict)
    missing: str = ''       # why it cannot run here, if it cannot
    loadgen_args: list = field(default_factory=list)
    scenarios: tuple = ()   # the only scenarios it runs in, when not all


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _python_server(name, dist, script, env=None, label=None, **more):
    version = _version(dist)
    return Server(name, label or '%s %s' % (name, version),
                  [sys.executable, str(HERE / 'servers' / script)], env or {},
                  '' if version else '%s is not installed (make bench installs it)' % dist,
                  **more)


def _node_server():
    package = NODE_MODULES / 'ws' / 'package.json'
    node = shutil.which('node')
    missing = ('node is not installed' if not node else
               '' if package.exists() else 'run npm install in tests/node')
    version = json.loads(package.read_text())['version'] if package.exists() else '?'
    return Server('node-ws', 'node ws %s' % version,
                  [node or 'node', str(HERE / 'servers' / 'node_ws_server.js')],
                  {'NODE_PATH': str(NODE_MODULES)}, missing)


def _socketio_server(engine, dist):
    """S7's Flask-SocketIO app (bench/servers/socketio_echo.py) on ``engine``."""
    version = _version(dist)
    server = _python_server('socketio-' + engine, 'flask-socketio', 'socketio_echo.py',
                            label='Flask-SocketIO %s on %s %s%s' % (
                                _version('flask-socketio'), engine, version,
                                ' compiled' if engine == 'geventws' else ''),
                            scenarios=('S7',))
    server.argv.append(engine)
    if not version:
        server.missing = '%s is not installed (make bench installs it)' % dist
    return server


def all_servers():
    ours = _version('geventws')
    return [
        _python_server('gevent-websocket', 'gevent-websocket', 'gevent_websocket_server.py'),
        _python_server('geventws', 'geventws', 'geventws_server.py',
                       label='geventws %s compiled' % ours),
        _python_server('geventws-pure', 'geventws', 'geventws_server.py',
                       {'GEVENTWS_NO_EXTENSIONS': '1'}, 'geventws %s pure Python' % ours),
        # Every browser offers permessage-deflate, and geventws accepts it by default: the
        # memory and handshake cost of a browser's connection (the other rows offer nothing).
        _python_server('geventws-deflate', 'geventws', 'geventws_server.py',
                       label='geventws %s compiled, permessage-deflate offered' % ours,
                       loadgen_args=['--deflate'], scenarios=('S4', 'S5')),
        _python_server('websockets', 'websockets', 'websockets_server.py'),
        _python_server('aiohttp', 'aiohttp', 'aiohttp_server.py'),
        _python_server('picows', 'picows', 'picows_server.py'),
        _node_server(),
        # Not a peer: what the kernel and the load generator allow any server here.
        Server('c-echo', "minimal C echo (the harness's limit)", [str(C_ECHO)],
               scenarios=('S1', 'S2', 'S3')),
        # S7: one Flask-SocketIO app, its WebSockets served by each engine engineio can use.
        _socketio_server('geventws', 'geventws'),
        _socketio_server('gevent-websocket', 'gevent-websocket'),
        _socketio_server('simple-websocket', 'simple-websocket'),
    ]


@dataclass
class Scenario:
    name: str
    title: str
    args: list              # load generator arguments
    quick_args: list = field(default_factory=list)   # overrides for --quick
    listed_only: bool = False   # run only by the servers that name it in their scenarios


SCENARIOS = [
    Scenario('S1', '64 connections, one 32-byte text message in flight each',
             ['--mode', 'echo', '--conns', '64', '--inflight', '1', '--size', '32']),
    Scenario('S2', '8 connections x 100 pipelined 32-byte text messages',
             ['--mode', 'echo', '--conns', '8', '--inflight', '100', '--size', '32']),
    Scenario('S3', '4 connections echoing 1 MiB binary messages',
             ['--mode', 'echo', '--conns', '4', '--inflight', '1', '--size', str(1 << 20),
              '--binary']),
    # 128 bytes: above geventws' smallest compressed message (64), so with permessage-deflate
    # both of its zlib streams exist, as they do on a browser's connection.
    Scenario('S4', '{conns} idle connections (after the handshake and one 128-byte echo each): '
             'server RSS per connection',
             ['--mode', 'idle', '--conns', '5000', '--size', '128', '--settle', '1'],
             ['--conns', '500', '--settle', '0.3']),
    Scenario('S5', '16 workers: connect, handshake, one echo, close handshake',
             ['--mode', 'churn', '--conns', '16', '--size', '32']),
    # One broadcast to every open connection, triggered by the first (a text message that
    # starts with '!'), ten rounds; the load generator timestamps every arrival.
    Scenario('S6', 'one broadcast of a 32-byte text message to {conns} open connections',
             ['--mode', 'broadcast', '--conns', '10000', '--size', '32', '--rounds', '10'],
             ['--conns', '500', '--rounds', '3']),
    Scenario('S6k', 'one broadcast of a 1 KiB text message to {conns} open connections',
             ['--mode', 'broadcast', '--conns', '10000', '--size', '1024', '--rounds', '10'],
             ['--conns', '500', '--rounds', '3']),
    # The same event echoed by one Flask-SocketIO app on each engine: the load generator
    # speaks Socket.IO over the websocket transport (its --socketio).
    Scenario('S7', 'Flask-SocketIO, 64 connections, one 32-byte echo event in flight each',
             ['--mode', 'echo', '--conns', '64', '--inflight', '1', '--size', '32',
              '--socketio'], listed_only=True),
]
#: Scenarios measured once per server (each runs its own rounds, or measures memory).
ONCE = ('S4', 'S6', 'S6k')
MICRO = 'micro'


def build_tools():
    """Compile the load generator (zlib for --deflate) and the C echo server, each when its
    source is newer than its binary."""
    _compile(HERE / 'loadgen.c', LOADGEN, ['-lz'])
    _compile(HERE / 'servers' / 'c_echo.c', C_ECHO, [])


def _compile(source, binary, libraries):
    """Built aside and renamed, so a run or a test using the old binary is not disturbed."""
    OUT.mkdir(exist_ok=True)
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return
    cc = os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc')
    if not cc:
        sys.exit('bench: no C compiler (cc) to build %s' % source.name)
    building = binary.with_name('%s.%d' % (binary.name, os.getpid()))
    subprocess.run([cc, '-O2', '-Wall', '-o', str(building), str(source)] + libraries,
                   check=True)
    os.replace(building, binary)


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def raise_nofile():
    """In a server's process: the soft limit of descriptors up to the hard one, enough for
    S4's 5,000 connections where the default soft limit is 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 10100:
        print('bench: the hard limit of open files is %d: S6 needs 10,100 (ulimit -Hn)' % hard,
              file=sys.stderr)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _server_env(server):
    """The caller's environment without its choice of geventws implementation (each row
    makes its own: a run started with GEVENTWS_NO_EXTENSIONS=1 must not mislabel the compiled
    row), plus the server's own variables."""
    env = {k: v for k, v in os.environ.items() if k != 'GEVENTWS_NO_EXTENSIONS'}
    env.update(server.env)
    return env


def _log_tail(path, lines=5):
    with contextlib.suppress(OSError):
        return ' / '.join(path.read_text(errors='replace').strip().splitlines()[-lines:])
    return ''


@contextlib.contextmanager
def running(server, log_path):
    """The server on core 0 in its own session, yielding (pid, port); the whole process
    group is killed on the way out."""
    port = _free_port()
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen(['taskset', '-c', SERVER_CORE] + server.argv + [str(port)],
                                env=_server_env(server), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=raise_nofile)
    try:
        _wait_listening(proc, port, log_path)
        yield proc.pid, port     # taskset execs the server: same pid
    finally:
        _stop(proc)


def _wait_listening(proc, port, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('server exited with %s: %s' % (proc.returncode,
                                                               _log_tail(log_path)))
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(('127.0.0.1', port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError('server not listening after %d s' % timeout)


def _stop(proc):
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_loadgen(args, timeout):
    proc = subprocess.run(['taskset', '-c', LOADGEN_CORE, str(LOADGEN)] + args,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip() or 'loadgen exit %d' % proc.returncode)
                           .splitlines()[-1])
    return json.loads(proc.stdout)


def scenario_args(scenario, options):
    args = list(scenario.args)
    if scenario.name not in ONCE:
        args += ['--warmup', str(options.warmup), '--duration', str(options.duration)]
    if options.quick:
        for flag, value in zip(scenario.quick_args[::2], scenario.quick_args[1::2]):
            args[args.index(flag) + 1] = value
    return args


def run_one(scenario, server, options):
    log_path = OUT / 'logs' / ('%s-%s.log' % (server.name, scenario.name))
    with running(server, log_path) as (pid, port):
        args = scenario_args(scenario, options) + server.loadgen_args + [
            '--port', str(port), '--server-pid', str(pid)]
        timeout = 180 if scenario.name in ONCE else options.warmup + options.duration + 60
        return run_loadgen(args, timeout)


def _summary(scenario, result):
    if 'error' in result:
        return result['error']
    if scenario.name == 'S4':
        return '%.1f KiB per connection' % result['kib_per_connection']
    if scenario.name == 'S3':
        return '%.0f MB/s' % result['mb_per_s']
    if scenario.name in ('S6', 'S6k'):
        return '%.0f deliveries/s, the last after %.1f ms' % (result['rate'],
                                                               result['last_ms_median'])
    return '%.0f/s, loadgen CPU %d%%' % (result['rate'], result['gen_cpu'] * 100)


def _rounds(scenario, options):
    """S4 (memory) and S6 (its own ten rounds) once; the others ``--repeat`` times, every
    server once per round, so a burst of other work on this shared machine rarely hits the
    same server every time."""
    return 1 if scenario.name in ONCE else options.repeat


def _keep_best(scenario, kept, result):
    """The round with the highest figure, all rounds' figures in ``rounds``; a failure in
    any round is the row's result (a broken server must not hide behind a good round)."""
    if kept is None:
        return result
    if 'error' in kept or 'error' in result:
        return kept if 'error' in kept else result
    key = report.LAYOUTS[scenario.name][0]
    best = dict(max(kept, result, key=lambda r: r[key]))
    best['rounds'] = kept.get('rounds', [kept[key]]) + [result[key]]
    return best


def run_scenario(scenario, servers, options):
    by_server = {}
    for _ in range(_rounds(scenario, options)):
        for server in servers:
            if ((server.scenarios or scenario.listed_only)
                    and scenario.name not in server.scenarios):
                continue
            if server.missing:
                by_server[server.name] = {'error': 'not run: ' + server.missing}
                continue
            try:
                result = run_one(scenario, server, options)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                result = {'error': 'failed: %s' % exc}
            by_server[server.name] = _keep_best(scenario, by_server.get(server.name), result)
            print('  %s %-18s %s' % (scenario.name, server.name, _summary(scenario, result)),
                  file=sys.stderr, flush=True)
    return by_server


def run_micro(options):
    min_time = 0.03 if options.quick else 0.3
    proc = subprocess.run(['taskset', '-c', SERVER_CORE, sys.executable, str(HERE / 'micro.py'),
                           '--min-time', str(min_time)], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout)


def machine_header(options, started):
    lscpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout.splitlines()
    model = next((line.split(':', 1)[1].strip() for line in lscpu
                  if line.startswith('Model name')), platform.processor())
    cc = os.environ.get('CC') or shutil.which('cc') or 'cc'
    compiler = subprocess.run([cc, '--version'], capture_output=True,
                              text=True).stdout.partition('\n')[0]
    load = ', '.join('%.2f' % value for value in os.getloadavg())
    return ('## WebSocket echo benchmark\n\n'
            '- date: %s\n- CPU: %s, %d cores (servers on core %s, the load generator on '
            'core %s)\n- kernel: Linux %s\n- Python %s, gevent %s, greenlet %s, Cython %s; '
            'load generator built with %s\n- load average at the start: %s\n'
            '- %s: %.1f s warm-up and %.1f s measured per server and scenario, the best of '
            '%d rounds (S4: one; every round in the .json file next to this)\n'
            % (started, model, os.cpu_count(), SERVER_CORE, LOADGEN_CORE, platform.release(),
               platform.python_version(), _version('gevent'), _version('greenlet'),
               _version('Cython'), compiler, load,
               'quick run' if options.quick else 'full run', options.warmup, options.duration,
               options.repeat))


def _pick(items, wanted, kind):
    if not wanted:
        return items
    names = [name.strip() for name in wanted.split(',')]
    known = {item.name: item for item in items}
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit('bench: unknown %s %s (known: %s)' % (kind, ', '.join(unknown),
                                                      ', '.join(known)))
    return [known[name] for name in names]


def profile(server_name, options):
    """py-spy records the server through one scenario (the first of --scenarios, S1 by
    default); the summary names the hottest functions."""
    import pyspy_summary
    server = _pick(all_servers(), server_name, 'server')[0]
    scenario = _pick(SCENARIOS, (options.scenarios or 'S1').split(',')[0], 'scenario')[0]
    raw = OUT / ('profile-%s-%s.txt' % (server.name, scenario.name))
    # py-spy comes with the bench extra, next to this Python when the venv is not activated.
    py_spy = shutil.which('py-spy', path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    if not py_spy:
        sys.exit('bench: py-spy is not installed (pip install py-spy)')
    with running(server, OUT / 'logs' / ('%s-profile.log' % server.name)) as (pid, port):
        spy = subprocess.Popen([py_spy, 'record', '--format', 'raw', '--rate', '500',
                                '--pid', str(pid), '--output', str(raw), '--nonblocking'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1)
            result = run_loadgen(scenario_args(scenario, options) + server.loadgen_args +
                                 ['--port', str(port), '--server-pid', str(pid)], 240)
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    print('%s under py-spy: %s\n' % (scenario.name, _summary(scenario, result)))
    print(pyspy_summary.summarize(raw))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='a smoke run of a few seconds')
    parser.add_argument('--servers', help='comma-separated: ' +
                        ','.join(server.name for server in all_servers()))
    parser.add_argument('--scenarios',
                        help='comma-separated: %s,%s' % (','.join(s.name for s in SCENARIOS),
                                                         MICRO))
    parser.add_argument('--warmup', type=float, help='seconds before measuring (default 1)')
    parser.add_argument('--duration', type=float, help='seconds measured (default 3)')
    parser.add_argument('--repeat', type=int,
                        help='rounds of S1, S2, S3, S5, S7, the best kept (default 2; '
                             'quick: 1)')
    parser.add_argument('--output', type=Path, default=OUT / 'latest.md',
                        help='the tables in markdown (default bench/out/latest.md)')
    parser.add_argument('--profile', metavar='SERVER',
                        help='profile SERVER with py-spy under S1 instead of benchmarking')
    options = parser.parse_args()
    if options.warmup is None:
        options.warmup = 0.2 if options.quick else 1.0
    if options.duration is None:
        options.duration = 0.5 if options.quick else 3.0
    if options.repeat is None:
        options.repeat = 1 if options.quick else 2
    # SIGTERM ends the run like Ctrl-C does, through every ``finally`` that stops a server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build_tools()
    (OUT / 'logs').mkdir(parents=True, exist_ok=True)
    if options.profile:
        return profile(options.profile, options)

    servers = _pick(all_servers(), options.servers, 'server')
    names = [s.name for s in SCENARIOS] + [MICRO]
    wanted = [name.strip() for name in options.scenarios.split(',')] if options.scenarios \
        else names
    unknown = [name for name in wanted if name not in names]
    if unknown:
        sys.exit('bench: unknown scenario %s (known: %s)' % (', '.join(unknown),
                                                            ', '.join(names)))
    started = datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')
    t0 = time.monotonic()
    sections = [machine_header(options, started)]
    print(sections[0], flush=True)
    labels = {server.name: server.label for server in servers}
    results, micro = {}, None
    for scenario in SCENARIOS:
        if scenario.name not in wanted:
            continue
        results[scenario.name] = run_scenario(scenario, servers, options)
        args = scenario_args(scenario, options)
        title = scenario.title.format(conns='{:,}'.format(int(args[args.index('--conns') + 1])))
        sections.append(report.scenario_table(scenario.name, title, results[scenario.name],
                                              labels))
        print(sections[-1], flush=True)
    if MICRO in wanted:
        micro = run_micro(options)
        sections.append(report.micro_table(micro))
        print(sections[-1], flush=True)
    tail = report.targets(results, micro)
    tail += '\nThe whole run took %.0f s.\n' % (time.monotonic() - t0)
    sections.append(tail)
    print(tail)
    options.output.write_text('\n'.join(sections))
    options.output.with_suffix('.json').write_text(
        json.dumps({'results': results, 'micro': micro}, indent=1))
    failed = [name for by_server in results.values() for name, r in by_server.items()
              if r.get('error', '').startswith('failed')]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
