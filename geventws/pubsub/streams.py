"""The Redis backend: one Redis Stream per channel (``XADD <prefix>ch:<channel> MAXLEN ~
<history> *``), which numbers the messages of every process in one order and keeps the last
ones for subscribers that come back.

Each process reads the streams of the channels it has subscribers for with one blocking
``XREAD`` on a connection of its own (one greenlet, whatever the number of channels), from
the last id it handed on, so a message is never skipped or handed on twice, also across a
lost connection: the reader then tries again with backoff and picks up where it was. A new
channel wakes the reader through a stream of this process's own (``<prefix>wake:<uuid>``)
so that it reads that one too. ``publish`` is one ``XADD``: when Redis cannot be reached it
raises ``BrokerUnavailable`` at once; nothing is buffered or retried (a retry after a lost
answer could publish twice).

Redis loses what it held when it restarts without persistence (``appendonly yes``): what
subscribers had not read by then, and the history.
"""
from __future__ import annotations

import logging
import random
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import gevent
from gevent import monkey

from . import BrokerUnavailable, HistoryLost, format_id, parse_id

if TYPE_CHECKING:
    from .._types import Payload
    from . import Broker, Id, _Channel

log = logging.getLogger('geventws.pubsub')

#: Milliseconds one XREAD waits for messages before it is sent again.
BLOCK_MS = 10000
#: Messages one XREAD takes at most (the reader yields to the others between reads).
READ_COUNT = 256
#: The reader's reconnecting: first delay, then doubling up to the cap (seconds), jittered.
RETRY_INITIAL, RETRY_CAP = 0.05, 2.0
#: Seconds for connecting and for a command's answer (publish, history).
TIMEOUT = 5.0
_TEXT, _BINARY = b'd', b'b'   # the field that holds a message says its type


