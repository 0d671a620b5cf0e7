"""Build script: compiles the Cython hot path in ext/ into geventws._speedups,
geventws._channel, geventws._framestacks and geventws._lock when it can.

A machine without a C compiler (or without Cython) still gets a working, pure-Python install:
the build failure is reported once and the package falls back to its pure-Python twin.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Compile the speedups if possible; never fail the install because of them."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, Cython missing, ...
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        sys.stderr.write('WARNING: geventws speedups not built (%s); using pure Python\n' % exc)


#: What ``_channel`` cimports from ``_speedups``, found by its module name under ext/.
SHARED = 'ext/geventws/_speedups.pxd'
#: The C types of the compiled ``geventws/lock.py``.
LOCK_TYPES = 'ext/geventws/_lock.pxd'


def extensions():
    if os.environ.get('GEVENTWS_NO_EXTENSIONS'):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write('WARNING: Cython not installed; geventws speedups not built\n')
        return []
    return cythonize(
        [Extension('geventws._speedups', ['ext/_speedups.pyx'], depends=[SHARED],
                   extra_compile_args=['-O3']),
         Extension('geventws._channel', ['ext/_channel.pyx'], depends=[SHARED],
                   extra_compile_args=['-O3']),
         Extension('geventws._framestacks', ['ext/_framestacks.pyx'],
                   extra_compile_args=['-O3']),
         # lock.py itself, typed by ext/geventws/_lock.pxd (Cython's pure-Python mode).
         Extension('geventws._lock', ['geventws/lock.py'], depends=[LOCK_TYPES],
                   extra_compile_args=['-O3'])],
        include_path=['ext'],
        compiler_directives={'language_level': '3', 'boundscheck': False,
                             'wraparound': False, 'cdivision': True},
    )


setup(ext_modules=extensions() if os.path.exists('ext/_speedups.pyx') else [],
      cmdclass={'build_ext': OptionalBuildExt})
