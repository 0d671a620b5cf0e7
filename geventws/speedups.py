"""The one place that chooses between the compiled modules and their pure-Python twins;
everything else imports the chosen names from here.

==============================================  =============================================
compiled module (its source)                    pure-Python twin
==============================================  =============================================
``geventws.protocol._reader``                   ``protocol/reader.py`` (``MessageReader``) and
(``ext/geventws/protocol/_reader.pyx``)         ``protocol/frames.py`` (``mask``, ``frame``)
``geventws.io._lock`` (``io/lock.py`` itself,   ``io/lock.py``
typed by ``ext/geventws/io/_lock.pxd``)
``geventws.io._channel``                        ``io/base.py`` (``WebSocketBase``); for
(``ext/geventws/io/_channel.pyx``)              ``Channel``, None: ``io/sockio.py`` does its work
``geventws._framestacks``                       none: installed only on request
(``ext/geventws/_framestacks.pyx``)             (``recycle_frame_stacks``)
==============================================  =============================================

``GEVENTWS_NO_EXTENSIONS=1`` forces the twins (CI runs the whole suite both ways). When the
extensions were not built, one warning says so and everything still works.

The protocol core's names are chosen when this module is imported. The I/O layer's are
chosen when the I/O layer first asks for them (``__getattr__``): they need gevent, and the
core imports this module where gevent may not be installed.
"""
import importlib
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Optional

from .protocol import frames, reader

#: True when ``GEVENTWS_NO_EXTENSIONS`` asks for the pure-Python twins.
NO_EXTENSIONS = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))


def _compiled(name: str) -> Optional[Any]:
    """Compiled module ``name``, or None when it was not built. (``import_module``, not
    ``from . import``: while the package is still importing, the latter reports a missing
    module as a circular import.)"""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_reader: Optional[Any] = None
if not NO_EXTENSIONS:
    try:
        _reader = importlib.import_module('geventws.protocol._reader')
    except ImportError as exc:  # installed without a C compiler, or not built at all
        warnings.warn('geventws: the compiled speedups are not available (%s), so the '
                      'slower pure-Python implementation is used. Reinstall geventws where '
                      'a C compiler is present to build them, or set '
                      'GEVENTWS_NO_EXTENSIONS=1 to choose pure Python and silence this '
                      'warning.' % exc, RuntimeWarning, stacklevel=2)

if TYPE_CHECKING or _reader is None:
    MessageReader = reader.MessageReader
    mask = frames.mask
    frame = frames.frame
else:
    MessageReader = _reader.MessageReader
    mask = _reader.mask
    frame = _reader.frame

if TYPE_CHECKING:
    from .io.base import WebSocketBase
    from .io.lock import Lock
    Channel: Any


def __getattr__(name: str) -> Any:
    """The I/O layer's twins, chosen on first use: ``Lock``, ``WebSocketBase`` and
    ``Channel`` (None where ``geventws.io.sockio`` does the work)."""
    if name not in ('Lock', 'WebSocketBase', 'Channel'):
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    from .io import base, lock
    channel = lock_c = None
    if _reader is not None:
        channel = _compiled('geventws.io._channel')   # POSIX only
        lock_c = _compiled('geventws.io._lock')
    chosen = globals()
    chosen['Lock'] = lock.Lock if lock_c is None else lock_c.Lock
    chosen['WebSocketBase'] = base.WebSocketBase if channel is None else channel.WebSocketBase
    chosen['Channel'] = None if channel is None else channel.Channel
    return chosen[name]


def recycle_frame_stacks() -> bool:
    """Keep the Python frame stacks of finished greenlets for the next ones: a server that
    runs a greenlet per connection then maps and unmaps no memory per connection (bench/
    RESULTS.md, "Frame stacks"). Process-wide (it puts a cache in front of CPython's arena
    allocator), so a library never does it on import: ``geventws serve`` and the gunicorn
    worker call it at start-up, and a standalone server may. Returns whether it is in use:
    it needs the compiled path and CPython 3.11 or later (before 3.11, greenlets have no
    frame stacks of their own); elsewhere nothing changes."""
    if _reader is None or sys.version_info < (3, 11):
        return False
    framestacks = _compiled('geventws._framestacks')
    if framestacks is None:
        return False
    framestacks.recycle()
    return True


def speedups_enabled() -> bool:
    """True when the compiled hot path is the one in use."""
    return _reader is not None
