"""Chooses the hot path: the compiled ``geventws._speedups`` (the parser and framing) and
``geventws._channel`` (the I/O of plain TCP connections, and the locks), or their pure-Python
twins.

``GEVENTWS_NO_EXTENSIONS=1`` forces the pure-Python twin (CI runs the whole suite both ways).
When the extension was not built, one warning says so at import and everything still works.
"""
import importlib
import os
import warnings

from . import frames, lock, reader

_forced_pure = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))
_compiled = _channel = None
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
        try:   # POSIX sockets only: elsewhere the parser is compiled, the I/O is Python
            _channel = importlib.import_module('geventws._channel')
        except ImportError:
            pass

if _compiled is not None:
    MessageReader = _compiled.MessageReader
    mask = _compiled.mask
    frame = _compiled.frame
else:
    MessageReader = reader.MessageReader
    mask = frames.mask
    frame = frames.frame

if _channel is not None:
    Channel = _channel.Channel
    Lock = _channel.Lock
else:
    Channel = None   # the I/O layer's Python path does its work (geventws.sockio)
    Lock = lock.Lock


def speedups_enabled():
    """True when the compiled hot path is the one in use."""
    return _compiled is not None
