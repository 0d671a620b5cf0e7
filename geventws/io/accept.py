"""A gevent server that runs out of file descriptors quietly.

When ``accept()`` fails with EMFILE or ENFILE, gevent's server logs a full traceback and tries
again, up to a hundred times a second at first: a flood of silent connections (a slowloris)
fills the log while it lasts. ``QuietAccept`` pauses accepting instead, for
``ACCEPT_PAUSE`` seconds at a time, and says so in one line at most once a minute; the new
connections wait in the kernel's listen backlog until a connection ends and frees a descriptor
(``handshake_timeout`` ends the silent ones).
"""
from __future__ import annotations

import errno
import sys
import time
from typing import Any

#: Seconds accepting pauses after running out of file descriptors.
ACCEPT_PAUSE = 0.1
#: Seconds between two log lines about it.
REPORT_EVERY = 60.0

_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class QuietAccept:
    """Mixed in before a ``gevent.server.StreamServer`` class (``pywsgi.WSGIServer``)."""

    _reported_at = -REPORT_EVERY
    # (gevent's server's)
    _timer: Any
    loop: Any

    def do_read(self) -> Any:
        try:
            return super().do_read()  # type: ignore[misc]
        except OSError as exc:
            if exc.errno not in _OUT_OF_DESCRIPTORS:
                raise
            self._pause_accepting(exc)
            return None   # (gevent's server: nothing accepted this time)

    def _pause_accepting(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._reported_at >= REPORT_EVERY:
            self._reported_at = now
            sys.stderr.write('%s: %s; new connections wait until one ends\n'
                             % (self, exc.strerror))
        self.stop_accepting()   # type: ignore[attr-defined]
        self._timer = self.loop.timer(ACCEPT_PAUSE)
        self._timer.start(self._start_accepting_if_started)  # type: ignore[attr-defined]
