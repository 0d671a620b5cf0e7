"""Every limit and timeout of geventws, with its safe default, in one place."""

#: Largest message (after reassembly and decompression) accepted from a peer; over it the
#: connection is closed with 1009. 16 MiB holds Autobahn's largest cases (9.x).
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: Seconds to wait for the peer's side of the closing handshake (and then for its TCP close)
#: before the TCP connection is dropped anyway.
CLOSE_TIMEOUT = 5.0

#: Bytes asked of the socket per read. A larger read costs nothing when less is available:
#: recv() returns what is there and the buffer is freed with the bytes object.
READ_SIZE = 256 * 1024

#: A read shorter than this most likely emptied the socket (a lone small message), so the
#: next read waits for readability first rather than paying an EAGAIN; after a longer one
#: (a large message streaming in) the next read is tried at once.
SMALL_READ = 4096

#: Payloads up to this size are joined with their frame header into one write; larger ones
#: are written after the header without the copy a concatenation would cost.
JOIN_LIMIT = 64 * 1024

#: Seconds a client may spend opening a connection: DNS, TCP connect, TLS and the opening
#: handshake together (``connect(url, timeout=...)``).
OPEN_TIMEOUT = 10.0

#: Largest HTTP response head a client reads before the opening handshake fails.
MAX_RESPONSE_HEAD = 64 * 1024

#: Seconds a draft-76 (hixie) client has to send the 8 bytes that follow its request headers
#: (they carry no Content-Length) before the handshake is refused with 400.
HIXIE76_KEY3_TIMEOUT = 10.0

#: Longest request header line and most lines in a request head (its blank last line
#: included): http.client's limits, which gevent.pywsgi applies, kept so that a request is
#: refused with 400 exactly when pywsgi alone would refuse it (geventws.io.requesthead).
MAX_HEADER_LINE = 65536
MAX_HEADER_LINES = 100