class RedisBackend:

    def __init__(self, broker: Broker, url: str, prefix: str,
                 options: Dict[str, Any]) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        self.redis_module = redis
        self.broker = broker
        self.prefix = prefix
        self.url = url
        options.setdefault('socket_connect_timeout', TIMEOUT)
        options.setdefault('socket_timeout', TIMEOUT)
        options.setdefault('retry', Retry(NoBackoff(), 0))
        # (Any: redis-py's annotations cover both its byte and its str replies)
        self.client: Any = redis.Redis.from_url(url, **options)
        # The reader's own pool (of one connection): its XREAD blocks for seconds. Nothing
        # connects before the first use.
        reader_options = dict(options, socket_timeout=BLOCK_MS / 1000 + TIMEOUT,
                              retry=Retry(NoBackoff(), 0))
        self.reader_client: Any = redis.Redis.from_url(url, **reader_options)
        self.wake_key = '%swake:%s' % (prefix, uuid.uuid4().hex)
        self.wake_last: Any = b'0-0'
        self.errors = (redis.ConnectionError, redis.TimeoutError, OSError)
        self.reader: Any = None

    def _check_patched(self) -> None:
        """At first use, not when the broker is made: gunicorn's master may import the app
        (``--preload``) before its workers patch."""
        if not monkey.is_module_patched('socket'):
            raise RuntimeError('the Redis backend needs a monkey-patched process '
                               '(gevent.monkey.patch_all(), as geventws serve and the '
                               'gunicorn worker do): redis-py would block the hub')

    def key(self, channel: str) -> str:
        return self.prefix + 'ch:' + channel

    def _unavailable(self, exc: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable('Redis at %s: %s' % (self.url, exc))

    # -- what the broker asks -----------------------------------------------------------------

    def publish(self, channel: str, message: Payload) -> str:
        self._check_patched()
        field = _TEXT if isinstance(message, str) else _BINARY
        try:
            message_id = self.client.xadd(self.key(channel), {field: message},
                                          maxlen=self.broker.history, approximate=True)
        except self.errors as exc:
            raise self._unavailable(exc) from exc
        return message_id.decode('ascii')

    def activate(self, ch: _Channel) -> None:
        """Where ``ch`` stands: the id of its newest message, read from now on."""
        self._check_patched()
        try:
            newest = self.client.xrevrange(self.key(ch.name), count=1)
        except self.errors as exc:
            raise self._unavailable(exc) from exc
        ch.last = parse_id(newest[0][0].decode('ascii')) if newest else (0, 0)
        self._wake()

    def deactivate(self, ch: _Channel) -> None:
        pass   # the reader leaves the channel out of its next XREAD

    def backlog(self, ch: _Channel, since: Id, since_text: str
                ) -> List[Tuple[str, Payload]]:
        """The messages after ``since`` up to the last one handed on here (``ch.last``),
        which the reader moves on while this waits for Redis: it asks again until it has
        caught up with the reader."""
        key = self.key(ch.name)
        found: List[Tuple[str, Payload]] = []
        low = since
        first = True
        while True:
            high = ch.last
            assert high is not None
            if low >= high:
                return found
            try:
                with self.client.pipeline(transaction=False) as pipe:
                    pipe.xrange(key, '(' + format_id(low), format_id(high))
                    if first:   # after the range: a trim in between is seen too
                        pipe.execute_command('XINFO', 'STREAM', key)
                    replies = pipe.execute(raise_on_error=False)
            except self.errors as exc:
                raise self._unavailable(exc) from exc
            entries = replies[0]
            if isinstance(entries, Exception):
                raise entries
            if first:
                first = False
                self._check_kept(ch, since, since_text, replies[1])
            found.extend(_decode(entry) for entry in entries)
            low = high

    def _check_kept(self, ch: _Channel, since: Id, since_text: str, info: Any) -> None:
        """Trimming (``MAXLEN ~``) drops the oldest messages, and Redis says how many it
        dropped (``entries-added`` - ``length``), not which: once any were, a ``since``
        older than the oldest kept one may have missed some, and is reported (also when
        the one it missed was ``since`` itself: a resync more, never a gap)."""
        if isinstance(info, Exception):   # no such stream: nothing was ever kept
            return
        fields = info if isinstance(info, dict) else dict(zip(info[::2], info[1::2]))
        if int(fields.get(b'entries-added', 0)) <= int(fields.get(b'length', 0)):
            return
        first = fields.get(b'first-entry')
        last = fields.get(b'last-generated-id')
        oldest = parse_id(first[0].decode('ascii')) if first else None
        newest = parse_id(last.decode('ascii')) if last else (0, 0)
        if (oldest is None and since < newest) or (oldest is not None and oldest > since):
            raise HistoryLost(ch.name, since_text, last.decode('ascii') if last else None)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.kill(block=False)
            self.reader = None
        try:
            self.client.delete(self.wake_key)
        except self.errors:
            pass
        self.client.close()
        self.reader_client.close()

    # -- the reader -----------------------------------------------------------------------

    def _wake(self) -> None:
        """Make the reader start its next XREAD now, with the new channel in it."""
        if self.reader is None:
            self.reader = gevent.spawn(self._read_forever)
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.xadd(self.wake_key, {b'w': b''}, maxlen=1)
                pipe.expire(self.wake_key, 3600)
                pipe.execute()
        except self.errors as exc:
            raise self._unavailable(exc) from exc

    def _read_forever(self) -> None:
        failures = 0
        while not self.broker.closed:
            streams: Dict[str, Any] = {self.key(name): format_id(ch.last)
                       for name, ch in self.broker._channels.items() if ch.last is not None}
            if not streams:
                self.reader = None   # the next channel starts another
                return
            streams[self.wake_key] = self.wake_last
            try:
                replies = self.reader_client.xread(streams, count=READ_COUNT, block=BLOCK_MS)
            except self.errors as exc:
                failures += 1
                delay = min(RETRY_CAP, RETRY_INITIAL * 2 ** (failures - 1))
                if failures == 1:
                    log.warning('pubsub: Redis at %s: %s; reading again with backoff',
                                self.url, exc)
                gevent.sleep(delay / 2 + random.uniform(0, delay / 2))
                continue
            if failures:
                log.warning('pubsub: Redis at %s answers again (after %d attempts)',
                            self.url, failures)
                failures = 0
            self._hand_on(replies)
            gevent.sleep(0)   # the connections' turn after a batch of deliveries

    def _hand_on(self, replies: Any) -> None:
        channels = self.broker._channels
        prefix = len(self.key(''))
        for key, entries in replies or ():
            name = key.decode('utf-8')
            if name == self.wake_key:
                self.wake_last = entries[-1][0]
                continue
            ch = channels.get(name[prefix:])
            if ch is None or ch.last is None:
                continue
            batch = []
            for raw_id, fields in entries:
                text = raw_id.decode('ascii')
                message_id = parse_id(text)
                if message_id <= ch.last:
                    continue
                data = fields.get(_TEXT)
                message: Payload = data.decode('utf-8') if data is not None else \
                    fields.get(_BINARY, b'')
                batch.append((message_id, text, message))
            if batch:
                self.broker._deliver_batch(ch, batch)


def _decode(entry: Any) -> Tuple[str, Payload]:
    raw_id, fields = entry
    data = fields.get(_TEXT)
    return raw_id.decode('ascii'), data.decode('utf-8') if data is not None else \
        fields.get(_BINARY, b'')
