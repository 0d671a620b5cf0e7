"""geventws.io.lock.Lock: one greenlet inside at a time, nothing allocated while uncontended, and
nothing left behind by waiters that give up."""
import gevent
import pytest

import geventws
from geventws.io import lock as lock_py
from geventws.speedups import Lock   # lock.py compiled (geventws.io._lock) in the compiled run


def test_the_compiled_run_uses_lock_py_compiled_as_a_c_type():
    if not geventws.speedups_enabled():
        assert Lock is lock_py.Lock
        return
    assert Lock.__module__ == 'geventws.io._lock'
    with pytest.raises(AttributeError):
        Lock()._held   # a C field (ext/geventws/_lock.pxd), not a Python slot


def test_uncontended_use_allocates_no_semaphore():
    lock = Lock()
    assert not lock.locked()
    with lock:
        assert lock.locked()
        assert lock._waiting is None
    assert not lock.locked()


def test_one_greenlet_inside_at_a_time_in_arrival_order():
    lock = Lock()
    inside, order = [], []

    def worker(name):
        with lock:
            inside.append(name)
            assert len(inside) == 1, inside
            order.append(name)
            gevent.sleep(0.01)   # hold it across a switch: the others must wait
            inside.remove(name)

    workers = [gevent.spawn(worker, name) for name in 'abcde']
    gevent.joinall(workers, timeout=5, raise_error=True)
    assert order == list('abcde')
    assert not lock.locked() and lock._waiting is None


def test_a_waiter_that_times_out_leaves_the_lock_usable():
    lock = Lock()
    with lock:
        with pytest.raises(gevent.Timeout):
            gevent.spawn(_take, lock, 0.01).get(timeout=5)
    assert not lock.locked()
    _take(lock, 1)
    assert not lock.locked() and lock._waiting is None


def test_a_waiter_killed_as_the_lock_is_handed_to_it_leaves_it_usable():
    lock = Lock()
    lock.__enter__()
    waiter = gevent.spawn(_take, lock, 5)
    gevent.sleep(0)              # it waits
    lock.__exit__(None, None, None)   # handed over ...
    waiter.kill(block=False)     # ... and the waiter killed before or after it ran
    waiter.join(5)
    assert waiter.dead
    _take(lock, 1)               # whoever ends up with the hand-over, the lock is free
    assert not lock.locked()


def _take(lock, timeout):
    with gevent.Timeout(timeout):
        with lock:
            pass


def test_a_release_with_a_waiter_hands_the_lock_over():
    """Between the release and the waiter running, the lock is the waiter's: a newcomer
    finds it locked and waits its turn instead of slipping in."""
    lock = Lock()
    inside = []

    def worker(name):
        with lock:
            inside.append(name)
            assert len(inside) == 1, inside
            gevent.sleep(0)
            inside.remove(name)

    lock.__enter__()
    waiter = gevent.spawn(worker, 'waiter')
    gevent.sleep(0)
    lock.__exit__(None, None, None)
    assert lock.locked()
    newcomer = gevent.spawn(worker, 'newcomer')
    gevent.joinall([waiter, newcomer], timeout=5, raise_error=True)
    assert not lock.locked() and lock._waiting is None
