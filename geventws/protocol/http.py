"""The HTTP/1.1 around an opening handshake: header tokens, what both protocol families ask
of the request that carries an upgrade, subprotocol choice, and the client's reading of the
server's response head. Sans I/O, shared by ``handshake`` (RFC 6455) and ``hixie``.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Sequence

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
        raise HandshakeError('WebSocket handshake must use GET, not %r'
                             % environ.get('REQUEST_METHOD'))
    if environ.get('SERVER_PROTOCOL', 'HTTP/1.0') in ('HTTP/0.9', 'HTTP/1.0'):
        raise HandshakeError('WebSocket handshake needs HTTP/1.1')
    if 'upgrade' not in header_tokens(environ.get('HTTP_CONNECTION')):
        raise HandshakeError("Connection header must contain the 'upgrade' token")
    if not environ.get('HTTP_HOST'):
        raise HandshakeError('Host header missing')
    # What follows an upgrade request's head is the WebSocket's: a body would be read as
    # frames, and a request that announces one is smuggling something.
    if 'HTTP_TRANSFER_ENCODING' in environ:
        raise HandshakeError('an upgrade request has no body: Transfer-Encoding not allowed')
    if environ.get('CONTENT_LENGTH', '').strip().lstrip('0'):
        raise HandshakeError('an upgrade request has no body: Content-Length must be 0')


#: Control characters (tab aside), which include the CR and LF of a folded line (obs-fold).
_CONTROL_CHARACTER = re.compile('[\x00-\x08\x0a-\x1f\x7f]')


def check_no_control_characters(environ: Environ, names: Iterable[str]) -> None:
    """400 when one of the environ values ``names`` has a control character: those of a
    response built from request values could otherwise be split."""
    for name in names:
        value = environ.get(name)
        if value is not None and _CONTROL_CHARACTER.search(value):
            raise HandshakeError('%s has a control character or a folded line'
                                 % name[5:].replace('_', '-').title()
                                 if name.startswith('HTTP_') else name)


def check_origin(environ: Environ, origins: Sequence[str | None]) -> None:
    """403 unless the request's Origin (Sec-WebSocket-Origin before version 13) is one of
    ``origins``, exactly; None among them stands for a request without one (not a
    browser's)."""
    origin = environ.get('HTTP_ORIGIN', environ.get('HTTP_SEC_WEBSOCKET_ORIGIN'))
    if origin not in origins:
        raise HandshakeError('origin %r is not allowed' % origin if origin is not None else
                             'a request without an Origin header is not allowed', status=403)


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

