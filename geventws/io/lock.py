"""``Lock``: a mutex for greenlets that costs two slots until greenlets contend for it.

Every open WebSocket has two locks (reading, sending), and nearly always only one greenlet
uses each, so a gevent ``Semaphore`` per lock would cost memory per idle connection whether
or not anybody ever waits (bench/RESULTS.md, "Measurements behind the code"). This lock is a
flag while uncontended; a ``Semaphore`` exists only while greenlets wait for it, and is
dropped by the release that finds nobody waiting. With the speedups built, this same source
is also compiled as ``geventws.io._lock`` (typed by ``ext/geventws/io/_lock.pxd``), and that
is the one in use.
"""
from gevent.lock import Semaphore


class Lock:
    """``with lock:`` for the greenlets of one hub (those that may use the socket it
    guards); ``locked()`` as gevent's ``Semaphore``."""

    __slots__ = ('_held', '_waiting')

    def __init__(self) -> None:
        self._held = False
        self._waiting: Semaphore | None = None   # a Semaphore(0) while greenlets wait for it

    def locked(self) -> bool:
        return self._held

    def __enter__(self) -> None:
        if not self._held:
            self._held = True
            return
        if self._waiting is None:
            self._waiting = Semaphore(0)
        # Handed over by a release (the lock stays held), or taken from a hand-over that a
        # waiter killed meanwhile never used. A kill or timeout here leaves nothing behind.
        self._waiting.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        """Leave the lock: hand it to the next waiter, or free it. (The compiled
        ``receive()`` and ``send()`` take a free lock by setting ``_held`` and call this.)"""
        waiting = self._waiting
        if waiting is not None and waiting.linkcount():
            waiting.release()   # to the next waiter; the lock stays held
            return
        self._held = False
        self._waiting = None
