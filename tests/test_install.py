"""``pip install .`` of this source tree into a fresh virtualenv, as a user installs it
(issue 3): where a C compiler is present the speedups are built and in use; where none is,
the install still succeeds, and the package warns once at import and runs on pure Python.

Each run of the suite checks the install its own implementation comes from: the compiled
run installs with the compiler, the pure-Python run with ``CC=/bin/false`` (a machine with
no working compiler). Both install from a copy of the tree's source files, with pip's build
isolation fetching setuptools and Cython from the package index, and run an echo through the
installed package from a directory outside the tree.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import geventws
from helpers import ROOT, require_tool

pytestmark = pytest.mark.network

#: Run by the installed interpreter: imports geventws with every warning recorded, echoes a
#: text message through a server and a client of the installed package, and prints what it saw.
CHECK = textwrap.dedent('''
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        import geventws
    from gevent.pywsgi import WSGIServer

    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        for message in ws:
            ws.send(message)
        return []

    server = WSGIServer(('127.0.0.1', 0), app, handler_class=geventws.WebSocketHandler,
                        log=None)
    server.start()
    try:
        ws = geventws.connect('ws://127.0.0.1:%d/' % server.server_port)
        ws.send('h\\u00e9llo ' * 1000)
        echo = ws.receive()
        ws.close()
    finally:
        server.stop()
    print(json.dumps({'speedups': geventws.speedups_enabled(), 'file': geventws.__file__,
                      'echo_ok': echo == 'h\\u00e9llo ' * 1000,
                      'warnings': [str(w.message) for w in caught]}))
''')


def _source_files():
    """The tree's files as a clone has them (tracked and new, nothing git ignores: no
    build output, no .venv)."""
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others',
                             '--exclude-standard'], cwd=ROOT, stdout=subprocess.PIPE,
                            check=True).stdout
    return [name for name in listed.decode().split('\0')
            if name and os.path.isfile(os.path.join(ROOT, name))]


def _install(tmp_path, **extra_env):
    """Pip-install a copy of the tree into a new virtualenv, with ``extra_env`` added to the
    environment, and return what CHECK printed there."""
    require_tool('git', 'to list the source files')
    tree = tmp_path / 'src'
    for name in _source_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), tree / name)
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    env = dict(os.environ, **extra_env)
    env.pop('GEVENTWS_NO_EXTENSIONS', None)   # the install and the check as a user's
    done = subprocess.run([python, '-m', 'pip', 'install', '--disable-pip-version-check',
                           str(tree)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, done.stdout.decode(errors='replace')[-4000:]
    check = subprocess.run([python, '-c', CHECK], env=env, cwd=str(tmp_path),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert check.returncode == 0, check.stderr.decode(errors='replace')
    return json.loads(check.stdout)


@pytest.mark.timeout(900)
def test_pip_install(tmp_path):
    if geventws.speedups_enabled():   # the compiled run: a machine with a C compiler
        seen = _install(tmp_path)
        assert seen['speedups'] is True
        assert seen['warnings'] == []
    else:   # the pure-Python run: no working compiler
        seen = _install(tmp_path, CC='/bin/false')
        assert seen['speedups'] is False
        assert len(seen['warnings']) == 1, seen['warnings']
        assert 'C compiler' in seen['warnings'][0]
    assert seen['echo_ok']
    assert 'site-packages' in seen['file']   # the installed package, not this tree
