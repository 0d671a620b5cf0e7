"""``broadcast(sockets, message)``: one message to many connections, never waiting for any.

The frame is built once per distinct encoding: connections whose frames come out alike
(server connections without compression; compressed ones that reset their compressor after
every message, with the same settings; hixie ones) share one, while a client's (masked with
its own key) or a compressed connection with context takeover gets its own. Each connection
gets it queued behind what it already has and written as far as its socket takes it now
(``Transport._push``); the hub writes the rest. A connection that holds more than its
``write_limit`` bytes already is skipped (``on_full='skip'``: logged at most once a second
per connection) or closed with 1008 (``on_full='close'``), so one slow reader costs the
others nothing and the server holds at most ``write_limit`` per connection.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Hashable, Iterable

import gevent

from ..errors import ConnectionClosed, UnsupportedOperation
from .base import CONNECTING, OPEN

if TYPE_CHECKING:
    from .._types import Buffers, Payload
    from .websocket import WebSocket

log = logging.getLogger('geventws')

#: The close code of a connection that ``on_full='close'`` closes (RFC 6455 7.4.1: policy).
FULL_CODE, FULL_REASON = 1008, 'write limit exceeded'


def broadcast(sockets: Iterable[WebSocket], message: Payload, on_full: str = 'skip') -> int:
    """Send ``message`` (``str``: text, bytes-like: binary) to every open WebSocket in
    ``sockets`` without blocking (a server's not yet accepted one is accepted first, as by
    ``send()``); returns how many took it. A connection over its
    ``write_limit`` is skipped (``on_full='skip'``) or closed with 1008 (``'close'``)."""
    return broadcast_many(sockets, [message], on_full)


def broadcast_many(sockets: Iterable[WebSocket], messages: list[Payload],
                   on_full: str = 'skip') -> int:
    """``broadcast()`` of several messages in a row, each connection taking the frames of
    all of them in one write: the kernel's work per write is most of a delivery's cost, so
    a backlog goes out in fewer, larger writes."""
    if on_full not in ('skip', 'close'):
        raise ValueError("on_full must be 'skip' or 'close', not %r" % (on_full,))
    shared: dict[Hashable, Buffers] = {}
    taken = 0
    for ws in sockets:
        if not takes_more(ws, on_full):
            continue
        conn: Any = ws._conn
        key = conn.frame_key()
        if conn._fragment_opcode or (key is None and ws._send_lock.locked()):
            # A fragmented message is under way, or its compressor in use: ours after it.
            gevent.spawn(_send_later, ws, messages)
            taken += 1
            continue
        frames: Buffers | None
        try:
            if key is None:
                frames = _frames(conn, messages)
            else:
                frames = shared.get(key)
                if frames is None:
                    frames = shared[key] = _frames(conn, messages)
                elif conn.close_sent is not None:
                    continue
        except (ConnectionClosed, UnsupportedOperation):
            continue
        ws._push(list(frames))   # a copy: _push consumes it, and the frames are shared
        taken += 1
    return taken


def _frames(conn: Any, messages: list[Payload]) -> Buffers:
    return [frame for message in messages for frame in conn.send_message(message, offload=False)]


def takes_more(ws: WebSocket, on_full: str) -> bool:
    """Whether ``ws`` takes what a broadcast sends it now: a server's socket not yet accepted
    is accepted first (as by ``send()``), a closed one takes nothing, and one over its
    ``write_limit`` is skipped or closed as ``on_full`` says."""
    if ws.ready_state == CONNECTING and ws._acceptor is not None:
        ws.accept()
    if ws.ready_state != OPEN:
        return False
    out = ws._out
    if out is not None and out.size > ws.write_limit:
        _full(ws, on_full)
        return False
    return True


def _full(ws: WebSocket, on_full: str) -> None:
    if on_full == 'close':
        ws._fail_now(FULL_CODE, FULL_REASON)
        return
    now = ws._hub.loop.now()
    if now - ws._skipped_at >= 1.0:
        ws._skipped_at = now
        log.warning('broadcast: a message skipped for %s: %d bytes wait to be written '
                    '(write_limit %d)', _peer(ws), ws.buffered_amount, ws.write_limit)


def _peer(ws: WebSocket) -> str:
    environ = ws.environ or {}
    return environ.get('REMOTE_ADDR') or ws.url or 'a connection'


def _send_later(ws: WebSocket, messages: list[Payload]) -> None:
    try:
        for message in messages:
            ws.send(message)
    except ConnectionClosed:
        pass
