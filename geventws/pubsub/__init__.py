"""``Broker``: channels that WebSockets subscribe to and anyone publishes on, in this process
or, through Redis, across processes and hosts::

    broker = Broker()                               # this process only
    broker = Broker('redis://127.0.0.1:6379/0')     # every process with the same Redis

    broker.subscribe(ws, room, since=last_id)       # what came after last_id, then live
    message_id = broker.publish(room, 'hello')

Every message gets an id (a string such as ``'1700000000000-3'``, increasing per channel) and
each channel keeps its last ``history`` messages, so a client that lost its connection can
come back with the last id it saw and miss nothing. When that id is older than the history,
``subscribe`` raises ``HistoryLost`` instead, and the app resynchronizes its client.

This module keeps who subscribed to what in this process and hands each message to them
through ``broadcast()``, which never waits for a slow reader (its ``on_full`` policy
applies); messages that come together (a backlog read from Redis at once) go to each
subscriber in one write. Where messages come from and how they are numbered and kept is the backend's:
``memory`` (the default) or ``streams`` (Redis Streams, one per channel; redis-py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Tuple

from gevent.event import Event

from ..io.base import CLOSED
from ..io.broadcast import broadcast, broadcast_many

if TYPE_CHECKING:
    from .._types import Payload
    from ..io.websocket import WebSocket

#: An id as numbers: (milliseconds, sequence), ordered as the messages are.
Id = Tuple[int, int]
#: Messages each channel keeps for subscribers that come back (``since=``).
HISTORY = 1000

__all__ = ['Broker', 'HistoryLost', 'BrokerUnavailable', 'HISTORY']


class HistoryLost(LookupError):
    """``subscribe(..., since=ID)``: messages published after ID are no longer kept (or ID
    comes from before this broker's history began), so the subscriber cannot catch up
    message by message. It was not subscribed. ``last`` is the channel's newest id now
    (None: nothing kept): send the client the current state, then subscribe it with
    ``since=last`` to miss nothing after that state."""

    def __init__(self, channel: str, since: str, last: str | None) -> None:
        super().__init__('channel %r: the messages after %s are no longer kept'
                         % (channel, since))
        self.channel, self.since, self.last = channel, since, last


class BrokerUnavailable(ConnectionError):
    """The broker's backend (Redis) cannot be reached: the message was not published, or
    the subscription not made. Subscriptions already made stay, and catch up once it is
    back."""


def parse_id(value: str) -> Id:
    """``'1700000000000-3'`` -> ``(1700000000000, 3)``; ValueError if it is no id."""
    ms, dash, seq = str(value).partition('-')
    try:
        parsed = (int(ms), int(seq) if dash else 0)
    except ValueError:
        raise ValueError('%r is not a message id (milliseconds-sequence)' % (value,)) from None
    if parsed[0] < 0 or parsed[1] < 0:
        raise ValueError('%r is not a message id (milliseconds-sequence)' % (value,))
    return parsed


def format_id(value: Id) -> str:
    return '%d-%d' % value


class _Channel:
    """A channel with subscribers in this process. ``last`` is the id of the last message
    handed to them (None until the backend said where the channel stands); ``waiting``
    holds subscribers who came back with a newer id than that (another process was ahead):
    they join at the message with their id."""

    __slots__ = ('name', 'subscribers', 'waiting', 'last', 'ready')

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscribers: Dict[WebSocket, None] = {}
        self.waiting: Dict[WebSocket, Id] = {}
        self.last: Id | None = None
        self.ready = Event()


class Broker:
    """Channels of messages for WebSockets. ``url``: None for this process only, or
    ``redis://host:port/db`` (``rediss://`` with TLS) for every process that uses the same
    Redis. ``history``: messages kept per channel for ``since=``. ``on_full``: what
    ``broadcast()`` does with a subscriber over its ``write_limit`` (``'skip'`` the message
    or ``'close'`` the connection). ``envelope(id, message) -> message``: what subscribers
    get instead of the message as published, for example the id inside the app's JSON.

    The Redis backend needs a monkey-patched process (``geventws serve`` and the gunicorn
    worker are; its first ``publish`` or ``subscribe`` says so otherwise); ``redis_options``
    go to ``redis.Redis.from_url``."""

    def __init__(self, url: str | None = None, *, history: int = HISTORY,
                 on_full: str = 'skip',
                 envelope: Callable[[str, Payload], Payload] | None = None,
                 prefix: str = 'geventws:', **redis_options: Any) -> None:
        if history < 1:
            raise ValueError('history must keep at least one message')
        if on_full not in ('skip', 'close'):
            raise ValueError("on_full must be 'skip' or 'close', not %r" % (on_full,))
        self.url = url
        self.history = history
        self.on_full = on_full
        self.envelope = envelope
        self.closed = False
        self._channels: Dict[str, _Channel] = {}
        #: each subscribed socket: its channels, and the callback its end runs
        self._sockets: Dict[WebSocket, Tuple[set[str], Callable[[Any], None]]] = {}
        self._backend: Any
        if url is None:
            if redis_options:
                raise TypeError('options for Redis without a Redis URL: %s'
                                % ', '.join(sorted(redis_options)))
            from .memory import MemoryBackend
            self._backend = MemoryBackend(self)
        else:
            from .streams import RedisBackend
            self._backend = RedisBackend(self, url, prefix, redis_options)

    def __repr__(self) -> str:
        return '<Broker %s, %d channels here>' % (self.url or 'in this process',
                                                  len(self._channels))

    # -- the API ----------------------------------------------------------------------------

    def publish(self, channel: str, message: Payload) -> str:
        """Publish ``message`` (``str``: text, bytes-like: binary) on ``channel``; returns its
        id. Raises ``BrokerUnavailable`` when Redis cannot be reached (nothing is buffered:
        the caller knows at once that the message is not out)."""
        self._check_open()
        if not isinstance(message, str):
            message = bytes(message)
        return self._backend.publish(channel, message)

    def subscribe(self, ws: WebSocket, channel: str, since: str | None = None) -> None:
        """Send ``ws`` every message published on ``channel`` from now on, in order; with
        ``since`` (an id it saw), first those published after that one, with no gap and
        none twice. Raises ``HistoryLost`` (``ws`` not subscribed) when they are no longer
        all kept, ``ValueError`` when ``since`` is no id, ``BrokerUnavailable`` when Redis
        cannot be reached. A closed ``ws`` is unsubscribed from everything."""
        self._check_open()
        floor = None if since is None or since == '' else parse_id(since)
        while True:
            ch = self._join_channel(channel)
            if ws in ch.subscribers or ws in ch.waiting:
                return
            try:
                backlog = self._backend.backlog(ch, floor, since) if floor is not None else ()
            except BaseException:
                self._drop_if_unused(ch)   # (a channel nobody here reads is not read)
                raise
            # (nothing below yields: no message can come between the backlog and the live
            # stream)
            if self._channels.get(channel) is ch:
                break
        if ws.ready_state == CLOSED:
            self._drop_if_unused(ch)
            return
        for message_id, message in backlog:
            broadcast((ws,), self._wrap(message_id, message), self.on_full)
        last = ch.last
        assert last is not None
        if floor is not None and floor > last:
            ch.waiting[ws] = floor
        else:
            ch.subscribers[ws] = None
        self._track(ws, channel)

    def unsubscribe(self, ws: WebSocket, channel: str) -> None:
        """Stop sending ``channel``'s messages to ``ws`` (nothing if it was not subscribed)."""
        ch = self._channels.get(channel)
        if ch is not None:
            ch.subscribers.pop(ws, None)
            ch.waiting.pop(ws, None)
            self._drop_if_unused(ch)
        tracked = self._sockets.get(ws)
        if tracked is not None:
            tracked[0].discard(channel)
            if not tracked[0]:
                self._untrack(ws)

    def channels(self, ws: WebSocket) -> set[str]:
        """The channels ``ws`` is subscribed to here."""
        tracked = self._sockets.get(ws)
        return set(tracked[0]) if tracked else set()

    def subscribers(self, channel: str) -> int:
        """How many WebSockets in this process are subscribed to ``channel``."""
        ch = self._channels.get(channel)
        return len(ch.subscribers) + len(ch.waiting) if ch is not None else 0

    def close(self) -> None:
        """Unsubscribe everyone (their connections stay open) and let go of Redis."""
        if self.closed:
            return
        self.closed = True
        for ws in list(self._sockets):
            self._untrack(ws)
        self._channels.clear()
        self._backend.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for the backends -------------------------------------------------------------------

    def _deliver(self, ch: _Channel, message_id: Id, id_text: str, message: Payload) -> None:
        """A message for ``ch``'s subscribers here, in the channel's order; the backends
        call this once per message, and never for one at or before ``ch.last``."""
        ch.last = message_id
        if ch.subscribers:
            broadcast(ch.subscribers, self._wrap(id_text, message), self.on_full)
        if ch.waiting:
            for ws, floor in list(ch.waiting.items()):
                if floor <= message_id:
                    del ch.waiting[ws]
                    ch.subscribers[ws] = None

    def _deliver_batch(self, ch: _Channel, batch: list[tuple[Id, str, Payload]]) -> None:
        """Messages for ``ch`` that came together (a backlog read at once): each
        subscriber's frames of all of them go out in one write, not one each. The kernel's
        work per write is most of a delivery's cost, so a process that falls behind
        catches up with fewer, larger writes."""
        if len(batch) == 1 or ch.waiting:
            for message_id, id_text, message in batch:
                self._deliver(ch, message_id, id_text, message)
            return
        ch.last = batch[-1][0]
        if ch.subscribers:
            broadcast_many(ch.subscribers, [self._wrap(id_text, message)
                                            for _, id_text, message in batch], self.on_full)

    # -- bookkeeping ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError('the broker is closed')

    def _wrap(self, message_id: str, message: Payload) -> Payload:
        envelope = self.envelope
        return message if envelope is None else envelope(message_id, message)

    def _join_channel(self, name: str) -> _Channel:
        """The channel, active here: the backend knows where it stands (``ch.last``)."""
        ch = self._channels.get(name)
        if ch is None:
            ch = self._channels[name] = _Channel(name)
            try:
                self._backend.activate(ch)
            except BaseException:
                if self._channels.get(name) is ch:
                    del self._channels[name]
                raise
            finally:
                ch.ready.set()
        elif not ch.ready.is_set():
            ch.ready.wait()
            if ch.last is None:   # the one activating it failed
                return self._join_channel(name)
        return ch

    def _drop_if_unused(self, ch: _Channel) -> None:
        if not ch.subscribers and not ch.waiting and self._channels.get(ch.name) is ch:
            del self._channels[ch.name]
            self._backend.deactivate(ch)

    def _track(self, ws: WebSocket, channel: str) -> None:
        """Remember ``ws``'s channel; its end (``_terminate`` sets ``_ended``) unsubscribes
        it from all of them, whether the app returns or not."""
        tracked = self._sockets.get(ws)
        if tracked is not None:
            tracked[0].add(channel)
            return

        def ended(_: object) -> None:
            if self._sockets.get(ws) is not None:
                self._untrack(ws)

        self._sockets[ws] = ({channel}, ended)
        if ws._ended is None:
            ws._ended = Event()
        ws._ended.rawlink(ended)

    def _untrack(self, ws: WebSocket) -> None:
        channels, ended = self._sockets.pop(ws)
        if ws._ended is not None:
            ws._ended.unlink(ended)
        for name in channels:
            ch = self._channels.get(name)
            if ch is not None:
                ch.subscribers.pop(ws, None)
                ch.waiting.pop(ws, None)
                self._drop_if_unused(ch)

