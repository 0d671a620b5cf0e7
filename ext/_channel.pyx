# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled I/O path of one RFC 6455 connection on a plain TCP socket.

Per message, the Python I/O layer (``sockio`` and ``WebSocket``) costs about twenty Python
calls: the wait, ``recv_into``, the reader, the protocol object, framing and ``send``, each
with its checks. With one greenlet per connection that was most of the server's user time
for small messages (issue 3, S1). ``Channel`` does the same work in two calls:

- ``read()`` reads with ``recv(2)`` into the thread's shared read buffer and feeds the bytes
  to the connection's compiled ``MessageReader`` without a Python object in between; it
  returns the reader's items for ``protocol.Connection.events_for``, or False when the
  caller must first wait for the socket (``sockio.wait_readable``). The wait stays in
  Python on purpose: a greenlet parked from here would keep this call's C frames in its
  saved C stack, about 350 bytes more per idle connection (issue 3, S4), for about 3% of
  the CPU of a small round trip.
- ``send(message)`` writes a whole data message of a server connection without an extension
  as one unmasked frame with one ``send(2)``/``sendmsg(2)``, built on the stack for small
  messages, and returns what the kernel did not take for the caller to write while waiting.

The syscalls are made holding the GIL: the socket is non-blocking, so they never wait, and
releasing and retaking the GIL around them costs more than they do. Everything else (TLS,
sockets with a timeout, the hixie drafts, the pure-Python install) uses the Python path,
which behaves the same (``tests/test_channel.py``).
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport memcpy, memset

from geventws._speedups cimport MessageReader, _write_header


cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_recv "recv"(int fd, void *buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void *buf, size_t n, int flags)
    ssize_t c_sendmsg "sendmsg"(int fd, const msghdr *msg, int flags)
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        unsigned msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    enum: MSG_NOSIGNAL

cdef extern from "Python.h":
    int PyUnicode_READY(object text) except -1
    bint PyUnicode_IS_ASCII(object text)
    const char *PyUnicode_ASCII_DATA "PyUnicode_DATA"(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)

cdef enum:
    OP_TEXT = 1
    OP_BINARY = 2
    # A read shorter than this most likely emptied the socket (a lone small message): wait
    # for readability before the next read rather than paying an EAGAIN (websocket.py's
    # _SMALL_READ, the same rule).
    SMALL_READ = 4096
    # Frames up to this size are assembled on the stack and written with one send().
    STACK_FRAME = 2048


cdef class Channel:
    """Reads and writes of one open RFC 6455 connection (``conn``, a
    ``protocol.Connection``) on ``raw``, the OS-level socket under a plain gevent socket with
    no timeout (non-blocking); ``buffer`` is the thread's shared read buffer (a bytearray)."""

    cdef int _fd
    cdef MessageReader _reader
    cdef object _conn, _buffer
    cdef unsigned char *_buf
    cdef Py_ssize_t _cap
    cdef bint _drained
    cdef bint _sends

    def __init__(self, raw, conn, bytearray buffer):
        self._fd = raw.fileno()
        self._conn = conn
        self._reader = conn.reader
        self._buffer = buffer
        self._buf = <unsigned char *>PyByteArray_AS_STRING(buffer)
        self._cap = PyByteArray_GET_SIZE(buffer)
        # Masking (client) and compression (an extension) stay with the Python path.
        self._sends = not conn.client and conn.extension is None

    # -- reading ----------------------------------------------------------------------------

    def read(self):
        """The reader's items for the bytes the socket holds (an empty list when they end
        no frame); False when it holds none yet: wait for it (``sockio.wait_readable``) and
        call again; None at the peer's TCP close. A reset raises ``OSError``."""
        cdef ssize_t n
        if self._drained:   # the last read was short: the socket is most likely empty
            self._drained = False
            return False
        while True:
            n = c_recv(self._fd, self._buf, self._cap, 0)
            if n >= 0:
                break
            if errno == EAGAIN:
                return False
            if errno == EINTR:
                PyErr_CheckSignals()   # PEP 475: run the handlers, then retry
            else:
                PyErr_SetFromErrno(OSError)
        self._drained = n < SMALL_READ
        if n == 0:
            return None
        return self._reader._feed(self._buf, n)

    # -- writing ----------------------------------------------------------------------------

    def send(self, message):
        """Write ``message`` (``str`` as text, bytes-like as binary) as one whole frame.

        Returns None when the kernel took all of it, a list of the buffers still to write
        when it took less, and NotImplemented when this message is not for this path (a
        client, an extension, the closing handshake or a fragmented message under way):
        the caller then uses ``protocol.Connection.send_message``."""
        cdef Py_buffer view
        cdef object encoded
        conn = self._conn
        if not self._sends or conn.close_sent is not None or conn._fragment_opcode:
            return NotImplemented
        if isinstance(message, str):
            PyUnicode_READY(message)
            if PyUnicode_IS_ASCII(message):   # its characters are its UTF-8
                return self._send_frame(OP_TEXT, PyUnicode_ASCII_DATA(message),
                                        PyUnicode_GET_LENGTH(message), message)
            encoded = message.encode('utf-8')
            return self._send_frame(OP_TEXT, PyBytes_AS_STRING(encoded), len(encoded), encoded)
        PyObject_GetBuffer(message, &view, PyBUF_SIMPLE)
        try:
            return self._send_frame(OP_BINARY, <const char *>view.buf, view.len, message)
        finally:
            PyBuffer_Release(&view)

    cdef object _send_frame(self, int opcode, const char *data, Py_ssize_t size, owner):
        """Write the frame of payload ``data[:size]`` (kept alive by ``owner``)."""
        cdef unsigned char stack[STACK_FRAME]
        cdef unsigned char header[14]
        cdef Py_ssize_t hsize, sent
        cdef iovec parts[2]
        cdef msghdr msg
        if size + 14 <= STACK_FRAME:
            hsize = _write_header(stack, opcode, size, True, False, False)
            memcpy(stack + hsize, data, size)
            sent = self._syscall(NULL, stack, hsize + size)
            if sent == hsize + size:
                return None
            return [PyBytes_FromStringAndSize(<char *>stack + sent, hsize + size - sent)]
        hsize = _write_header(header, opcode, size, True, False, False)
        parts[0].iov_base = header
        parts[0].iov_len = hsize
        parts[1].iov_base = <void *>data
        parts[1].iov_len = size
        memset(&msg, 0, sizeof(msg))
        msg.msg_iov = parts
        msg.msg_iovlen = 2
        sent = self._syscall(&msg, NULL, 0)
        if sent == hsize + size:
            return None
        payload = memoryview(owner.encode() if isinstance(owner, str) else owner).cast('B')
        if sent < hsize:
            return [PyBytes_FromStringAndSize(<char *>header + sent, hsize - sent), payload]
        return [payload[sent - hsize:]]

    cdef Py_ssize_t _syscall(self, msghdr *msg, const void *buf, Py_ssize_t n) except -1:
        """One non-blocking send()/sendmsg(): what the kernel took (0 when it would block);
        an error raises OSError (EPIPE rather than SIGPIPE)."""
        cdef Py_ssize_t sent
        while True:
            if msg != NULL:
                sent = c_sendmsg(self._fd, msg, MSG_NOSIGNAL)
            else:
                sent = c_send(self._fd, buf, n, MSG_NOSIGNAL)
            if sent >= 0:
                return sent
            if errno == EAGAIN:
                return 0
            if errno == EINTR:
                PyErr_CheckSignals()
            else:
                PyErr_SetFromErrno(OSError)

