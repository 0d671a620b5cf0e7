"""S8: one channel through Redis to 2 server processes x 5,000 subscribers, one publisher.

``python bench/s8.py [--subscribers 10000] [--stacks geventws,socketio]`` starts, for each
stack, a redis-server of its own, two server processes (bench/servers/pubsub_geventws.py on
``geventws serve``: ``geventws.pubsub.Broker``; bench/servers/pubsub_socketio.py:
python-socketio's RedisManager, Flask-SocketIO's message queue, on gevent-websocket) and the
C subscribers (bench/subscribers.c, compiled into bench/out/), which timestamp every arrival
(the programs' output: bench/out/s8-<stack>.log).
Then one publisher process per phase publishes its messages at a rate (``max``: as fast as
it can), each carrying its CLOCK_MONOTONIC time, and the next phase starts once every
subscriber had every message of this one. Per phase: deliveries/s (from the first publish to
the last arrival), end-to-end latency p50/p99/max, and the servers' CPU per delivery; per
stack, the servers' memory per subscriber. Prints a Markdown table and writes the figures to
bench/out/s8.json (``--json``).

Rates past what the servers deliver (at 5,000 subscribers per process, a few tens of
messages per second here) show the deliveries/s at saturation, and the latency of a backlog.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
SERVERS = os.path.join(BENCH, 'servers')
OUT = os.path.join(BENCH, 'out')
PYTHON = sys.executable
#: (rate per second or None for as fast as possible, messages)
PHASES = [(2, 10), (10, 30), (100, 200), (1000, 300), (None, 300)]
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit('a server exited: %s' % proc.args)
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit('nothing listens on %d' % port)
            time.sleep(0.05)


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def publish(stack, url, rate, count, phase):
    """The publisher (run in a process of its own): prints the first publish's time."""
    from gevent import monkey
    monkey.patch_all()
    import gevent
    if stack == 'geventws':
        from geventws.pubsub import Broker
        broker = Broker(url)

        def send(data):
            broker.publish('bench', data)
    else:
        import socketio
        manager = socketio.RedisManager(url, write_only=True)

        def send(data):
            manager.emit('m', data, room='bench', namespace='/')
    start = time.monotonic_ns()
    for n in range(count):
        if rate:
            due = start + n * 10 ** 9 // rate
            delay = due - time.monotonic_ns()
            if delay > 0:
                gevent.sleep(delay / 1e9)
        send(('T%d R%d ' % (time.monotonic_ns(), phase)).ljust(32, 'x'))
    print(json.dumps({'start_ns': start, 'end_ns': time.monotonic_ns()}), flush=True)


def run_stack(stack, subscribers, phases, directory):
    redis_port = free_port()
    url = 'redis://127.0.0.1:%d/0' % redis_port
    procs = []
    log = open(os.path.join(OUT, 's8-%s.log' % stack), 'wb')
    try:
        redis = subprocess.Popen(['redis-server', '--port', str(redis_port), '--bind',
                                  '127.0.0.1', '--save', '', '--appendonly', 'no',
                                  '--dir', directory],
                                 stdout=log, stderr=log)
        procs.append(redis)
        wait_port(redis_port, redis)
        env = dict(os.environ, REDIS_URL=url, PYTHONPATH=ROOT)
        ports, servers = [], []
        for _ in range(2):
            port = free_port()
            if stack == 'geventws':
                argv = [PYTHON, '-m', 'geventws', 'serve', 'pubsub_geventws:app',
                        '--port', str(port)]
            else:
                argv = [PYTHON, 'pubsub_socketio.py', str(port)]
            server = subprocess.Popen(argv, cwd=SERVERS, env=env, stdout=log, stderr=log)
            procs.append(server)
            wait_port(port, server)
            ports.append(port)
            servers.append(server)
        time.sleep(0.5)
        rss_before = sum(rss_kib(s.pid) for s in servers)
        argv = [os.path.join(OUT, 'subscribers'), '--conns', str(subscribers),
                '--path', '/sub/bench' if stack == 'geventws'
                else '/socket.io/?EIO=4&transport=websocket',
                '--messages', ','.join(str(count) for _, count in phases),
                '--socketio', '1' if stack == 'socketio' else '0', '--idle', '60']
        for port in ports:
            argv += ['--port', str(port)]
        subs = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        procs.append(subs)
        started = time.monotonic()
        line = subs.stdout.readline()
        if not line.startswith('ready'):
            raise SystemExit('%s: the subscribers did not all subscribe: %r' % (stack, line))
        ready_s = time.monotonic() - started
        time.sleep(1)
        rss_after = sum(rss_kib(s.pid) for s in servers)
        rows = []
        for phase, (rate, count) in enumerate(phases):
            cpu = sum(cpu_seconds(s.pid) for s in servers)
            out = subprocess.run([PYTHON, __file__, 'publish', stack, url, str(rate or 0),
                                  str(count), str(phase)], env=env, capture_output=True,
                                 text=True, timeout=600, check=True)
            timing = json.loads(out.stdout.strip().splitlines()[-1])
            line = subs.stdout.readline()
            if not line.startswith('done %d ' % phase):
                raise SystemExit('%s phase %d: %r' % (stack, phase, line))
            result = json.loads(line.split(' ', 2)[2])
            cpu = sum(cpu_seconds(s.pid) for s in servers) - cpu
            seconds = (result['last_ns'] - timing['start_ns']) / 1e9
            rows.append(dict(result, rate=rate, messages=count,
                             publish_s=(timing['end_ns'] - timing['start_ns']) / 1e9,
                             seconds=seconds, deliveries_per_s=result['deliveries'] / seconds,
                             server_cpu_us_per_delivery=cpu * 1e6 / max(1, result['deliveries'])))
            print('%s %s/s: %s' % (stack, rate or 'max', json.dumps(rows[-1])), flush=True)
        return {'stack': stack, 'subscribers': subscribers, 'ready_s': ready_s,
                'server_kib_per_subscriber': (rss_after - rss_before) / subscribers,
                'phases': rows}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        log.close()


