"""Every limit and timeout of geventws, with its safe default, in one place."""
from __future__ import annotations

from typing import Callable

#: Largest message (after reassembly and decompression) accepted from a peer; over it the
#: connection is closed with 1009. 16 MiB holds Autobahn's largest cases (9.x).
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: Seconds to wait for the peer's side of the closing handshake (and then for its TCP close)
#: before the TCP connection is dropped anyway.
CLOSE_TIMEOUT = 5.0

#: Bytes asked of the socket per read. A larger read costs nothing when less is available:
#: recv() returns what is there and the buffer is freed with the bytes object.
READ_SIZE = 256 * 1024

#: Messages received that may wait for the app (``receive()``, ``onmessage``) before reading
#: pauses, so that TCP pushes back on the peer: a queue never holds more than this many
#: messages, nor more than ``max_message_size`` bytes, plus what one read brought.
MAX_QUEUE = 16

#: Keepalive: seconds between pings, and seconds to wait for the peer's pong (or any other
#: data) before the connection is closed with 1011; None turns either off.
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0

#: Bytes of answers held back (corked) while received messages still wait for the app; past
#: it they are written, and the sender waits for the socket like any other.
CORK_LIMIT = 256 * 1024

#: Bytes ``broadcast()`` lets wait for a connection that reads slowly before it skips (or
#: closes) it.
WRITE_LIMIT = 1024 * 1024

#: Messages one connection hands to the app in a row before it lets the others run: a peer
#: that floods keeps nobody else waiting for longer than this much work (about a
#: millisecond; fewer per turn split pipelined batches: bench/RESULTS.md, "every connection
#: answers on its own").
FAIR_MESSAGES = 256

#: Seconds the answer to the peer's close may wait for the app to take the messages that
#: arrived before it (so that it can still answer them); with none waiting, it goes at once.
CLOSE_ANSWER_GRACE = 0.05

#: Payloads up to this size are joined with their frame header into one write; larger ones
#: are written after the header without the copy a concatenation would cost.
JOIN_LIMIT = 64 * 1024

#: Seconds a client may spend opening a connection: DNS, TCP connect, TLS and the opening
#: handshake together (``connect(url, timeout=...)``).
OPEN_TIMEOUT = 10.0

#: Largest HTTP response head a client reads before the opening handshake fails.
MAX_RESPONSE_HEAD = 64 * 1024

#: Seconds a request on a server connection has to deliver its whole head, counted from the
#: connection's start (or, on a keep-alive connection, from the next request's first byte):
#: past it the connection is closed without an answer, so that peers sending nothing or one
#: byte at a time (slowloris) cannot hold file descriptors. A draft-76 (hixie) client's 8
#: bytes after its head (they have no Content-Length) must come within it too, else 400.
HANDSHAKE_TIMEOUT = 10.0

#: Seconds an HTTP connection may wait idle for its next request (gunicorn's keepalive
#: default is 2; 5 leaves browsers' request bursts on one connection).
KEEPALIVE_TIMEOUT = 5.0

#: Largest request head (request line and header fields, in bytes); over it, 431.
MAX_REQUEST_HEAD = 64 * 1024

#: Seconds a refused request's connection stays open after the answer, reading what the
#: client still sends (at most 16 MiB), so that closing does not reset the answer away.
REFUSAL_LINGER = 2.0

#: Longest header line and most header fields of a request; over either, 431. (The request
#: line has gevent.pywsgi's limit of 8 KiB, over which it answers 414.)
MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 100

#: Bytes a compressed message may inflate to in the event loop's thread; one that inflates
#: to more is finished in the hub's threadpool. Inflating takes time in proportion to what
#: it makes, which the compressed size does not bound (16 KB of deflate make 16 MiB, about
#: 50 ms of zlib): this much is under a millisecond, and most messages fit in it without the
#: threadpool's round trip.
INFLATE_SLICE = 256 * 1024


def _seconds_or_off(text: str) -> float | None:
    return None if text.strip().lower() in ('none', 'off') else float(text)


def _switch(text: str) -> bool:
    """'1', 'true', 'yes', 'on' -> True; '0', 'false', 'no', 'off' -> False."""
    value = text.strip().lower()
    if value in ('1', 'true', 'yes', 'on'):
        return True
    if value in ('0', 'false', 'no', 'off'):
        return False
    raise ValueError('expected on or off, not %r' % text)


def _origins(text: str) -> list[str | None]:
    """Comma-separated origins; the word ``none`` stands for requests without an Origin."""
    return [None if item.lower() == 'none' else item
            for item in (part.strip() for part in text.split(',')) if item]


#: The options of a server's connections that it takes in every place it is configured
#: (``WebSocketHandler.configure(name=...)``, ``geventws serve --name``, the gunicorn
#: worker's ``GEVENTWS_NAME`` or ``GeventWebSocketWorker.configure``): name -> what makes its
#: value of a string.
SERVER_OPTIONS: dict[str, Callable[[str], object]] = {
    'max_message_size': int, 'max_queue': int, 'close_timeout': float,
    'ping_interval': _seconds_or_off, 'ping_timeout': _seconds_or_off, 'write_limit': int,
    'handshake_timeout': _seconds_or_off, 'keepalive_timeout': _seconds_or_off,
    'max_request_head': int, 'max_header_line': int, 'max_headers': int,
    'legacy': _switch, 'origins': _origins,
}
