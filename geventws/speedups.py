"""Chooses the hot path: the compiled ``geventws._speedups`` or its pure-Python twin.

``GEVENTWS_NO_EXTENSIONS=1`` forces the pure-Python twin (CI runs the whole suite both ways).
When the extension was not built, one warning says so at import and everything still works.
"""
import importlib
import os
import warnings

from . import frames, reader

_forced_pure = bool(os.environ.get('GEVENTWS_NO_EXTENSIONS'))
_compiled = None
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

if _compiled is not None:
    MessageReader = _compiled.MessageReader
    mask = _compiled.mask
    frame = _compiled.frame
else:
    MessageReader = reader.MessageReader
    mask = frames.mask
    frame = frames.frame


def speedups_enabled():
    """True when the compiled hot path is the one in use."""
    return _compiled is not None
