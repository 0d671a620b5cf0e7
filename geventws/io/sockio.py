"""Reads and writes of the WebSocket hot path with the fewest syscalls and Python calls.

gevent's socket methods are written for every kind of socket: ``sendall`` asks the kernel for
the send buffer size (a ``getsockopt``) and loops over chunks even for 40 bytes, and
``recv_into`` tries the read first, which after a short read is an EAGAIN syscall and an
exception before it waits. For a plain gevent TCP socket with no timeout, these helpers call
the OS-level socket under it directly, write a list of frames with one ``sendmsg``, and after
a read that did not fill the buffer wait for readability before reading again. Anything else
(TLS, a socket with a timeout) goes through gevent's own methods.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gevent.socket
from greenlet import getcurrent

from ..protocol import Connection
from ..speedups import Channel

if TYPE_CHECKING:
    from .._types import Buffers, RawSocket, Socket
    from ..protocol.hixie import HixieConnection

#: Buffers given to one ``sendmsg`` (Linux refuses more than 1024).
IOV_MAX = 1024


def raw_socket(sock: Socket) -> RawSocket | None:
    """The non-blocking OS-level socket under ``sock`` when it is a plain gevent socket
    (whose methods only add the waiting), else None."""
    if type(sock) is gevent.socket.socket:
        return sock._sock
    return None


def open_channel(sock: Socket, raw: RawSocket | None,
                 conn: Connection | HixieConnection, buffer: bytearray) -> Any:
    """The compiled ``Channel`` (geventws.io._channel) for RFC 6455 connection ``conn`` on
    ``sock`` when it can serve it: a plain gevent socket (``raw`` is its OS-level socket)
    with no timeout, and the speedups built. Else None, and the helpers below do the work.
    ``buffer``: the thread's shared read buffer (a bytearray)."""
    if (Channel is None or raw is None or sock.timeout is not None
            or type(conn) is not Connection):
        return None
    return Channel(sock, raw, conn, buffer)


def recv_into(sock: Socket, raw: RawSocket | None, buffer: memoryview,
              wait_first: bool) -> int:
    """Read into ``buffer``; ``wait_first``: the last read emptied the socket, so wait
    for readability before the syscall rather than after an EAGAIN."""
    if raw is None or sock.timeout is not None:
        return sock.recv_into(buffer)
    if wait_first:
        wait_readable(sock)
    while True:
        try:
            return raw.recv_into(buffer)
        except BlockingIOError:
            pass
        wait_readable(sock)


def wait_readable(sock: Socket) -> None:
    """Park this greenlet until ``sock`` (a plain gevent socket with no timeout) is readable.

    The socket's own io watcher switches straight back to this greenlet, without the
    ``Waiter`` and the three Cython calls of gevent's ``sock._wait``: each message costs
    fewer calls, and an idle connection's greenlet, parked here, keeps a smaller saved C
    stack (bench/RESULTS.md, "Measurements behind the code"). A ``gevent.Timeout`` or a kill
    still arrives as an exception from ``switch()``; a wake-up for another reason is
    harmless, as the caller reads and waits again on EAGAIN. Another greenlet already waiting
    on the socket gets
    gevent's own answer (``ConcurrentObjectUseError``), not its wake-up taken away."""
    watcher = sock._read_event
    if watcher.callback is not None:
        sock._wait(watcher)   # raises: one greenlet waits on a socket at a time
        return
    watcher.start(getcurrent().switch)
    try:
        sock.hub.switch()
    finally:
        watcher.stop()


def send_some(raw: RawSocket, buffers: Buffers) -> bool:
    """Write what the kernel takes now of ``buffers`` (a list, consumed in place) without
    blocking; True when all of it went."""
    while buffers:
        try:
            sent = raw.sendmsg(buffers[:IOV_MAX]) if len(buffers) > 1 else raw.send(buffers[0])
        except BlockingIOError:
            return False
        _consume(buffers, sent)
    return True


def _consume(buffers: Buffers, sent: int) -> None:
    """Drop ``sent`` bytes from the front of ``buffers``."""
    done = 0
    while done < len(buffers) and sent >= len(buffers[done]):
        sent -= len(buffers[done])
        done += 1
    del buffers[:done]
    if sent:
        buffers[0] = memoryview(buffers[0])[sent:]


def send_all(sock: Socket, raw: RawSocket | None, buffers: Buffers) -> None:
    """Write all of ``buffers`` (a list, consumed): the direct syscall while the kernel
    takes it, gevent's waiting only when it would block."""
    if raw is not None:
        if len(buffers) == 1:   # the common case, one frame: no send_some call
            try:
                sent = raw.send(buffers[0])
            except BlockingIOError:
                sent = 0
            if sent == len(buffers[0]):
                return
            _consume(buffers, sent)
        if send_some(raw, buffers):
            return
    for buf in buffers:
        sock.sendall(buf)
