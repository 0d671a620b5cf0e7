"""Socket reads and writes with the fewest syscalls and Python calls.

gevent's socket methods are written for every kind of socket: ``sendall`` asks the kernel for
the send buffer size (a ``getsockopt``) and loops over chunks even for 40 bytes. For a plain
gevent TCP socket, the I/O layer calls the OS-level socket under it directly, without
blocking: the hub's io watchers say when to read and when to write again, and a list of
frames goes out with one ``sendmsg``. Anything else (TLS, a socket with a timeout) goes
through gevent's own methods.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gevent.socket
from gevent.monkey import get_original

from ..limits import READ_SIZE
from ..protocol import Connection
from ..speedups import Channel

if TYPE_CHECKING:
    from .._types import Buffers, BytesLike, RawSocket, Socket
    from ..protocol.hixie import HixieConnection

#: Buffers given to one ``sendmsg`` (Linux refuses more than 1024).
IOV_MAX = 1024

_per_thread = get_original('threading', 'local')()   # per OS thread even when monkey-patched


def read_buffer() -> memoryview:
    """This thread's read buffer (a memoryview), shared by every connection its hub serves:
    what one read brings is parsed before anything can switch greenlets, and the protocol
    objects copy what they keep, so an idle connection holds no buffer."""
    try:
        return _per_thread.read_buffer
    except AttributeError:
        _per_thread.read_buffer = buffer = memoryview(bytearray(READ_SIZE))
        return buffer


def raw_socket(sock: Socket) -> RawSocket | None:
    """The non-blocking OS-level socket under ``sock`` when it is a plain gevent socket with
    no timeout (whose methods only add the waiting), else None."""
    if type(sock) is gevent.socket.socket and sock.timeout is None:
        return sock._sock
    return None


def open_channel(sock: Socket, raw: RawSocket | None,
                 conn: Connection | HixieConnection) -> Any:
    """The compiled ``Channel`` (geventws.io._channel) for RFC 6455 connection ``conn`` on
    ``sock`` when it can serve it: a plain gevent socket (``raw`` is its OS-level socket)
    and the speedups built. Else None, and the Python methods do the work."""
    if Channel is None or raw is None or type(conn) is not Connection:
        return None
    return Channel(sock, raw, conn, read_buffer().obj)


def size_of(buffer: BytesLike) -> int:
    """The bytes in ``buffer``: a memoryview of another format counts items in ``len``."""
    return buffer.nbytes if type(buffer) is memoryview else len(buffer)


def total_size(buffers: Buffers) -> int:
    """The bytes in ``buffers``. Frames are mostly ``bytes``, whose ``len`` is their size:
    no call per buffer for them."""
    total = 0
    for buffer in buffers:
        total += len(buffer) if type(buffer) is bytes else size_of(buffer)
    return total


def send_some(raw: RawSocket, buffers: Buffers) -> int:
    """Write what the kernel takes now of ``buffers`` (a list, consumed in place) without
    blocking; returns how many bytes went."""
    total = 0
    while buffers:
        try:
            sent = raw.sendmsg(buffers[:IOV_MAX]) if len(buffers) > 1 else raw.send(buffers[0])
        except (BlockingIOError, InterruptedError):
            break
        total += sent
        _consume(buffers, sent)
    return total


def _consume(buffers: Buffers, sent: int) -> None:
    """Drop ``sent`` bytes from the front of ``buffers``."""
    done = 0
    for buffer in buffers:
        size = size_of(buffer)
        if sent < size:
            break
        sent -= size
        done += 1
    del buffers[:done]
    if sent:
        buffers[0] = memoryview(buffers[0]).cast('B')[sent:]


def send_all(sock: Socket, buffers: Buffers) -> None:
    """Write all of ``buffers`` (a list, consumed), blocking this greenlet only: the direct
    syscall while the kernel takes it, gevent's waiting when it would block (the opening
    handshake's answer; a WebSocket's own writes never wait here)."""
    raw = raw_socket(sock)
    if raw is not None:
        send_some(raw, buffers)
    for buf in buffers:
        sock.sendall(buf)


def answer_and_close(sock: Socket, response: bytes, seconds: float, limit: int) -> None:
    """Write ``response`` (a refusal), then read and drop what the peer still sends, for at
    most ``seconds`` and ``limit`` bytes, until its end: a socket closed with unread bytes
    sends a reset, and a reset can destroy the answer before the peer has read it (a client
    still writing an oversized head would see "connection reset", not the 431)."""
    try:
        send_all(sock, [response])
        sock.shutdown(gevent.socket.SHUT_WR)
        with gevent.Timeout(seconds, False):
            while limit > 0:
                data = sock.recv(65536)
                if not data:
                    break
                limit -= len(data)
    except OSError:
        pass   # the peer went away: nothing more to tell it
