"""geventws._framestacks: a finished greenlet's Python frame stack (16 KiB chunks CPython
maps from the system) is kept for the next greenlet instead of being unmapped and mapped
again; everything else still goes to CPython's own allocator.

The cache belongs to the compiled path, so each check runs in a fresh interpreter that uses
it, whichever implementation the rest of this run tests. That our servers install it
(``geventws serve``, the gunicorn worker) is checked where they run: test_deploy_serve.py and
test_deploy_gunicorn.py ask the test app's /framestacks page (apps/common.py)."""
import textwrap

import pytest

import geventws
from helpers import FORCED_PURE, FRAME_STACKS, run_python

needs_frame_stacks = pytest.mark.skipif(not FRAME_STACKS, reason='no per-greenlet frame '
                                        'stacks before CPython 3.11')


def _compiled(code):
    result = run_python('import geventws\n'
                        'from geventws import _framestacks as cache\n'
                        'assert geventws.recycle_frame_stacks()\n'
                        + textwrap.dedent(code))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


#: The arena allocator's functions as a process sees them: changed once the cache is in.
ALLOCATOR = ('import ctypes\n'
             'class Allocator(ctypes.Structure):\n'
             '    _fields_ = [("ctx", ctypes.c_void_p), ("alloc", ctypes.c_void_p),\n'
             '                ("free", ctypes.c_void_p)]\n'
             'def allocator():\n'
             '    found = Allocator()\n'
             '    ctypes.pythonapi.PyObject_GetArenaAllocator(ctypes.byref(found))\n'
             '    return found.alloc, found.free\n'
             'before = allocator()\n')


def test_importing_and_using_geventws_leaves_the_allocator_alone(echo_server):
    """A library changes nothing in the interpreter on import: the handler, the client and
    a whole connection through them leave CPython's arena allocator as it was; only an
    explicit call (or a server of ours) installs the cache."""
    result = run_python(ALLOCATOR + textwrap.dedent('''
        import geventws
        from geventws import WebSocketHandler, WebSocketClient, connect
        ws = connect(%r)
        ws.send('hello')
        assert ws.receive() == 'hello'
        ws.close()
        untouched = allocator() == before
        installed = geventws.recycle_frame_stacks()
        print(untouched, installed, (allocator() != before) == installed)
    ''' % echo_server.url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['True', str(FRAME_STACKS), 'True']


def test_installed_with_the_compiled_path_only():
    assert geventws.recycle_frame_stacks() is (not FORCED_PURE and FRAME_STACKS)
    pure = run_python('import geventws; print(geventws.recycle_frame_stacks())',
                      GEVENTWS_NO_EXTENSIONS='1')
    assert pure.stdout.split() == ['False'], pure.stderr


@needs_frame_stacks
def test_a_finished_greenlets_stack_is_kept_and_reused():
    assert _compiled('''
        import greenlet
        greenlet.greenlet(lambda: None).switch()
        before = cache.kept()
        holding = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch())
        holding.switch()   # alive and parked: its stack is in use
        during = cache.kept()
        holding.throw(greenlet.GreenletExit)
        print(before >= 1, during == before - 1, cache.kept() == before)
    ''') == ['True', 'True', 'True']


@needs_frame_stacks
def test_many_greenlets_threads_and_deep_stacks():
    """Stacks of one chunk and of many, freed and taken again from several threads at
    once, all compute right, and the cache stays within its bound."""
    assert _compiled('''
        import threading, gevent

        def deep(depth):
            return 0 if depth == 0 else 1 + deep(depth - 1)

        results = []

        def work():
            jobs = [gevent.spawn(deep, depth) for depth in (1, 50, 900, 10) * 50]
            gevent.joinall(jobs)
            results.append(sum(job.value for job in jobs))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        print(results == [50 * (1 + 50 + 900 + 10)] * 4, 0 < cache.kept() <= 64)
    ''') == ['True', 'True']
