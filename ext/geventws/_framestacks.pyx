# cython: language_level=3
"""Keeps the Python frame stacks of finished greenlets for the next ones.

CPython (3.11 and later) runs a thread's Python frames on a data stack made of chunks of 16
KiB, which it maps from the system (``mmap``) when a stack needs one and unmaps when it is
done with it. Each greenlet has a stack of its own, so with one greenlet per connection every
connection maps a chunk, faults its pages in as its first frames touch them, and unmaps it
when it ends: a measurable share of a short connection's server CPU (bench/RESULTS.md,
"Measurements behind the code").

``recycle()`` puts a small cache in front of CPython's arena allocator, through which those
chunks come and go (``PyObject_SetArenaAllocator``, public C API): a freed chunk of that
size is kept, up to ``KEPT`` of them (1 MiB), and given to the next stack that asks, already
mapped and paged in. Everything else (pymalloc's arenas, bigger chunks, chunks beyond the
cache) goes to the allocator that was there before, which also frees what it made earlier.
CPython initialises every part of a chunk it uses, so a kept chunk's old contents do not
matter. A lock guards the cache for interpreters that do not share a GIL.
"""

cdef extern from "Python.h":
    ctypedef struct PyObjectArenaAllocator:
        void *ctx
        void *(*alloc)(void *ctx, size_t size) noexcept nogil
        void (*free)(void *ctx, void *ptr, size_t size) noexcept nogil
    void PyObject_GetArenaAllocator(PyObjectArenaAllocator *allocator)
    void PyObject_SetArenaAllocator(PyObjectArenaAllocator *allocator)

cdef extern from "pythread.h":
    ctypedef void *PyThread_type_lock
    PyThread_type_lock PyThread_allocate_lock()
    int PyThread_acquire_lock(PyThread_type_lock lock, int waitflag) noexcept nogil
    void PyThread_release_lock(PyThread_type_lock lock) noexcept nogil

cdef enum:
    CHUNK_SIZE = 16384   # CPython's DATA_STACK_CHUNK_SIZE
    KEPT = 64

cdef PyObjectArenaAllocator _previous
cdef void *_kept[KEPT]
cdef int _count = 0
cdef PyThread_type_lock _lock = NULL


cdef void *_alloc(void *ctx, size_t size) noexcept nogil:
    global _count
    cdef void *block = NULL
    if size == CHUNK_SIZE:
        PyThread_acquire_lock(_lock, 1)
        if _count:
            _count -= 1
            block = _kept[_count]
        PyThread_release_lock(_lock)
        if block != NULL:
            return block
    return _previous.alloc(_previous.ctx, size)


cdef void _free(void *ctx, void *ptr, size_t size) noexcept nogil:
    global _count
    if size == CHUNK_SIZE:
        PyThread_acquire_lock(_lock, 1)
        if _count < KEPT:
            _kept[_count] = ptr
            _count += 1
            PyThread_release_lock(_lock)
            return
        PyThread_release_lock(_lock)
    _previous.free(_previous.ctx, ptr, size)


def recycle():
    """Install the cache (once; later calls do nothing)."""
    global _lock
    if _lock != NULL:
        return
    _lock = PyThread_allocate_lock()
    if _lock == NULL:
        raise MemoryError('geventws: no lock for the frame stack cache')
    cdef PyObjectArenaAllocator cache
    PyObject_GetArenaAllocator(&_previous)
    cache.ctx = NULL
    cache.alloc = _alloc
    cache.free = _free
    PyObject_SetArenaAllocator(&cache)


def kept():
    """How many freed chunks the cache holds now (for tests)."""
    return _count
