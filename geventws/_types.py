"""Type aliases of the annotations of geventws, for the type checker (``make typecheck``).

The modules that use them import this one under ``typing.TYPE_CHECKING`` only, with
``from __future__ import annotations``, so nothing imports it at run time; it still imports
without gevent, as the protocol core must.
"""
import _socket
from typing import Any, Dict, Iterable, List, Mapping, Tuple, Union

from .errors import ProtocolError
from .protocol.events import (CloseEvent, CloseReceived, Compressed, ErrorEvent, Failure,
                              MessageEvent, OpenEvent, Ping, Pong)

#: A binary payload: what ``send()`` takes as one binary message.
BytesLike = Union[bytes, bytearray, memoryview]
#: A text or binary payload as given to ``send()`` (``str``: text).
Payload = Union[str, bytes, bytearray, memoryview]
#: A message as received: ``str`` for text, ``bytes`` for binary.
Data = Union[str, bytes]
#: Frames to write: a fresh list of buffers, consumed by the write.
Buffers = List[BytesLike]
#: A gevent socket, plain or TLS (``gevent.ssl.SSLSocket``, a subclass). gevent ships no
#: types, so to the type checker it is ``Any``.
Socket = Any
#: The non-blocking OS-level socket under a plain gevent socket (its ``_sock``).
RawSocket = _socket.socket
#: A WSGI environ.
Environ = Dict[str, Any]
#: HTTP header fields: pairs, or a mapping of names to values.
Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]]]

#: Parsed Sec-WebSocket-Extensions: ``[(name, [(param, value or None), ...]), ...]``.
ExtensionOffers = List[Tuple[str, List[Tuple[str, Union[str, None]]]]]

#: What the protocol core reports for received bytes (``Connection.receive_data``).
Event = Union[MessageEvent, Compressed, Ping, Pong, CloseReceived, Failure]
#: What a message reader's ``feed`` returns: a whole message, ``(opcode, payload)`` for a
#: control frame or a compressed message, or the error that ended the stream.
ReaderItem = Union[MessageEvent, Tuple[int, bytes], ProtocolError]
#: What the app's callbacks and ``run_forever`` see.
AppEvent = Union[OpenEvent, MessageEvent, ErrorEvent, CloseEvent]
#: What waits in a WebSocket's queue: the app's events and the core's that are answered in
#: their turn (the peer's close, a failure).
QueuedEvent = Union[AppEvent, Compressed, CloseReceived, Failure]
