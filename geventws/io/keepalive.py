"""Keepalive: a ping every ``ping_interval`` seconds, and the connection closed with 1011
("keepalive ping timeout") when neither its pong nor any other data came back within
``ping_timeout`` (RFC 6455 5.5.2: a ping may serve as a keepalive). A peer that died without
a FIN, or stopped reading, is found and its connection freed; ``ws.latency`` is the round
trip of the last ping.

One libev timer per connection, run by the hub, and nothing per message: the reader only
notes that data came (``_heard``). A connection whose reading the app paused (it does not take
its messages) is not failed: the peer is not the one that stopped.

This class holds methods only; its state lives in ``WebSocket``'s slots (declared for the type
checker in ``base.WebSocketBase``).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from ..errors import ConnectionClosed, UnsupportedOperation
from ..protocol.frames import CLOSE_ABNORMAL
from ..speedups import WebSocketBase

#: The close code and reason of a connection that keepalive found dead.
KEEPALIVE_CODE, KEEPALIVE_REASON = 1011, 'keepalive ping timeout'


class Keepalive(WebSocketBase):
    """The keepalive of ``WebSocket`` (see the module docstring)."""

    if not TYPE_CHECKING:   # (its attributes are WebSocket's slots: the checker sees them
        __slots__ = ()      # declared in base.WebSocketBase)

    def _start_keepalive(self) -> None:
        if self.ping_interval is not None and self._conn.can_ping:
            self._arm(self.ping_interval, self._keepalive_ping)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the hub after ``delay`` seconds (replacing what was armed)."""
        self._disarm()
        timer = self._timer = self._hub.loop.timer(max(delay, 0.0))
        timer.start(callback)

    def _disarm(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.stop()
            timer.close()

    def _keepalive_ping(self) -> None:
        if self.ready_state != self.OPEN:
            return
        payload = os.urandom(4)
        try:
            frames = self._conn.send_ping(payload)
        except (ConnectionClosed, UnsupportedOperation):
            return
        self._heard = False
        self._ping_at = self._hub.loop.now()
        self._keepalive_payload = payload
        self._push(frames)
        timeout = self.ping_timeout
        if timeout is None:
            self._arm(self.ping_interval, self._keepalive_ping)  # type: ignore[arg-type]
        else:
            self._arm(timeout, self._keepalive_check)

    def _keepalive_check(self) -> None:
        """``ping_timeout`` after a ping: alive if anything came since."""
        if self._over:
            return
        if self._heard or self._paused:
            interval = self.ping_interval
            self._arm(self._ping_at + interval - self._hub.loop.now(),  # type: ignore[operator]
                      self._keepalive_ping)
            return
        self._timer = None
        self._fail_now(KEEPALIVE_CODE, KEEPALIVE_REASON)

    def _fail_now(self, code: int, reason: str) -> None:
        """Close with ``code`` without waiting for the peer: our close frame if the kernel
        takes it now, then TCP is dropped (the app sees 1006 and ``reason``)."""
        try:
            frames = self._conn.send_close(code, reason)
        except ConnectionClosed:
            pass
        else:
            self._push(frames)
        self._terminate(CLOSE_ABNORMAL, reason, False)

    def _pong_received(self, payload: bytes) -> None:
        """A pong: the answer to keepalive's ping or to ``ping()``'s."""
        if payload == self._keepalive_payload:
            self._keepalive_payload = None
            self.latency = self._hub.loop.now() - self._ping_at
        pings = self._pings
        if pings and payload in pings:
            sent_at, waiters = pings.pop(payload)
            self.latency = self._hub.loop.now() - sent_at
            for waiter in waiters:
                waiter.set()
