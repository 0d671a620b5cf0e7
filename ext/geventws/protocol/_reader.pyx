# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled message reader: the twin of ``geventws/protocol/reader.py`` and of
``frames.mask`` and ``frames.frame`` (``geventws.speedups`` chooses).

``MessageReader.feed(data)`` returns exactly what the pure-Python reader returns for the same
byte stream split at the same points (``tests/test_twins.py`` checks that with Hypothesis):
``MessageEvent`` for whole uncompressed data messages, ``(opcode, payload)`` for control frames
and RSV1 (compressed) messages, and a ``ProtocolError`` as the last item of a broken stream.
Read ``reader.py`` for the protocol rules; this file is about doing them without Python
objects per frame:

- ``data`` is borrowed, never kept: the I/O layer passes a view of one read buffer shared by
  every connection of a thread. What the reader keeps between calls is copied into its own
  small state (a partial header, a control frame's payload) or into the message's own bytes.
- Each payload byte is copied once, from the input into the message's ``bytes`` object,
  unmasked on the way 8 bytes at a time. Unmasking during the one copy a message needs anyway
  costs no more than the copy; a separate in-place pass would read and write it all again.
- A message that arrives whole in one call (the common small-message case) goes straight from
  the input to its ``bytes``/``str``; larger and fragmented messages are reassembled in a
  ``bytes`` object that grows with the bytes that arrive and is handed out without a copy.
  An announced length is never allocated ahead of its bytes: it may be a lie, told by many
  connections at once.
- Text is validated by a UTF-8 automaton on every chunk that does not end its message, so a
  broken stream fails as soon as the bytes prove it (Autobahn's "fail fast" cases); the chunk
  that ends a message is validated by the one ``PyUnicode_DecodeUTF8`` that builds the ``str``.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from geventws.errors import ProtocolError
from geventws.limits import JOIN_LIMIT
from geventws.protocol import frames
from geventws.protocol.events import MessageEvent
from geventws.protocol.frames import header_error, invalid_utf8

cdef extern from "Python.h":
    # Declared by hand to manage the reassembly buffer's one reference ourselves: a bytes
    # object may be resized (_PyBytes_Resize) only while nobody else holds it.
    PyObject *_new_bytes "PyBytes_FromStringAndSize"(const char *data, Py_ssize_t size)
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t size)
    char *_bytes_data "PyBytes_AS_STRING"(PyObject *bytes)
    void Py_XDECREF(PyObject *obj)

cdef int OP_TEXT = frames.OP_TEXT, OP_BINARY = frames.OP_BINARY

cdef enum:
    # Text messages up to this size that arrive whole are unmasked on the stack to decode.
    STACK_TEXT = 512
    # Room a message's buffer has beyond the bytes that arrived when it is made or grown;
    # then it grows by half its size, whichever is more.
    RESERVE_AHEAD = 64 * 1024

# UTF-8 automaton (RFC 3629 section 4), table-driven: a state says what the bytes seen so far
# still require; each byte moves it through _UTF8_NEXT by the byte's class.
cdef enum:
    UTF8_ACCEPT = 0
    UTF8_CONT1 = 1        # one more continuation byte 80..BF
    UTF8_CONT2 = 2
    UTF8_CONT3 = 3
    UTF8_AFTER_E0 = 4     # A0..BF, then one more: no overlong 3-byte forms
    UTF8_AFTER_ED = 5     # 80..9F, then one more: no surrogates D800-DFFF
    UTF8_AFTER_F0 = 6     # 90..BF, then two more: no overlong 4-byte forms
    UTF8_AFTER_F4 = 7     # 80..8F, then two more: nothing above U+10FFFF
    UTF8_REJECT = 8
    UTF8_STATES = 9
    UTF8_CLASSES = 12

cdef unsigned char _UTF8_CLASS[256]
cdef unsigned char _UTF8_NEXT[UTF8_STATES * UTF8_CLASSES]


cdef void _build_utf8_tables() noexcept:
    # Byte classes: ranges that every state treats alike.
    ranges = [(0x00, 0x7F), (0x80, 0x8F), (0x90, 0x9F), (0xA0, 0xBF), (0xC0, 0xC1),
              (0xC2, 0xDF), (0xE0, 0xE0), (0xE1, 0xEC), (0xED, 0xED), (0xEE, 0xEF),
              (0xF0, 0xF0), (0xF1, 0xF3), (0xF4, 0xF4), (0xF5, 0xFF)]
    classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 7, 9, 10, 11, 4]
    for (low, high), cls in zip(ranges, classes):
        for b in range(low, high + 1):
            _UTF8_CLASS[b] = cls
    # (state, byte classes, next state); everything else rejects.
    rules = [(UTF8_ACCEPT, [0], UTF8_ACCEPT), (UTF8_ACCEPT, [5], UTF8_CONT1),
             (UTF8_ACCEPT, [6], UTF8_AFTER_E0), (UTF8_ACCEPT, [7], UTF8_CONT2),
             (UTF8_ACCEPT, [8], UTF8_AFTER_ED), (UTF8_ACCEPT, [9], UTF8_AFTER_F0),
             (UTF8_ACCEPT, [10], UTF8_CONT3), (UTF8_ACCEPT, [11], UTF8_AFTER_F4),
             (UTF8_CONT1, [1, 2, 3], UTF8_ACCEPT), (UTF8_CONT2, [1, 2, 3], UTF8_CONT1),
             (UTF8_CONT3, [1, 2, 3], UTF8_CONT2), (UTF8_AFTER_E0, [3], UTF8_CONT1),
             (UTF8_AFTER_ED, [1, 2], UTF8_CONT1), (UTF8_AFTER_F0, [2, 3], UTF8_CONT2),
             (UTF8_AFTER_F4, [1], UTF8_CONT2)]
    for i in range(UTF8_STATES * UTF8_CLASSES):
        _UTF8_NEXT[i] = UTF8_REJECT
    for state, byte_classes, next_state in rules:
        for cls in byte_classes:
            _UTF8_NEXT[state * UTF8_CLASSES + cls] = next_state


