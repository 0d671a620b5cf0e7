"""bench/s8.py (one channel through Redis to subscribers on two server processes) in a smoke
run: 50 subscribers, a few messages per phase, geventws' stack, so that it cannot rot. The
figures of the real run are in bench/RESULTS.md."""
import json
import subprocess

import pytest

from helpers import PYTHON, ROOT, python_env, require_tool

pytestmark = pytest.mark.redis


def test_pubsub_benchmark_smoke(tmp_path):
    require_tool('redis-server', 'the benchmark runs on Redis')
    require_tool('cc', 'the benchmark compiles its subscribers')
    figures = tmp_path / 's8.json'
    run = subprocess.run([PYTHON, 'bench/s8.py', '--subscribers', '50', '--quick',
                          '--stacks', 'geventws', '--json', str(figures)], cwd=ROOT,
                         env=python_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout.split('| stack', 1)[-1])
    [stack] = json.loads(figures.read_text())
    assert len(stack['phases']) == 5
    for phase in stack['phases']:
        assert phase['deliveries'] == phase['expected'] > 0
        assert 0 < phase['p50_us'] <= phase['p99_us']
