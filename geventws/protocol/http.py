"""The HTTP/1.1 around an opening handshake: header tokens, what both protocol families ask
of the request that carries an upgrade, subprotocol choice, and the client's reading of the
server's response head. Sans I/O, shared by ``handshake`` (RFC 6455) and ``hixie``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..errors import HandshakeError

if TYPE_CHECKING:
    from .._types import Environ

#: The characters of an HTTP token (RFC 7230 3.2.6 tchar).
TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def header_tokens(value: str | None) -> list[str]:
    """The comma-separated tokens of a header value, lower-cased (RFC 7230 section 7)."""
    return [t.strip().lower() for t in (value or '').split(',') if t.strip()]


def is_websocket_upgrade(environ: Environ) -> bool:
    """True when the request asks to upgrade to WebSocket (any draft): such a request is
    either answered with a WebSocket handshake or rejected with 400/426, never passed on."""
    return 'websocket' in header_tokens(environ.get('HTTP_UPGRADE'))


def check_upgrade_request(environ: Environ) -> None:
    """What both families ask of the HTTP request that carries the upgrade."""
    if environ.get('REQUEST_METHOD') != 'GET':
        raise HandshakeError('WebSocket handshake must use GET, not %s'
                             % environ.get('REQUEST_METHOD'))
    if environ.get('SERVER_PROTOCOL', 'HTTP/1.0') in ('HTTP/0.9', 'HTTP/1.0'):
        raise HandshakeError('WebSocket handshake needs HTTP/1.1')
    if 'upgrade' not in header_tokens(environ.get('HTTP_CONNECTION')):
        raise HandshakeError("Connection header must contain the 'upgrade' token")
    if not environ.get('HTTP_HOST'):
        raise HandshakeError('Host header missing')


def select_protocol(offered: Iterable[str], supported: str | Iterable[str] | None) -> str:
    """The first subprotocol of the client's list ``offered`` that the server
    ``supported`` (a name or a list of names), or ''."""
    supported = [supported] if isinstance(supported, str) else list(supported or ())
    for protocol in offered:
        if protocol in supported:
            return protocol
    return ''


class ClientResponse:
    """The head of the server's answer; ``rest`` is what followed it in the same reads (the
    first frames after a 101, the body of an error page)."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]],
                 rest: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as received
        self.rest = rest

    def header(self, name: str) -> str | None:
        """The values of header ``name`` joined with commas (RFC 7230 3.2.2), or None."""
        values = [v for n, v in self.headers if n.lower() == name]
        return ', '.join(values) if values else None


def parse_response(data: bytes, limit: int) -> ClientResponse | None:
    """The ``ClientResponse`` in ``data``, or None while its head is incomplete. Raises
    HandshakeError for a head that is malformed or longer than ``limit`` bytes."""
    end = data.find(b'\r\n\r\n')
    if end > limit or (end < 0 and len(data) > limit):
        raise HandshakeError('response head longer than %d bytes' % limit, status=None)
    if end < 0:
        return None
    lines = data[:end].decode('latin-1').split('\r\n')
    version, _, rest = lines[0].partition(' ')
    code, _, reason = rest.partition(' ')
    if not version.startswith('HTTP/') or len(code) != 3 or not code.isdigit():
        raise HandshakeError('malformed status line %r' % lines[0], status=None)
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(':')
        if not colon or not name or name != name.strip():
            raise HandshakeError('malformed header line %r' % line, status=int(code))
        headers.append((name, value.strip()))
    return ClientResponse(int(code), reason, headers, data[end + 4:])

