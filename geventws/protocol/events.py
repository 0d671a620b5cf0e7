"""Events: what the protocol core reports and what the app's callbacks receive.

The objects the app sees (``MessageEvent``, ``CloseEvent``, ...) follow the browser API: a
``type`` and the fields of the standard events. The core's control-frame events (``Ping``,
``Pong``, ``CloseReceived``, ``Failure``) stay inside the I/O layer.
"""
from ..errors import ProtocolError


class OpenEvent:
    __slots__ = ()
    type = 'open'


class MessageEvent:
    """A whole message: ``data`` is ``str`` for text and ``bytes`` for binary."""

    __slots__ = ('data',)
    type = 'message'

    def __init__(self, data: str | bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return 'MessageEvent(%r)' % (self.data[:40],)

    def __eq__(self, other: object) -> bool:
        return type(other) is MessageEvent and type(other.data) is type(self.data) \
            and other.data == self.data

    __hash__ = None  # type: ignore[assignment]


class ErrorEvent:
    """The connection failed; ``error`` is the exception that says why."""

    __slots__ = ('error',)
    type = 'error'

    def __init__(self, error: Exception) -> None:
        self.error = error

    @property
    def message(self) -> str:
        return str(self.error)


class CloseEvent:
    """The connection is closed. ``code`` is the peer's close code (1005 when its close frame
    had none), or 1006 when no close frame was received (RFC 6455 7.1.5)."""

    __slots__ = ('code', 'reason', 'was_clean')
    type = 'close'

    def __init__(self, code: int, reason: str = '', was_clean: bool = True) -> None:
        self.code = code
        self.reason = reason
        self.was_clean = was_clean

    def __repr__(self) -> str:
        return 'CloseEvent(%r, %r, was_clean=%r)' % (self.code, self.reason, self.was_clean)


class Ping:
    __slots__ = ('payload',)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Pong:
    __slots__ = ('payload',)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Compressed:
    """A compressed message not inflated yet (``Connection.decompress``): the I/O layer
    queues it as it arrives and inflates it when the app takes it."""

    __slots__ = ('opcode', 'payload')

    def __init__(self, opcode: int, payload: bytes) -> None:
        self.opcode = opcode
        self.payload = payload


class CloseReceived:
    """The peer's close frame. If we have not sent ours, the I/O layer answers it (RFC 6455
    5.5.1), after the messages received before it when the app has yet to take them."""

    __slots__ = ('code', 'reason')

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Failure:
    """The peer broke the protocol; the I/O layer fails the connection with
    ``send_failure_close()`` (code ``error.code``), after the messages before it when the app
    has yet to take them."""

    __slots__ = ('error',)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error
