# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled I/O path of one RFC 6455 connection on a plain TCP socket, and the compiled
twin of ``geventws/io/base.py`` (``geventws.speedups`` chooses).

- ``Channel.on_readable()`` is the socket's read watcher's callback, run by the hub when
  bytes arrive (the twin of ``transport.Transport._on_readable``): it reads with ``recv(2)``
  into the thread's shared read buffer and feeds the bytes to the connection's compiled
  ``MessageReader`` without a Python object in between. A lone message for a greenlet that
  waits with nothing queued goes to it directly; the rest to ``WebSocket._handle_items``.
- ``Channel._send(message)`` writes a whole data message of a server connection without an
  extension as one unmasked frame with one ``send(2)``/``sendmsg(2)``, built on the stack for
  small messages, and returns what the kernel did not take, for the write watcher.
- ``WebSocketBase`` serves ``receive()``, ``run_forever()`` and ``send()`` for their common
  case on top of these, with no Python frame of their own, and hands every other case to the
  Python methods of ``geventws.io.base.WebSocketBase``, which behave the same.

Together they do in two calls what the Python path does in about twenty per message
(bench/RESULTS.md, "Measurements behind the code"). The syscalls are made holding the GIL:
the socket is non-blocking, so they never wait, and releasing and retaking the GIL around
them costs more than they do. Everything else (TLS, sockets with a timeout, the hixie drafts,
the pure-Python install) uses the Python path, which behaves the same
(``tests/test_channel.py``).
"""
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport memcpy, memset

from greenlet import getcurrent

from geventws.io._lock cimport Lock
from geventws.protocol._reader cimport MessageReader, _write_header
from geventws.io import base
from geventws.protocol import frames
from geventws.protocol.events import MessageEvent, OpenEvent


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

cdef int CONNECTING = base.CONNECTING, OPEN = base.OPEN
cdef int OP_TEXT = frames.OP_TEXT, OP_BINARY = frames.OP_BINARY

cdef enum:
    # Frames up to this size are assembled on the stack and written with one send().
    STACK_FRAME = 2048


cdef class WebSocketBase


@cython.final   # direct calls to its methods, which the C compiler may inline
cdef class Channel:
    """Reads and writes of one open RFC 6455 connection (``conn``, a
    ``connection.Connection``) on ``sock``, a plain gevent socket with no timeout, whose
    OS-level socket (non-blocking) is ``raw``; ``buffer`` is the thread's shared read buffer
    (a bytearray). It reads for the ``WebSocket`` given to ``serve()``."""

    cdef int _fd
    cdef MessageReader _reader
    cdef object _sock, _conn, _buffer
    cdef object _hub             # the socket's hub
    cdef WebSocketBase _ws       # the WebSocket it reads for, until the connection ends
    cdef unsigned char *_buf
    cdef Py_ssize_t _cap
    cdef bint _sends

    def __init__(self, sock, raw, conn, bytearray buffer):
        # The socket is closed only after the Channel is let go (WebSocket._terminate), so
        # its file descriptor and hub stay what they are now.
        self._sock = sock
        self._hub = sock.hub
        self._fd = raw.fileno()
        self._conn = conn
        self._reader = conn.reader
        self._buffer = buffer
        self._buf = <unsigned char *>PyByteArray_AS_STRING(buffer)
        self._cap = PyByteArray_GET_SIZE(buffer)
        # Masking (client) and compression (an extension) stay with the Python path.
        self._sends = not conn.client and conn.extension is None

    def serve(self, WebSocketBase ws):
        """Read for ``ws`` from now on (None: the connection is over)."""
        self._ws = ws

    # -- reading ----------------------------------------------------------------------------

    def on_readable(self):
        """Run by the hub when the socket has bytes (its read watcher's callback), as
        ``Transport._on_readable``: one read, parsed at once. A lone message for a greenlet
        that waits with nothing queued is handed to it directly; anything else goes to
        ``WebSocket._handle_items``."""
        cdef ssize_t n
        cdef list items
        cdef WebSocketBase ws = self._ws
        if ws is None:
            return
        if ws._paused:   # the app has too much to take: the watcher stops until it has
            ws._hold_reading()
            return
        while True:
            n = c_recv(self._fd, self._buf, self._cap, 0)
            if n > 0:
                break
            if n == 0:
                ws._lost(True)   # the peer's FIN
                return
            if errno == EAGAIN:
                return
            if errno != EINTR:
                ws._lost(False)   # a reset
                return
        items = self._reader._feed(self._buf, n)
        ws._heard = True
        if not items:   # the bytes end no frame: nothing to tell anybody
            return
        waiting = ws._waiting
        if (waiting is not None and ws._queue is None and len(items) == 1
                and type(items[0]) is MessageEvent and self._conn.close_received is None):
            ws._waiting = None
            waiting.switch(items[0])
            return
        ws._handle_items(items)

    # -- writing ----------------------------------------------------------------------------

    cdef object _send(self, message):
        """Write ``message`` (``str`` as text, bytes-like as binary) as one whole frame.

        Returns None when the kernel took all of it, a list of the buffers still to write
        when it took less, and NotImplemented when this message is not for this path (a
        client, an extension, the closing handshake or a fragmented message under way):
        the caller then uses ``connection.Connection.send_message``."""
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



# -- WebSocket.receive(), send() and run_forever() --------------------------------------------

#: The Python methods, for every case but the common one.
cdef object _python_receive = base.WebSocketBase.receive
cdef object _python_send = base.WebSocketBase.send


cdef class WebSocketBase:
    """``geventws.io.base.WebSocketBase`` compiled: the attributes that ``receive()``,
    ``run_forever()`` and ``send()`` read on every message as C fields rather than slots
    looked up by name, and those methods serving the common case of a connection that a
    ``Channel`` serves: waiting for a lone message while nothing is queued and no other
    greenlet reads, and sending a whole message while nothing waits to be written and no
    other greenlet sends."""

    cdef public int ready_state
    cdef public object _queue, _channel, _out, _conn, _onmessage
    cdef public object _read_lock, _send_lock, _waiting, _paused
    cdef public bint _heard

    def receive(self):
        event = _lone_message(self)
        if event is not None:
            return event.data
        return _python_receive(self)

    def run_forever(self):
        self._ensure_open()
        while True:
            event = _lone_message(self)
            if event is not None:
                callback = self._onmessage
                if callback is not None:
                    callback(event)
            elif not self._dispatch_next():
                return

    def send(self, message, binary=None):
        cdef Lock lock
        cdef Channel channel
        queue = self._queue
        # While received messages wait in the queue (base.input_waits), the answer is
        # corked instead, by the Python send() (Transport._write).
        if ((queue is None or len(queue) == 1 and type(queue[0]) is OpenEvent)
                and self._out is None):
            serving = self._channel
            lock = self._send_lock
            # The compiled write never waits, so it needs the send lock free, not taken.
            if (serving is not None and not lock._held
                    and isinstance(message, (str, bytes, bytearray, memoryview))):
                channel = serving
                if binary is not None:
                    message = self._coerce(message, binary)
                try:
                    rest = channel._send(message)
                except OSError as exc:
                    self._lose_connection(exc)
                if rest is None:
                    return
                if rest is not NotImplemented:   # the kernel took part of it
                    self._buffer_rest(rest)
                    return
        return _python_send(self, message, binary)


# The API's own words, for help() and the documentation.
for _name in ('receive', 'run_forever', 'send'):
    getattr(WebSocketBase, _name).__doc__ = getattr(base.WebSocketBase, _name).__doc__


cdef inline object _lone_message(WebSocketBase ws):
    """The common case of reading: wait for the next message when nothing is queued, the
    connection is open and served by a ``Channel`` and no other greenlet reads. The
    ``MessageEvent`` the ``Channel`` hands over, or None, when what came went to the queue
    (or nothing was waited for)."""
    cdef Lock lock
    if ws._queue is None and ws.ready_state == OPEN:
        serving = ws._channel
        lock = ws._read_lock
        if serving is not None and not lock._held:
            lock._held = True   # taken: it was free
            try:
                ws._waiting = getcurrent()
                try:
                    got = (<Channel>serving)._hub.switch()
                finally:
                    ws._waiting = None
                if type(got) is MessageEvent:
                    return got
            finally:
                lock.release()
    return None
