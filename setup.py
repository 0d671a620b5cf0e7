"""Build script: compiles the Cython hot path (ext/) into geventws.protocol._reader,
geventws.io._channel, geventws.io._lock and geventws._framestacks when it can
(geventws/speedups.py says which source is the twin of which).

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


#: The Cython sources, under ext/ in the package's layout; the .pxd files there also type
#: the modules compiled from their Python source (Cython's pure-Python mode).
READER_TYPES = 'ext/geventws/protocol/_reader.pxd'
LOCK_TYPES = 'ext/geventws/io/_lock.pxd'


def extensions():
    if os.environ.get('GEVENTWS_NO_EXTENSIONS'):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write('WARNING: Cython not installed; geventws speedups not built\n')
        return []

    def compiled(name, source, depends=()):
        return Extension(name, [source], depends=list(depends), extra_compile_args=['-O3'])

    return cythonize(
        [compiled('geventws.protocol._reader', 'ext/geventws/protocol/_reader.pyx',
                  [READER_TYPES]),
         compiled('geventws.io._channel', 'ext/geventws/io/_channel.pyx',
                  [READER_TYPES, LOCK_TYPES]),
         # lock.py itself, typed by LOCK_TYPES.
         compiled('geventws.io._lock', 'geventws/io/lock.py', [LOCK_TYPES]),
         compiled('geventws._framestacks', 'ext/geventws/_framestacks.pyx')],
        include_path=['ext'],
        compiler_directives={'language_level': '3', 'boundscheck': False,
                             'wraparound': False, 'cdivision': True},
    )


setup(ext_modules=extensions() if os.path.exists(READER_TYPES) else [],
      cmdclass={'build_ext': OptionalBuildExt})
