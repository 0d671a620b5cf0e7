"""The benchmark harness (bench/) in a smoke run, so it cannot rot unnoticed: every scenario
against one geventws server for a fraction of a second, and the load generator's echo checks
against servers that answer wrongly. No timing is asserted; speed is bench/RESULTS.md's job."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import require_tool

BENCH = Path(__file__).resolve().parent.parent / 'bench'
sys.path.insert(0, str(BENCH))
import run  # noqa: E402  (bench/run.py)


@pytest.fixture(scope='module')
def loadgen():
    require_tool('cc', 'compiles the load generator and the C echo server')
    require_tool('taskset', 'pins the servers and the load generator')
    run.build_tools()
    return str(run.LOADGEN)


def test_quick_run_of_every_scenario(loadgen, tmp_path):
    # The row of the implementation this test run is about.
    server = 'geventws-pure' if os.environ.get('GEVENTWS_NO_EXTENSIONS') else 'geventws'
    proc = subprocess.run(
        [sys.executable, str(BENCH / 'run.py'), '--quick', '--servers', server + ',c-echo',
         '--scenarios', 'S1,S2,S3,S4,S5,S6,micro', '--warmup', '0.1', '--duration', '0.2',
         '--repeat', '2', '--output', str(tmp_path / 'smoke.md')],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for heading in ('### S1 ', '### S2 ', '### S3 ', '### S4 500 idle', '### S5 ',
                    '### S6 one broadcast of a 32-byte text message to 500 open',
                    '### Masking and UTF-8', '### Targets'):
        assert heading in out
    assert 'failed' not in out
    assert ('pure Python' if server == 'geventws-pure' else 'compiled |') in out
    assert out.count("| minimal C echo (the harness's limit) |") == 3     # S1, S2, S3
    assert 'The load generator used at most' in out
    assert (tmp_path / 'smoke.md').read_text() in out
    results = json.loads((tmp_path / 'smoke.json').read_text())['results']
    assert len(results['S1'][server]['rounds']) == 2
    assert 'rounds' not in results['S4'][server]      # memory is measured once
    assert results['S6'][server]['connections'] == 500 and results['S6'][server]['rate'] > 0


def test_browser_like_offer_negotiates_and_compresses(loadgen, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / 'run.py'), '--quick', '--servers', 'geventws-deflate',
         '--scenarios', 'S4,S5', '--warmup', '0.1', '--duration', '0.2',
         '--output', str(tmp_path / 'smoke.md')],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'failed' not in proc.stdout
    # S4's 128-byte echoes are compressed; S5's 32-byte ones are below geventws' threshold.
    assert proc.stdout.count('came back compressed') == 1


def _run_loadgen(loadgen, port, *args):
    return subprocess.run([loadgen, '--port', str(port), '--warmup', '0.05', '--duration', '0.2']
                          + list(args), capture_output=True, text=True, timeout=60)


def _echo_with(change):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        for message in ws:
            for reply in change(message):
                ws.send(reply)
        return []
    return app


@pytest.mark.parametrize('change, complaint', [
    (lambda m: [m], None),
    (lambda m: [m[:-1] + 'x'], 'differs'),
    (lambda m: [m[:-1]], 'shorter'),
    (lambda m: [m + 'x'], 'longer'),
    (lambda m: [m, m], 'nobody sent|differs'),
    (lambda m: [m.encode()], 'opcode'),
], ids=['faithful', 'corrupted', 'truncated', 'extended', 'doubled', 'binary-for-text'])
def test_loadgen_rejects_a_wrong_echo(loadgen, serve, change, complaint):
    server = serve(_echo_with(change))
    proc = _run_loadgen(loadgen, server.port, '--mode', 'echo', '--conns', '2',
                        '--inflight', '3', '--size', '32')
    if complaint is None:
        assert proc.returncode == 0, proc.stderr
        assert '"verified"' in proc.stdout
    else:
        assert proc.returncode == 2, proc.stdout
        assert re.search(complaint, proc.stderr)


def test_loadgen_rejects_a_declined_offer(loadgen, serve):
    from geventws import WebSocketHandler
    server = serve(_echo_with(lambda m: [m]), WebSocketHandler.configure(compression=None))
    proc = _run_loadgen(loadgen, server.port, '--mode', 'churn', '--conns', '1', '--deflate')
    assert proc.returncode == 2, proc.stdout
    assert 'declined permessage-deflate' in proc.stderr


def test_memory_breakdown_of_idle_connections(loadgen):
    proc = subprocess.run([sys.executable, str(BENCH / 'memory.py'), '--conns', '50'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '50 idle connections' in proc.stdout
    assert 'geventws/' in proc.stdout    # our own allocations are among those listed


def test_bytecodes_per_connection(loadgen):
    proc = subprocess.run([sys.executable, str(BENCH / 'bytecodes.py'), '--duration', '0.3',
                           '--top', '40'], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.match(r'(\d+) connections \((compiled|pure-Python) path\): (\d+) bytecodes',
                     proc.stdout)
    assert found, proc.stdout
    connections, path, bytecodes = found.groups()
    assert int(connections) > 0 and int(bytecodes) > 0
    assert path == ('pure-Python' if os.environ.get('GEVENTWS_NO_EXTENSIONS') else 'compiled')
    # The connections' code is counted, and this script's waiting is not.
    assert 'geventws/io/handler.py' in proc.stdout and 'plain_upgrade_head' in proc.stdout
    assert 'bytecodes.py' not in proc.stdout
