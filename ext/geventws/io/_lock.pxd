"""Compiles ``geventws/io/lock.py`` (the one source of ``Lock``) into ``geventws.io._lock``,
in Cython's pure-Python mode: the same code as a C type whose ``with`` and ``locked()`` cost
no Python frame (every message takes the read lock and checks the send lock);
``geventws.io._channel`` cimports it to take and leave the lock from C."""


cdef class Lock:
    cdef bint _held
    cdef readonly object _waiting

    cpdef release(self)
