"""gevent-websocket's exception classes: geventws's own, under their names there."""
from ..errors import ProtocolError, WebSocketError

__all__ = ['WebSocketError', 'ProtocolError', 'FrameTooLargeException']


class FrameTooLargeException(ProtocolError):
    """A frame over the size limit (gevent-websocket's name; geventws closes such a
    connection with 1009 and raises nothing of its own)."""

    def __init__(self, reason: str = 'frame too large', code: int = 1009) -> None:
        super().__init__(reason, code)
