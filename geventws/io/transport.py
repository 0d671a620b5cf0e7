"""How a WebSocket's bytes move: read by the hub as they arrive, whatever the app is doing,
and written without blocking anyone but the greenlet that sends.

Reading never waits for the app. On a plain TCP socket the socket's io watcher runs
``_on_readable`` (or the compiled ``Channel.on_readable``) in the hub whenever bytes arrive:
one read into the thread's shared buffer, parsed at once, pings answered, the peer's close
answered, messages queued for ``receive()``/``onmessage``. No greenlet per connection waits
for this, so an idle connection costs no more than its objects. A socket whose reads must
block (TLS, or one given a timeout) gets a reader greenlet instead (``_read_loop``) doing the
same. When ``max_queue`` messages (or ``max_message_size`` bytes) wait for an app that is not
taking them, reading pauses until it does: the kernel's buffers fill and TCP pushes back on
the peer, and memory stays bounded.

Writing: frames that the kernel does not take at once wait, whole and in order, in an
``Outgoing`` buffer that the socket's write watcher empties (a flusher greenlet for TLS).
``send()`` waits, blocking its own greenlet only, until its frame is written: a peer that
does not read makes its sender wait, not the server grow. A frame is never written in part
and then followed by another: an interrupted ``send()`` leaves its frame queued whole (plain
TCP), or fails the connection (a TLS write cut in the middle). While received messages still
wait for the app, its answers are held back (corked, up to ``CORK_LIMIT`` bytes) and go out
together when it yields, in one ``sendmsg``; ``broadcast()`` queues without waiting at all.

This class holds methods only; its state lives in ``WebSocket``'s slots (declared for the type
checker in ``base.WebSocketBase``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import gevent
from gevent.event import Event
from greenlet import getcurrent, greenlet

from ..errors import ConnectionClosed
from ..limits import CORK_LIMIT
from ..protocol.events import MessageEvent
from ..protocol.frames import CLOSE_ABNORMAL
from ..speedups import WebSocketBase
from .base import input_waits
from .sockio import read_buffer, send_some, total_size

if TYPE_CHECKING:
    from .._types import Buffers


#: ``_paused`` once the read watcher is stopped (True: paused, the watcher still on).
STOPPED = 2


class Outgoing:
    """Frames accepted for the peer and not yet written, in order, and their size."""

    __slots__ = ('buffers', 'size', 'written', 'room', 'room_at', 'writing')

    def __init__(self, buffers: Buffers) -> None:
        self.buffers = buffers
        self.size = total_size(buffers)
        self.written = 0                 # bytes written so far
        self.room: Event | None = None   # set for waiting senders once room_at bytes went
        self.room_at = 0
        self.writing = False             # a write watcher or flusher is on it (else corked)

    def add(self, buffers: Buffers) -> None:
        self.buffers.extend(buffers)
        self.size += total_size(buffers)


class Transport(WebSocketBase):
    """The reading and writing of ``WebSocket`` (see the module docstring)."""

    if not TYPE_CHECKING:   # (its attributes are WebSocket's slots: the checker sees them
        __slots__ = ()      # declared in base.WebSocketBase)

    # -- reading ----------------------------------------------------------------------------

    def _start_reading(self) -> None:
        """From now on the connection's bytes are read as they come (``_attach``)."""
        if self._raw is None:
            self._reader = gevent.spawn(self._read_loop)
        else:
            self._reader = watcher = self._sock._read_event
            watcher.start(self._read_callback())

    def _read_callback(self) -> object:
        channel = self._channel
        return self._on_readable if channel is None else channel.on_readable

    def _on_readable(self) -> None:
        """Run by the hub: the socket has bytes, or its end."""
        if self._paused:
            self._hold_reading()
            return
        buffer = read_buffer()
        try:
            size = self._raw.recv_into(buffer)  # type: ignore[union-attr]   # plain TCP
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            size = None   # a reset
        if size:
            self._handle_data(buffer[:size])
        else:
            self._lost(size == 0)

    def _read_loop(self) -> None:
        """The reader greenlet of a socket whose reads block (TLS, a timeout)."""
        buffer = read_buffer()
        sock = self._sock
        while not self._over:
            paused = self._paused
            if paused:
                paused.wait()   # an Event here
                continue
            try:
                size = sock.recv_into(buffer)
            except OSError:   # a reset, or the socket's own timeout
                size = None
            if self._over:
                return
            if size:
                self._handle_data(buffer[:size])
            else:
                self._lost(size == 0)

    def _pause_reading(self) -> None:
        """The app has not taken what waits: read nothing more until it has. The read
        watcher stays on until bytes actually come (``_hold_reading``): an app that catches
        up before then costs no change to the poller."""
        if self._paused or self._over:
            return
        self._paused = Event() if isinstance(self._reader, greenlet) else True

    def _hold_reading(self) -> None:
        """Bytes came while reading is paused: the watcher stops until the app catches up."""
        self._reader.stop()
        self._paused = STOPPED

    def _resume_reading(self) -> None:
        paused = self._paused
        self._paused = False
        if paused is STOPPED:
            self._reader.start(self._read_callback())
        elif paused is not True:
            paused.set()

    def _lost(self, eof: bool) -> None:
        """The peer closed TCP (``eof``) or reset it."""
        closing = self._closing
        if closing is not None:   # after the close frames, as expected
            self._terminate(*closing)
        elif eof and getattr(self._conn, 'tcp_close_is_clean', False):
            self._terminate(1000, '', True)   # draft-75: a FIN between frames is its close
        else:
            # RFC 6455 7.1.5: a TCP close without a close frame is abnormal.
            self._terminate(CLOSE_ABNORMAL, '', False)

    def _wait_input(self) -> object:
        """Park this greenlet until the reader has something for it: the message it hands
        over directly (the compiled reader does, when nothing else waits), or None."""
        self._waiting = getcurrent()
        try:
            got = self._hub.switch()
        finally:
            self._waiting = None
        return got if type(got) is MessageEvent else None

    def _wake(self) -> None:
        """Resume the greenlet parked in ``_wait_input``, if any (in the hub)."""
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            waiting.switch(None)

    def _wake_soon(self) -> None:
        """``_wake`` now when this runs in the hub, else once this greenlet yields."""
        if self._waiting is not None:
            if getcurrent() is self._hub:
                self._wake()
            else:
                self._hub.loop.run_callback(self._wake)

    # -- writing ----------------------------------------------------------------------------

    @property
    def buffered_amount(self) -> int:
        """Bytes accepted by ``send()`` (or ``broadcast()``) and not yet written to the
        socket, as the browser API's ``bufferedAmount``."""
        out = self._out
        return 0 if out is None else out.size

    def _write(self, buffers: Buffers) -> None:
        """Frames the app sends (a fresh list, consumed); the caller holds the send lock. A
        dead socket ends the connection and raises ``ConnectionClosed``."""
        out = self._out
        queue = self._queue
        more_input = queue and input_waits(queue)
        if out is None:
            if more_input:   # answers to a batch: out together, once the app yields
                self._out = Outgoing(buffers)
                self._hub.loop.run_callback(self._flush)
            elif self._raw is None:
                self._write_blocking(buffers)
            else:
                self._push(buffers, True)
            return
        out.add(buffers)   # behind what waits already
        if not out.writing and (not more_input or out.size > CORK_LIMIT):
            self._flush()   # the last answer of a batch, or corked long enough

    def _push(self, buffers: Buffers, raising: bool = False) -> None:
        """Frames to write without ever blocking (control frames from the hub, broadcasts,
        what the kernel did not take): written now as far as the kernel takes them, the rest
        behind what waits already. ``raising``: a dead socket raises ``ConnectionClosed``
        rather than only ending the connection."""
        if self._over:
            if raising:
                raise ConnectionClosed(self.close_code or CLOSE_ABNORMAL,
                                       self.close_reason or '')
            return
        out = self._out
        if out is not None:
            out.add(buffers)
            return
        raw = self._raw
        if raw is not None:
            try:
                send_some(raw, buffers)
            except OSError as exc:
                if raising:
                    self._lose_connection(exc)
                self._terminate(CLOSE_ABNORMAL, str(exc), False)
                return
            if not buffers:
                return
        self._out = out = Outgoing(buffers)
        self._start_writing(out)

    def _buffer_rest(self, rest: Buffers) -> None:
        """What the kernel did not take of a frame the compiled ``send()`` wrote: left to
        the write watcher, and the sender waits while too much waits."""
        self._out = out = Outgoing(rest)
        self._start_writing(out)
        self._wait_writable()

    def _flush(self) -> None:
        """Start writing what was corked (run by the hub once the app yields)."""
        out = self._out
        if out is not None and not out.writing and not self._over:
            if self._raw is not None:
                self._on_writable()
                if self._out is not out:
                    return
            self._start_writing(out)

    def _start_writing(self, out: Outgoing) -> None:
        out.writing = True
        if self._raw is None:
            gevent.spawn(self._flush_blocking, out)
        else:
            self._sock._write_event.start(self._on_writable)

    def _on_writable(self) -> None:
        """Run by the hub: the socket takes bytes again."""
        out = self._out
        if out is None:
            self._sock._write_event.stop()
            return
        try:
            sent = send_some(self._raw, out.buffers)  # type: ignore[arg-type]
        except OSError as exc:
            self._terminate(CLOSE_ABNORMAL, str(exc), False)
            return
        out.size -= sent
        out.written += sent
        if not out.buffers:
            self._out = None
            self._sock._write_event.stop()
            self._written()
        if out.room is not None and (out.written >= out.room_at or self._out is not out):
            out.room.set()
            out.room = None

    def _flush_blocking(self, out: Outgoing) -> None:
        """The flusher greenlet of a socket whose writes block (TLS, a timeout)."""
        try:
            with self._send_lock:
                while out.buffers and not self._over:
                    buffers, out.buffers = out.buffers, []
                    self._write_blocking(buffers)
                    size = total_size(out.buffers)
                    out.written += out.size - size
                    out.size = size
                    if out.room is not None and out.written >= out.room_at:
                        out.room.set()
                        out.room = None
        except ConnectionClosed:
            pass
        finally:
            if self._out is out:
                self._out = None
                if not self._over:
                    self._written()
            if out.room is not None:
                out.room.set()

    def _write_blocking(self, buffers: Buffers) -> None:
        """Write ``buffers`` whole through gevent (TLS, a timeout): a write cut in the middle
        of a frame by a timeout or a kill fails the connection, as the peer would read the
        next frame as the rest of this one."""
        sock = self._sock
        started = False
        try:
            for buffer in buffers:
                view = memoryview(buffer).cast('B')
                while view:
                    sent = sock.send(view)
                    started = True
                    view = view[sent:]
        except OSError as exc:
            self._lose_connection(exc)
        except BaseException:
            if started:
                self._terminate(CLOSE_ABNORMAL, 'a write was interrupted', False)
            raise

    def _wait_writable(self) -> None:
        """After a send: wait until what it queued is written (corked answers excepted,
        while under ``CORK_LIMIT``). The frames are queued whole already: a timeout or a
        kill here loses nothing and corrupts nothing."""
        out = self._out
        if out is None or not out.writing and out.size <= CORK_LIMIT:
            return
        if not out.writing:
            self._flush()
        target = out.written + out.size
        while self._out is out and out.written < target and not self._over:
            room = out.room
            if room is None or out.room_at > target:
                if room is not None:
                    room.set()   # its waiters look again, and wait for theirs
                room = out.room = Event()
                out.room_at = target
            room.wait()
        if self._over and out.written < target:
            raise ConnectionClosed(self.close_code or CLOSE_ABNORMAL, self.close_reason or '')

    def _lose_connection(self, exc: OSError) -> NoReturn:
        """A write failed (``exc``): the connection is over."""
        self._terminate(CLOSE_ABNORMAL, str(exc), False)
        raise ConnectionClosed(CLOSE_ABNORMAL, str(exc)) from None

    # -- ending -----------------------------------------------------------------------------

    def _stop_io(self) -> None:
        """No more reading or writing: watchers stopped (before the socket closes, whose
        closing would otherwise take them for greenlets' waits), greenlets ended, what is
        buffered tried once more without blocking, waiting senders released."""
        reader = self._reader
        self._reader = None
        if isinstance(reader, greenlet):
            if reader is not getcurrent():
                reader.kill(block=False)
        elif reader is not None:
            reader.stop()
        paused = self._paused
        self._paused = False
        if isinstance(paused, Event):
            paused.set()
        out = self._out
        self._out = None
        if out is not None:
            if self._raw is not None:
                self._sock._write_event.stop()
                try:
                    send_some(self._raw, out.buffers)
                except OSError:
                    pass
            if out.room is not None:
                out.room.set()