_build_utf8_tables()


cdef inline void _mask_copy(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                            const unsigned char *key, Py_ssize_t phase) noexcept nogil:
    """dst = src XOR key repeated, starting at key byte ``phase`` (RFC 6455 5.3).

    A plain loop over 64-bit words, which gcc vectorizes at -O3; the memcpy calls compile to
    unaligned loads and stores."""
    cdef unsigned char k[8]
    cdef uint64_t k64, word
    cdef Py_ssize_t i
    for i in range(8):
        k[i] = key[(phase + i) & 3]
    memcpy(&k64, k, 8)
    i = 0
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= k64
        memcpy(dst + i, &word, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ k[i & 7]
        i += 1


cdef inline void _copy_payload(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                               bint masked, const unsigned char *key,
                               Py_ssize_t phase) noexcept nogil:
    if masked:
        _mask_copy(dst, src, n, key, phase)
    else:
        memcpy(dst, src, n)


cdef inline bint _utf8_char_ok(const unsigned char *p) noexcept nogil:
    """Whether the whole character starting with non-ASCII byte ``p[0]`` is valid: the
    branches of RFC 3629's table, cheaper than one automaton step per byte."""
    cdef unsigned char b = p[0], b1 = p[1]
    if b < 0xC2:
        return False
    if (b1 & 0xC0) != 0x80:
        return False
    if b < 0xE0:
        return True
    if (p[2] & 0xC0) != 0x80:
        return False
    if b < 0xF0:
        return not ((b == 0xE0 and b1 < 0xA0) or (b == 0xED and b1 > 0x9F))
    if b > 0xF4 or (p[3] & 0xC0) != 0x80:
        return False
    return not ((b == 0xF0 and b1 < 0x90) or (b == 0xF4 and b1 > 0x8F))


cdef int _utf8_scan(int state, const unsigned char *p, Py_ssize_t n) noexcept nogil:
    """The automaton's state after ``p[:n]``; UTF8_REJECT as soon as a byte proves the text
    invalid, as CPython's strict decoder does (plus the surrogates it lets wait, see
    reader.py). The automaton only steps through characters cut by a chunk's ends; whole
    characters are checked at once and ASCII is skipped 8 bytes at a time."""
    cdef Py_ssize_t i = 0, size
    cdef uint64_t word
    cdef unsigned char b
    while state != UTF8_ACCEPT and i < n:   # the end of a character cut by the last chunk
        state = _UTF8_NEXT[state * UTF8_CLASSES + _UTF8_CLASS[p[i]]]
        if state == UTF8_REJECT:
            return UTF8_REJECT
        i += 1
    while i < n:
        if i + 8 <= n:
            memcpy(&word, p + i, 8)
            if not word & 0x8080808080808080ULL:
                i += 8
                continue
        b = p[i]
        if b < 0x80:
            i += 1
            continue
        size = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
        if i + size > n:
            break
        if not _utf8_char_ok(p + i):
            return UTF8_REJECT
        i += size
    while i < n:   # the start of a character cut by the end of this chunk
        state = _UTF8_NEXT[state * UTF8_CLASSES + _UTF8_CLASS[p[i]]]
        if state == UTF8_REJECT:
            return UTF8_REJECT
        i += 1
    return state


cdef inline bint _header_ok(int b0, int b1, int message_opcode, bint expect_masked,
                            bint allow_rsv1) noexcept:
    """The checks of reader.header_error as one predicate; on False that function builds the
    error, so the reasons and their order live in one place."""
    cdef int opcode = b0 & 0x0F
    if b0 & 0x30 or (b0 & 0x40 and not (allow_rsv1 and (opcode == OP_TEXT or
                                                         opcode == OP_BINARY))):
        return False
    if 3 <= opcode <= 7 or opcode >= 11:
        return False
    if opcode >= 8:
        if not b0 & 0x80 or (b1 & 0x7F) > 125:
            return False
    elif opcode == 0:
        if not message_opcode:
            return False
    elif message_opcode:
        return False
    return bool(b1 & 0x80) == expect_masked


cdef inline Py_ssize_t _header_size(int b1) noexcept:
    cdef int length = b1 & 0x7F
    cdef Py_ssize_t size = 4 if length == 126 else 10 if length == 127 else 2
    return size + 4 if b1 & 0x80 else size


def mask(data, key):
    """``data`` XOR the 4-byte ``key`` repeated (RFC 6455 5.3), as new bytes."""
    cdef Py_buffer view, key_view
    PyObject_GetBuffer(key, &key_view, PyBUF_SIMPLE)
    try:
        if key_view.len != 4:
            raise ValueError('a masking key is 4 bytes, not %d' % key_view.len)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            result = PyBytes_FromStringAndSize(NULL, view.len)
            _mask_copy(<unsigned char *>PyBytes_AS_STRING(result),
                       <const unsigned char *>view.buf, view.len,
                       <const unsigned char *>key_view.buf, 0)
            return result
        finally:
            PyBuffer_Release(&view)
    finally:
        PyBuffer_Release(&key_view)


cdef Py_ssize_t _join_limit = JOIN_LIMIT


cdef Py_ssize_t _write_header(unsigned char *h, int opcode, Py_ssize_t n, bint fin, bint rsv1,
                              bint masked) noexcept:
    """RFC 6455 5.2: the header of a frame of ``n`` payload bytes into ``h`` (14 bytes of
    room, key excluded); returns its size."""
    cdef int i
    h[0] = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    cdef unsigned char mask_bit = 0x80 if masked else 0
    if n < 126:
        h[1] = mask_bit | n
        return 2
    if n < 65536:
        h[1] = mask_bit | 126
        h[2] = n >> 8
        h[3] = n & 0xFF
        return 4
    h[1] = mask_bit | 127
    for i in range(8):
        h[9 - i] = (<unsigned long long>n >> (8 * i)) & 0xFF
    return 10


def frame(int opcode, payload, bint fin=True, bint rsv1=False, mask_key=None):
    """One frame as a list of buffers to write, as ``frames.frame``: header and payload in
    one ``bytes`` built with one copy (unmasked on the way when masked), or a large
    unmasked payload left apart from its header."""
    cdef Py_buffer view, key_view
    cdef unsigned char header[14]
    cdef Py_ssize_t size
    cdef char *out
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        size = _write_header(header, opcode, view.len, fin, rsv1, mask_key is not None)
        if mask_key is None and view.len > _join_limit:
            return [PyBytes_FromStringAndSize(<char *>header, size), payload]
        if mask_key is None:
            result = PyBytes_FromStringAndSize(NULL, size + view.len)
            out = PyBytes_AS_STRING(result)
            memcpy(out, header, size)
            memcpy(out + size, view.buf, view.len)
            return [result]
        PyObject_GetBuffer(mask_key, &key_view, PyBUF_SIMPLE)
        try:
            if key_view.len != 4:
                raise ValueError('a masking key is 4 bytes, not %d' % key_view.len)
            result = PyBytes_FromStringAndSize(NULL, size + 4 + view.len)
            out = PyBytes_AS_STRING(result)
            memcpy(out, header, size)
            memcpy(out + size, key_view.buf, 4)
            _mask_copy(<unsigned char *>out + size + 4, <const unsigned char *>view.buf,
                       view.len, <const unsigned char *>key_view.buf, 0)
            return [result]
        finally:
            PyBuffer_Release(&key_view)
    finally:
        PyBuffer_Release(&view)


cdef inline object _message_event(data):
    """``MessageEvent(data)`` without running its ``__init__`` in Python: one frame less per
    message (``__init__`` only sets ``data``)."""
    event = MessageEvent.__new__(MessageEvent)
    event.data = data
    return event


cdef class MessageReader:
    """Parses the frames of one connection's incoming byte stream (RFC 6455 5.2-5.6).

    Between calls it holds at most a partial header (14 bytes), the payload of a control
    frame that is still arriving and the data message being received: an idle connection
    costs under 200 bytes, never a read buffer."""

    def __init__(self, max_message_size, expect_masked, allow_rsv1=False):
        self.max_message_size = max_message_size
        self.expect_masked = expect_masked
        self.allow_rsv1 = allow_rsv1
        self._max = max_message_size

    def __dealloc__(self):
        Py_XDECREF(self._msg)
        Py_XDECREF(self._ctrl)

    def feed(self, data):
        """Items for ``data`` (any bytes-like object, not kept), as reader.MessageReader."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._feed(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef list _feed(self, const unsigned char *p, Py_ssize_t n):
        cdef list out = []
        if self._dead:
            return out
        try:
            self._parse(p, n, out)
        except ProtocolError as exc:
            self._die()
            out.append(exc)
        return out

    cdef int _parse(self, const unsigned char *p, Py_ssize_t n, list out) except -1:
        cdef Py_ssize_t pos = 0, take
        while True:
            if not self._in_frame:
                pos += self._read_header(p + pos, n - pos)
                if not self._in_frame:
                    return 0
            take = n - pos
            if <unsigned long long>take > self._remaining:
                take = <Py_ssize_t>self._remaining
            if self._opcode >= 8:
                # RFC 6455 5.5: control frames are whole and small; they may arrive between
                # the fragments of a message. Their payload is unmasked straight into its
                # bytes, made when the frame starts to arrive (no buffer while idle).
                if self._ctrl == NULL:
                    self._ctrl = _new_bytes(NULL, <Py_ssize_t>self._remaining)
                    if self._ctrl == NULL:
                        raise MemoryError()
                _copy_payload(<unsigned char *>_bytes_data(self._ctrl) + self._phase, p + pos,
                              take, self._masked, self._key, self._phase)
                self._phase += take
                self._remaining -= take
                pos += take
                if self._remaining:
                    return 0
                self._in_frame = False
                payload = <object>self._ctrl   # takes a reference: ours is dropped next
                Py_XDECREF(self._ctrl)
                self._ctrl = NULL
                out.append((self._opcode, payload))
                continue
            if self._fin and <unsigned long long>take == self._remaining and not self._msg_len:
                # The whole message is in this input: no reassembly buffer.
                out.append(self._whole_message(p + pos, take))
                self._msg_opcode = 0
                self._in_frame = False
                pos += take
                continue
            if take:
                self._append(p + pos, take)
                pos += take
            if self._remaining:
                return 0
            self._in_frame = False
            if self._fin:
                out.append(self._finish_message())

    cdef Py_ssize_t _read_header(self, const unsigned char *p, Py_ssize_t avail) except -1:
        """Consume header bytes; the frame starts (``_in_frame``) once they are all there.
        Returns how many of ``p[:avail]`` were consumed. The first two bytes are checked as
        soon as they are there, even if the rest of the header is not."""
        cdef Py_ssize_t size, used = 0, take
        if self._hdr_len == 0 and avail >= 2:
            self._check_header(p[0], p[1])
            size = _header_size(p[1])
            if avail >= size:
                self._start_frame(p)
                return size
            memcpy(self._hdr, p, avail)
            self._hdr_len = avail
            return avail
        # A header split across calls: gather it in _hdr.
        if self._hdr_len < 2:
            if not avail:
                return 0
            self._hdr[self._hdr_len] = p[0]
            self._hdr_len += 1
            used = 1
            if self._hdr_len < 2:
                return used
            self._check_header(self._hdr[0], self._hdr[1])
        size = _header_size(self._hdr[1])
        take = min(size - self._hdr_len, avail - used)
        memcpy(self._hdr + self._hdr_len, p + used, take)
        self._hdr_len += take
        used += take
        if self._hdr_len == size:
            self._hdr_len = 0
            self._start_frame(self._hdr)
        return used

    cdef int _check_header(self, int b0, int b1) except -1:
        if not _header_ok(b0, b1, self._msg_opcode, self.expect_masked, self.allow_rsv1):
            raise header_error(b0, b1, self._msg_opcode, self.expect_masked, self.allow_rsv1)
        return 0

    cdef int _start_frame(self, const unsigned char *h) except -1:
        """RFC 6455 5.2: the payload length and masking key of a complete header."""
        cdef int b0 = h[0], b1 = h[1], opcode = h[0] & 0x0F, i
        cdef unsigned long long length = b1 & 0x7F
        cdef Py_ssize_t offset = 2
        if length == 126:
            length = (<unsigned long long>h[2] << 8) | h[3]
            offset = 4
        elif length == 127:
            length = 0
            for i in range(2, 10):
                length = (length << 8) | h[i]
            offset = 10
            if length >> 63:
                raise ProtocolError('frame length has its most significant bit set')
        if opcode < 8 and length > self._max - <unsigned long long>self._msg_len:
            raise ProtocolError('message over the limit of %d bytes' % self.max_message_size,
                                1009)
        self._masked = b1 & 0x80
        if self._masked:
            memcpy(self._key, h + offset, 4)
        self._in_frame = True
        self._opcode = opcode
        self._fin = b0 & 0x80
        self._remaining = length
        self._phase = 0
        if 0 < opcode < 8:   # a data message starts (a control frame's bytes: _parse)
            self._msg_opcode = opcode
            self._msg_compressed = b0 & 0x40
            self._utf8_state = UTF8_ACCEPT
        return 0

    cdef object _whole_message(self, const unsigned char *src, Py_ssize_t n):
        """The item for a message whose only payload bytes are ``src[:n]``."""
        cdef unsigned char stack[STACK_TEXT]
        cdef unsigned char *tmp
        cdef bint text = self._msg_opcode == OP_TEXT and not self._msg_compressed
        self._remaining = 0
        if text and (not self._masked or n <= STACK_TEXT):
            if self._masked:
                _mask_copy(stack, src, n, self._key, self._phase)
                src = stack
            return _message_event(self._decode(<const char *>src, n))
        if text:
            tmp = <unsigned char *>PyMem_Malloc(n)
            if tmp == NULL:
                raise MemoryError()
            try:
                _mask_copy(tmp, src, n, self._key, self._phase)
                return _message_event(self._decode(<const char *>tmp, n))
            finally:
                PyMem_Free(tmp)
        payload = PyBytes_FromStringAndSize(NULL, n)
        _copy_payload(<unsigned char *>PyBytes_AS_STRING(payload), src, n,
                      self._masked, self._key, self._phase)
        if self._msg_compressed:
            return (self._msg_opcode, payload)
        return _message_event(payload)

    cdef int _append(self, const unsigned char *src, Py_ssize_t n) except -1:
        """Add payload bytes to the message; text that does not end here is validated now."""
        cdef unsigned char *dst
        if self._msg_len + n > self._msg_cap:
            self._reserve(n)
        dst = <unsigned char *>_bytes_data(self._msg) + self._msg_len
        _copy_payload(dst, src, n, self._masked, self._key, self._phase)
        self._msg_len += n
        self._phase += n
        self._remaining -= n
        if (self._msg_opcode == OP_TEXT and not self._msg_compressed and
                not (self._fin and self._remaining == 0)):
            self._utf8_state = _utf8_scan(self._utf8_state, dst, n)
            if self._utf8_state == UTF8_REJECT:
                raise invalid_utf8()
        return 0

    cdef int _reserve(self, Py_ssize_t n) except -1:
        """Room for ``n`` more bytes, and ``RESERVE_AHEAD`` more or half as much again as
        now: memory follows the bytes that arrive (a few reallocations for a large message),
        not the length a header announces. Never past the message's end when this frame
        ends it, nor past the size limit (both at least the bytes needed: the frame's length
        was checked against the limit)."""
        cdef Py_ssize_t need = self._msg_len + n
        cdef Py_ssize_t target = need + RESERVE_AHEAD
        cdef Py_ssize_t grown = self._msg_cap + self._msg_cap // 2
        cdef unsigned long long end = self._msg_len + self._remaining
        if grown > target:
            target = grown
        if self._fin and <unsigned long long>target > end:
            target = <Py_ssize_t>end
        elif <unsigned long long>target > self._max:
            target = <Py_ssize_t>self._max
        if self._msg == NULL:
            self._msg = _new_bytes(NULL, target)
            if self._msg == NULL:
                raise MemoryError()
        elif _PyBytes_Resize(&self._msg, target) < 0:
            self._msg_cap = self._msg_len = 0
            raise MemoryError()
        self._msg_cap = target
        return 0

    cdef object _finish_message(self):
        cdef int opcode = self._msg_opcode
        cdef bint compressed = self._msg_compressed
        cdef Py_ssize_t length = self._msg_len
        self._msg_opcode = 0
        self._msg_len = 0
        if opcode == OP_TEXT and not compressed:
            if self._msg == NULL:
                return _message_event('')
            try:
                return _message_event(self._decode(_bytes_data(self._msg), length))
            finally:
                self._drop_message()
        if self._msg == NULL:
            payload = b''
        else:
            if length < self._msg_cap and _PyBytes_Resize(&self._msg, length) < 0:
                self._msg_cap = 0
                raise MemoryError()
            payload = <object>self._msg
            self._drop_message()
        if compressed:
            return (opcode, payload)
        return _message_event(payload)

    cdef object _decode(self, const char *data, Py_ssize_t n):
        try:
            return PyUnicode_DecodeUTF8(data, n, NULL)
        except UnicodeDecodeError:
            raise invalid_utf8() from None

    cdef void _drop_message(self) noexcept:
        Py_XDECREF(self._msg)
        self._msg = NULL
        self._msg_cap = 0

    cdef void _die(self) noexcept:
        self._dead = True
        self._drop_message()
        self._msg_len = 0
