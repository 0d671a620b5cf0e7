"""Chooses the hot path: the compiled ``geventws._speedups`` (the parser and framing),
``geventws._channel`` (the I/O of plain TCP connections), ``geventws._lock`` (lock.py
compiled) and ``geventws._framestacks`` (frame stacks kept for the next greenlets), or their
pure-Python twins (for the last: nothing).

``GEVENTWS_NO_EXTENSIONS=1`` forces the pure-Python twin (CI runs the whole suite both ways).
When the extension was not built, one warning says so at import and everything still works.
"""
import importlib
import os
import sys
import warnings

from . import frames, lock, reader

def _optional(name):
    """Module ``name``, or None when it was not built."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_forced_pure = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))
_compiled = _channel = _lock = _framestacks = None
if not _forced_pure:
    try:
        # import_module, not ``from . import``: while the package is still importing, the
        # latter reports a missing module as a circular import.
        _compiled = importlib.import_module('geventws._speedups')
    except ImportError as exc:  # installed without a C compiler, or not built at all
        warnings.warn('geventws: the compiled speedups are not available (%s), so the '
                      'slower pure-Python implementation is used. Reinstall geventws where '
                      'a C compiler is present to build them, or set '
                      'GEVENTWS_NO_EXTENSIONS=1 to choose pure Python and silence this '
                      'warning.' % exc, RuntimeWarning, stacklevel=2)
    else:
        # Built with it; _channel on POSIX only (elsewhere the I/O stays Python).
        _channel = _optional('geventws._channel')
        _lock = _optional('geventws._lock')
        # Greenlets get Python frame stacks of their own from CPython 3.11 on; before, their
        # frames are heap objects and there is nothing to keep.
        if sys.version_info >= (3, 11):
            _framestacks = _optional('geventws._framestacks')

if _compiled is not None:
    MessageReader = _compiled.MessageReader
    mask = _compiled.mask
    frame = _compiled.frame
else:
    MessageReader = reader.MessageReader
    mask = frames.mask
    frame = frames.frame

Channel = None if _channel is None else _channel.Channel   # None: geventws.sockio's path
#: WebSocket's receive(), send() and run_forever() for the common case, compiled (None:
#: Python only).
hot_path = None if _channel is None else _channel.hot_path
#: The base of WebSocket whose attributes the compiled hot path reads (None: Python only).
WebSocketState = None if _channel is None else _channel.WebSocketState
Lock = lock.Lock if _lock is None else _lock.Lock


def recycle_frame_stacks():
    """Keep the Python frame stacks of finished greenlets for the next ones, when the
    compiled path is in use on CPython 3.11 or later (geventws._framestacks); else nothing
    changes."""
    if _framestacks is not None:
        _framestacks.recycle()


def speedups_enabled():
    """True when the compiled hot path is the one in use."""
    return _compiled is not None
