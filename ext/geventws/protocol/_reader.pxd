"""Declarations of ``geventws.protocol._reader`` shared with the other compiled modules
(``geventws.io._channel`` feeds the reader straight from its read buffer)."""
from cpython.ref cimport PyObject


cdef class MessageReader:
    cdef readonly object max_message_size
    cdef readonly bint expect_masked
    cdef readonly bint allow_rsv1
    cdef unsigned long long _max
    cdef bint _dead
    # A header split across calls.
    cdef unsigned char _hdr[14]
    cdef Py_ssize_t _hdr_len
    # The frame being read: set once its header is complete.
    cdef bint _in_frame
    cdef bint _fin
    cdef bint _masked
    cdef int _opcode
    cdef unsigned char _key[4]
    cdef unsigned long long _remaining
    cdef Py_ssize_t _phase            # payload bytes of this frame unmasked so far
    cdef PyObject *_ctrl              # the control frame's payload while it arrives, or NULL
    # The data message being reassembled (opcode 0: none).
    cdef int _msg_opcode
    cdef bint _msg_compressed
    cdef PyObject *_msg               # its bytes, our only reference; NULL while empty
    cdef Py_ssize_t _msg_len
    cdef Py_ssize_t _msg_cap
    cdef int _utf8_state


    cdef list _feed(self, const unsigned char *p, Py_ssize_t n)
    cdef int _parse(self, const unsigned char *p, Py_ssize_t n, list out) except -1
    cdef Py_ssize_t _read_header(self, const unsigned char *p, Py_ssize_t avail) except -1
    cdef int _check_header(self, int b0, int b1) except -1
    cdef int _start_frame(self, const unsigned char *h) except -1
    cdef object _whole_message(self, const unsigned char *src, Py_ssize_t n)
    cdef int _append(self, const unsigned char *src, Py_ssize_t n) except -1
    cdef int _reserve(self, Py_ssize_t n) except -1
    cdef object _finish_message(self)
    cdef object _decode(self, const char *data, Py_ssize_t n)
    cdef void _drop_message(self) noexcept
    cdef void _die(self) noexcept


cdef Py_ssize_t _write_header(unsigned char *h, int opcode, Py_ssize_t n, bint fin, bint rsv1,
                              bint masked) noexcept
