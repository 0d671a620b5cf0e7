"""The layers of ../shared/DESIGN.md as the tree has them: the protocol core
(``geventws.protocol``) imports without gevent and without the I/O layer, and importing the
package imports neither gevent nor anything that needs it."""
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import geventws.protocol

#: Run first in each check: from here on, ``import gevent`` (and greenlet) raise ImportError.
NO_GEVENT = textwrap.dedent('''
    import sys
    for name in ('gevent', 'greenlet'):
        sys.modules[name] = None
''')


def run_without_gevent(code):
    result = subprocess.run([sys.executable, '-c', NO_GEVENT + textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def protocol_modules():
    """Every module of ``geventws.protocol``, its compiled ones included when built."""
    path = geventws.protocol.__path__
    return sorted('geventws.protocol.' + module.name
                  for module in pkgutil.iter_modules(path))


def test_the_check_itself_blocks_gevent():
    assert run_without_gevent('''
        try:
            import gevent
        except ImportError:
            print('blocked')
    ''') == ['blocked']


def test_every_module_of_the_protocol_core_imports_without_gevent():
    modules = protocol_modules()
    assert {'geventws.protocol.connection', 'geventws.protocol.frames',
            'geventws.protocol.reader', 'geventws.protocol.handshake',
            'geventws.protocol.hixie', 'geventws.protocol.deflate'} <= set(modules)
    loaded = run_without_gevent('''
        import importlib
        for name in %r:
            importlib.import_module(name)
        print(*sorted(name for name in sys.modules if name.startswith('geventws.io')))
        print('done')
    ''' % (modules,))
    assert loaded == ['done'], 'the core imported the I/O layer: %s' % loaded


def test_the_core_names_of_today_come_from_geventws_protocol():
    assert run_without_gevent('''
        from geventws.protocol import (Connection, HixieConnection, Extension, MessageEvent,
                                       Ping, Pong, CloseReceived, Failure, OPEN, CLOSED)
        conn = Connection(client=True)
        events = conn.receive_data(b'\\x81\\x05hello')
        print(type(events[0]).__name__, events[0].data)
    ''') == ['MessageEvent', 'hello']


def test_importing_the_package_imports_no_gevent():
    assert run_without_gevent('''
        import geventws
        from geventws import ConnectionClosed, MessageEvent, speedups_enabled
        print(set(geventws.__all__) <= set(dir(geventws)))
        try:
            geventws.WebSocketHandler
        except ImportError:
            print('needs-gevent')
    ''') == ['True', 'needs-gevent']


def test_each_compiled_source_has_its_place_in_the_package_layout():
    """ext/ mirrors geventws/: a compiled module's source sits at the same path under ext/
    as the module under the package (geventws/speedups.py lists the twins)."""
    root = Path(__file__).resolve().parent.parent
    for source in (root / 'ext').rglob('*.pyx'):
        package = source.parent.relative_to(root / 'ext')
        assert (root / package / '__init__.py').exists(), source
