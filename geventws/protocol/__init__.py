"""The protocol core of geventws: WebSocket as bytes in, events and bytes out, with no
sockets, no gevent, no threads and no clock (sans I/O, in the style of h11 and wsproto).

- ``frames``: RFC 6455 section 5 vocabulary: opcodes, close codes, frame headers, masking.
- ``reader``: the message reader, bytes in, whole messages and control frames out (its
  compiled twin: ``ext/geventws/protocol/_reader.pyx``; ``geventws.speedups`` chooses).
- ``connection``: one RFC 6455 connection, server or client role (``Connection``).
- ``handshake``: the RFC 6455 opening handshakes of both roles; ``http``: the HTTP around them.
- ``deflate``: permessage-deflate (RFC 7692), an ``Extension`` of the connection.
- ``hixie``: the draft-75/76 handshake and connection (server role).
- ``events``: what the core reports and the app's callbacks receive.

The I/O layer (``geventws.io``) drives these objects with a gevent socket.
"""
from ..errors import ConnectionClosed, HandshakeError, ProtocolError, UnsupportedOperation
from .connection import CLOSED, CLOSING, OPEN, Connection, Extension
from .events import (CloseEvent, CloseReceived, ErrorEvent, Failure, MessageEvent, OpenEvent,
                     Ping, Pong)
from .frames import (CLOSE_ABNORMAL, CLOSE_NO_STATUS, OP_BINARY, OP_CLOSE, OP_CONTINUATION,
                     OP_PING, OP_PONG, OP_TEXT, encode_close_payload, parse_close_payload)
from .hixie import HixieConnection

__all__ = ['Connection', 'HixieConnection', 'Extension', 'OPEN', 'CLOSING', 'CLOSED',
           'MessageEvent', 'Ping', 'Pong', 'CloseReceived', 'Failure', 'OpenEvent',
           'CloseEvent', 'ErrorEvent', 'ProtocolError', 'ConnectionClosed', 'HandshakeError',
           'UnsupportedOperation', 'OP_CONTINUATION', 'OP_TEXT', 'OP_BINARY', 'OP_CLOSE',
           'OP_PING', 'OP_PONG', 'CLOSE_NO_STATUS', 'CLOSE_ABNORMAL', 'encode_close_payload',
           'parse_close_payload']
