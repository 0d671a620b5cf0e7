"""Chooses the hot path: the compiled ``geventws._speedups`` or its pure-Python twin.

``GEVENTWS_NO_EXTENSIONS=1`` forces the pure-Python twin (CI runs the whole suite both ways).
When the extension was not built, one warning says so at import and everything still works.
"""
import os
import warnings

from . import frames, reader

_forced_pure = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))
_compiled = None
if not _forced_pure:
    try:
        from . import _speedups as _compiled
    except ImportError as exc:  # built without a compiler, or not built at all
        warnings.warn('geventws: compiled speedups unavailable (%s); using pure Python' % exc,
                      RuntimeWarning, stacklevel=2)

if _compiled is not None:
    MessageReader = _compiled.MessageReader
    mask = _compiled.mask
else:
    MessageReader = reader.MessageReader
    mask = frames.mask


def speedups_enabled():
    """True when the compiled hot path is the one in use."""
    return _compiled is not None
