"""The in-process backend: each channel's history in a deque, a message handed to the
subscribers while ``publish()`` runs.

Ids have Redis's form, milliseconds-sequence, with the milliseconds of the broker's start
for all of them: an id from before a restart of the process (a page that reconnects to the
new server) is older than anything kept, and is reported as ``HistoryLost``.
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Deque, Dict, List, Tuple

from . import HistoryLost, format_id

if TYPE_CHECKING:
    from .._types import Payload
    from . import Broker, Id, _Channel


class MemoryBackend:

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.epoch = int(time.time() * 1000)
        self.sequence = 0
        self.kept: Dict[str, Deque[Tuple[Id, str, Payload]]] = {}
        #: per channel, the id of the newest message no longer kept
        self.dropped: Dict[str, Id] = {}

    def publish(self, channel: str, message: Payload) -> str:
        self.sequence += 1
        message_id = (self.epoch, self.sequence)
        text = format_id(message_id)
        kept = self.kept.get(channel)
        if kept is None:
            kept = self.kept[channel] = deque()
        if len(kept) >= self.broker.history:
            self.dropped[channel] = kept.popleft()[0]
        kept.append((message_id, text, message))
        ch = self.broker._channels.get(channel)
        if ch is not None and ch.last is not None:
            self.broker._deliver(ch, message_id, text, message)
        return text

    def activate(self, ch: _Channel) -> None:
        kept = self.kept.get(ch.name)
        ch.last = kept[-1][0] if kept else (self.epoch, 0)

    def backlog(self, ch: _Channel, since: Id, since_text: str) -> List[Tuple[str, Payload]]:
        kept = self.kept.get(ch.name) or ()
        dropped = self.dropped.get(ch.name, (self.epoch, 0))
        if since < dropped:
            raise HistoryLost(ch.name, since_text, kept[-1][1] if kept else None)
        return [(text, message) for message_id, text, message in kept if message_id > since]

    def deactivate(self, ch: _Channel) -> None:
        pass

    def close(self) -> None:
        self.kept.clear()
