"""geventws._framestacks: a finished greenlet's Python frame stack (16 KiB chunks CPython
maps from the system) is kept for the next greenlet instead of being unmapped and mapped
again; everything else still goes to CPython's own allocator.

The cache belongs to the compiled path, so each check runs in a fresh interpreter that uses
it, whichever implementation the rest of this run tests."""
import os
import sys
import textwrap

import pytest

from geventws import speedups
from test_speedups import run_python

FORCED_PURE = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))
#: CPython 3.11 and later give each greenlet a frame stack of its own; before, there is
#: nothing to keep and the cache is not installed.
FRAME_STACKS = sys.version_info >= (3, 11)
needs_frame_stacks = pytest.mark.skipif(not FRAME_STACKS, reason='no per-greenlet frame '
                                        'stacks before CPython 3.11')


def _compiled(code):
    result = run_python('import geventws.handler\n'
                        'from geventws.speedups import _framestacks as cache\n'
                        + textwrap.dedent(code))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_installed_with_the_compiled_path_only():
    assert (speedups._framestacks is None) == (FORCED_PURE or not FRAME_STACKS)
    pure = run_python('import geventws.handler, geventws.speedups as s; '
                      'print(s._framestacks)', GEVENTWS_NO_EXTENSIONS='1')
    assert pure.stdout.split() == ['None'], pure.stderr
    assert _compiled('print(cache is not None)') == [str(FRAME_STACKS)]


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
