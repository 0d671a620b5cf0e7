"""The Autobahn Testsuite, the reference conformance suite of RFC 6455 and RFC 7692, run for
real in both directions: its fuzzing client against a geventws server (default options,
echoing), and its fuzzing server against the geventws client (echoing), in whichever
implementation this run of the suite is about (compiled, or ``GEVENTWS_NO_EXTENSIONS=1``).
Every case must end OK or INFORMATIONAL, both in behaviour and in closing: no NON-STRICT,
UNIMPLEMENTED or FAILED case ("Autobahn-strict").

autobahntestsuite 0.8.2 runs on Python 2.7; ``make test`` installs it into .venv/autobahn
(tests/autobahn-requirements.txt). Cases 1-10 all run. The permessage-deflate cases (12.*
and 13.*) take about a quarter of an hour together, most of it the suite's own Python 2, so
a sample of them runs: the first two of each group (its smallest messages), which covers
every kind of compressible payload of 12 and every parameter set of 13 (context takeover,
window bits, the client's and the server's options). ``GEVENTWS_AUTOBAHN_ALL=1`` runs
every case.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from geventws import ConnectionClosed, connect
from helpers import echo_app, free_port, require_tool

pytestmark = pytest.mark.autobahn
AUTOBAHN = Path(__file__).resolve().parent.parent / '.venv' / 'autobahn'
AGENT = 'geventws'
#: Cases 1-10, and the first two cases (the smallest messages) of each group of 12 and 13.
CASES = ['1.*', '2.*', '3.*', '4.*', '5.*', '6.*', '7.*', '9.*', '10.*'] + [
    '%s.%d' % (group, case) for group in ('12.1', '12.2', '12.3', '12.4', '12.5', '13.1',
                                          '13.2', '13.3', '13.4', '13.5', '13.6', '13.7')
    for case in (1, 2)]
#: How many cases CASES names in this version of the suite: a run that skipped some (a
#: spec it misread, a case it could not start) must not pass.
CASE_COUNT = 301 + 24
TIMEOUT = 900
if os.environ.get('GEVENTWS_AUTOBAHN_ALL'):   # every case: about 15 minutes each way
    CASES, CASE_COUNT, TIMEOUT = ['*'], 301 + 216, 3600


def _wstest(mode, spec, workdir):
    """The command and environment that run ``wstest -m MODE`` with ``spec`` (a dict)."""
    python = require_tool(str(AUTOBAHN / 'python'),
                          'Python 2.7 with the Autobahn Testsuite: make test installs it')
    spec_path = workdir / ('%s.json' % mode)
    spec_path.write_text(json.dumps(spec))
    env = {key: value for key, value in os.environ.items() if not key.startswith('PYTHON')}
    env['PYTHONPATH'] = str(AUTOBAHN)
    command = [python, '-c', 'from autobahntestsuite.wstest import run; run()',
               '-m', mode, '-s', str(spec_path),
               '--webport', '0']   # no report browser on port 8080
    return command, env


def _verdicts(reports):
    """{case: (behaviour, closing behaviour)} of the one agent in ``reports``' index."""
    index = json.loads((reports / 'index.json').read_text())
    assert list(index) == [AGENT]
    return {case: (result['behavior'], result['behaviorClose'])
            for case, result in index[AGENT].items()}


def _assert_strict(verdicts):
    assert len(verdicts) == CASE_COUNT
    passed = ('OK', 'INFORMATIONAL')
    failed = {case: verdict for case, verdict in verdicts.items()
              if verdict[0] not in passed or verdict[1] not in passed}
    assert not failed, 'cases not OK (see the reports for each): %s' % failed


@pytest.mark.timeout(TIMEOUT + 60)   # the whole suite's limit is for one quick test
def test_fuzzing_client_against_the_server(serve, tmp_path):
    server = serve(echo_app)
    command, env = _wstest('fuzzingclient', {
        'outdir': str(tmp_path / 'reports'), 'cases': CASES, 'exclude-cases': [],
        'exclude-agent-cases': {},
        'servers': [{'agent': AGENT, 'url': 'ws://127.0.0.1:%d' % server.port}]}, tmp_path)
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    _assert_strict(_verdicts(tmp_path / 'reports'))


def _echo_case(url):
    """Echo every message of one case, as the suite asks of a client under test. A send
    that meets the closing handshake ends the case like the server's close does."""
    ws = connect(url)
    try:
        for message in ws:
            ws.send(message)
    except ConnectionClosed:
        pass


@pytest.mark.timeout(TIMEOUT + 60)
def test_fuzzing_server_against_the_client(programs, tmp_path):
    port = free_port()
    base = 'ws://127.0.0.1:%d' % port
    command, env = _wstest('fuzzingserver', {
        'url': base, 'outdir': str(tmp_path / 'reports'), 'cases': CASES,
        'exclude-cases': [], 'exclude-agent-cases': {}}, tmp_path)
    programs(command, port, cwd=tmp_path, env=env)   # waits for its port; always stopped
    ws = connect(base + '/getCaseCount')
    count = int(ws.receive())
    ws.close()
    assert count == CASE_COUNT
    for case in range(1, count + 1):
        _echo_case('%s/runCase?case=%d&agent=%s' % (base, case, AGENT))
    ws = connect('%s/updateReports?agent=%s' % (base, AGENT))
    assert ws.receive() is None   # the server closes once the reports are written
    _assert_strict(_verdicts(tmp_path / 'reports'))
