"""Where CPU-heavy protocol work runs: zlib on large messages, off the event loop's thread.

zlib releases the GIL while it (de)compresses, so the hub's threadpool lets the loop serve
the other connections meanwhile. But threads that inflate compete with the loop's thread for
the cores, so at most ``OFFLOAD_THREADS`` pieces of work run at once per hub (one core stays
the loop's); the others wait their turn in their own greenlets, and the memory inflating at
once is bounded as well (bench/RESULTS.md, "Measurements behind the code").
"""
from __future__ import annotations

import os
import weakref
from typing import Any, Callable, TypeVar

import gevent
from gevent.lock import Semaphore

#: Pieces of work run at once per hub: the cores but one, and at least one.
OFFLOAD_THREADS = max(1, (os.cpu_count() or 2) - 1)

_T = TypeVar('_T')
_turns: weakref.WeakKeyDictionary[Any, Semaphore] = weakref.WeakKeyDictionary()


def off_the_hub(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)`` in the hub's threadpool, when a turn is free. What it raises (a peer's
    corrupt or oversized message) is raised here, not in the threadpool, which would print
    the traceback of each as if the server had failed."""
    hub = gevent.get_hub()
    turns = _turns.get(hub)
    if turns is None:
        turns = _turns[hub] = Semaphore(OFFLOAD_THREADS)
    with turns:
        raised, result = hub.threadpool.apply(_outcome, (func, args))
    if raised:
        raise result
    return result


def _outcome(func: Callable[..., object], args: tuple[Any, ...]) -> tuple[bool, Any]:
    try:
        return False, func(*args)
    except Exception as exc:
        return True, exc