def table(results):
    lines = ['| stack | rate | messages | deliveries/s | p50 ms | p99 ms | max ms | '
             'server CPU us per delivery |', '|---|---|---|---|---|---|---|---|']
    for stack in results:
        for row in stack['phases']:
            lines.append('| %s | %s | %d | %.1fk%s | %.1f | %.1f | %.1f | %.1f |' % (
                stack['stack'], row['rate'] or 'max', row['messages'],
                row['deliveries_per_s'] / 1000,
                '' if row['deliveries'] == row['expected'] else
                ' (%d of %d)' % (row['deliveries'], row['expected']),
                row['p50_us'] / 1000, row['p99_us'] / 1000, row['max_us'] / 1000,
                row['server_cpu_us_per_delivery']))
    for stack in results:
        lines.append('')
        lines.append('%s: %d subscribers subscribed in %.1f s; the servers\' RSS grew %.1f KiB '
                     'per subscriber' % (stack['stack'], stack['subscribers'],
                                         stack['ready_s'], stack['server_kib_per_subscriber']))
    return '\n'.join(lines)


def main():
    if sys.argv[1:2] == ['publish']:
        stack, url, rate, count, phase = sys.argv[2:7]
        return publish(stack, url, int(rate), int(count), int(phase))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--subscribers', type=int, default=10000)
    parser.add_argument('--stacks', default='geventws,socketio')
    parser.add_argument('--quick', action='store_true', help='fewer messages per phase')
    parser.add_argument('--phases', metavar='RATE:COUNT,...',
                        help="the phases instead of %s (rate 0: as fast as it can)"
                        % ','.join('%s:%d' % (rate or 0, count) for rate, count in PHASES))
    parser.add_argument('--json', default=os.path.join(OUT, 's8.json'),
                        help='where the figures go (%(default)s)')
    args = parser.parse_args()
    if not shutil.which('redis-server'):
        raise SystemExit('S8 needs redis-server')
    os.makedirs(OUT, exist_ok=True)
    subprocess.run(['cc', '-O2', '-o', os.path.join(OUT, 'subscribers'),
                    os.path.join(BENCH, 'subscribers.c')], check=True)
    phases = PHASES
    if args.phases:
        phases = [(int(rate) or None, int(count)) for rate, count in
                  (phase.split(':') for phase in args.phases.split(','))]
    if args.quick:
        phases = [(rate, max(3, count // 10)) for rate, count in phases]
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for stack in args.stacks.split(','):
            results.append(run_stack(stack, args.subscribers, phases, directory))
    with open(args.json, 'w') as f:
        json.dump(results, f, indent=1)
    print(table(results))


if __name__ == '__main__':
    main()
