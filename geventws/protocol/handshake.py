"""RFC 6455 opening handshakes (section 4), both roles: the server's request validation,
Sec-WebSocket-Accept and subprotocol selection, the parsing of extension offers, and the
client's request and its checks on the answer. ``validate_upgrade_request`` also tells an
RFC 6455 request from a hixie one (``hixie``). Sans I/O: these functions read a WSGI environ
or header values and return what to answer; the handler and the client do I/O.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import TYPE_CHECKING, Collection, Iterable, NoReturn, Sequence

from ..errors import HandshakeError
from . import hixie
from .http import TOKEN_CHARS, check_upgrade_request, header_tokens, select_protocol

if TYPE_CHECKING:
    from .._types import Environ, ExtensionOffers, Headers
    from .http import ClientResponse

GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
SUPPORTED_VERSIONS = ('13', '8', '7')   # hybi-13 (RFC 6455), hybi-08, hybi-07


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2, step 5.4)."""
    digest = hashlib.sha1((key.strip() + GUID).encode('ascii')).digest()
    return base64.b64encode(digest).decode('ascii')


class ServerRequest:
    """A validated RFC 6455 opening request: what ``accept()`` needs to answer it."""

    def __init__(self, key: str, version: int, protocols: list[str],
                 extensions: ExtensionOffers) -> None:
        self.key = key
        self.version = version          # int: 13, 8 or 7
        self.protocols = protocols      # offered subprotocols, in the client's order
        self.extensions = extensions    # offered extensions: [(name, [(param, value)])]

    def response_headers(self, protocol: str = '', extension_header: str = '',
                         extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        """Headers of the 101 answer."""
        headers = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
                   ('Sec-WebSocket-Accept', accept_key(self.key))]
        if protocol:
            headers.append(('Sec-WebSocket-Protocol', protocol))
        if extension_header:
            headers.append(('Sec-WebSocket-Extensions', extension_header))
        headers.extend(extra)
        return headers

    def select_protocol(self, supported: str | Iterable[str] | None) -> str:
        """The first subprotocol of the client's list that the server supports, or ''."""
        return select_protocol(self.protocols, supported)


def validate_request(environ: Environ) -> ServerRequest:
    """Check an RFC 6455 upgrade request (section 4.2.1); raise HandshakeError with the HTTP
    status to answer: 400 with a one-line reason, or 426 for an unsupported version."""
    check_upgrade_request(environ)
    version = environ.get('HTTP_SEC_WEBSOCKET_VERSION', '').strip()
    if version not in SUPPORTED_VERSIONS:
        raise HandshakeError('unsupported Sec-WebSocket-Version %r' % version, status=426,
                             headers=[('Sec-WebSocket-Version', ', '.join(SUPPORTED_VERSIONS))])
    key = environ.get('HTTP_SEC_WEBSOCKET_KEY', '').strip()
    try:
        decoded = base64.b64decode(key.encode('ascii'), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        decoded = b''
    if len(decoded) != 16:
        raise HandshakeError('Sec-WebSocket-Key must be base64 of 16 bytes')
    protocols = [p.strip() for p in environ.get('HTTP_SEC_WEBSOCKET_PROTOCOL', '').split(',')
                 if p.strip()]
    if not TOKEN_CHARS.issuperset(''.join(protocols)):
        # (an app that accepts what is offered would send it back in its answer)
        raise HandshakeError('Sec-WebSocket-Protocol must list tokens (RFC 6455 4.1)')
    try:
        extensions = parse_extension_header(environ.get('HTTP_SEC_WEBSOCKET_EXTENSIONS', ''))
    except ValueError:
        extensions = []   # an offer we cannot parse is declined, never an error page
    return ServerRequest(key, int(version), protocols, extensions)


def parse_extension_header(value: str) -> ExtensionOffers:
    """Parse a Sec-WebSocket-Extensions value (RFC 6455 9.1) into
    ``[(name, [(param, value or None), ...]), ...]``; ValueError if it is malformed.

    A small tokenizer rather than a regex: quoted-string values and stray separators are the
    usual sources of wrong parses.
    """
    offers: ExtensionOffers = []
    pos, n = 0, len(value)

    def skip_ws(i: int) -> int:
        while i < n and value[i] in ' \t':
            i += 1
        return i

    def token(i: int) -> tuple[str, int]:
        j = i
        while j < n and value[j] in TOKEN_CHARS:
            j += 1
        if j == i:
            raise ValueError('expected a token at %d in %r' % (i, value))
        return value[i:j], j

    while True:
        pos = skip_ws(pos)
        if pos >= n:
            break
        if value[pos] == ',':
            pos += 1
            continue
        name, pos = token(pos)
        params: list[tuple[str, str | None]] = []
        pos = skip_ws(pos)
        while pos < n and value[pos] == ';':
            pos = skip_ws(pos + 1)
            param, pos = token(pos)
            pos = skip_ws(pos)
            arg: str | None = None
            if pos < n and value[pos] == '=':
                pos = skip_ws(pos + 1)
                if pos < n and value[pos] == '"':
                    end = value.find('"', pos + 1)
                    if end < 0:
                        raise ValueError('unterminated quoted string in %r' % value)
                    arg = value[pos + 1:end]
                    pos = end + 1
                    if not arg or any(c not in TOKEN_CHARS for c in arg):
                        raise ValueError('quoted value must be a token (RFC 6455 9.1)')
                else:
                    arg, pos = token(pos)
                pos = skip_ws(pos)
            params.append((param.lower(), arg))
        offers.append((name.lower(), params))
        if pos < n and value[pos] != ',':
            raise ValueError('unexpected %r at %d in %r' % (value[pos], pos, value))
    return offers


def validate_upgrade_request(environ: Environ, legacy: bool = True
                             ) -> ServerRequest | hixie.HixieRequest:
    """Check an upgrade request of whichever family its headers alone say it belongs to:
    Sec-WebSocket-Version or Sec-WebSocket-Key make it RFC 6455/hybi (``validate_request``,
    its 400s and its 426 unchanged), Sec-WebSocket-Key1/Key2 make it draft-76, and a bare
    ``Upgrade: WebSocket`` with ``Connection: Upgrade`` is draft-75. Anything else is a 400.
    ``legacy=False`` answers the drafts' requests as those of an unsupported version (426)."""
    if 'HTTP_SEC_WEBSOCKET_VERSION' in environ or 'HTTP_SEC_WEBSOCKET_KEY' in environ:
        return validate_request(environ)
    if not legacy:
        check_upgrade_request(environ)
        raise HandshakeError('no Sec-WebSocket-Version: this server speaks RFC 6455 only, not '
                             'the hixie drafts', status=426, headers=[
                                 ('Sec-WebSocket-Version', ', '.join(SUPPORTED_VERSIONS))])
    if 'HTTP_SEC_WEBSOCKET_KEY1' in environ or 'HTTP_SEC_WEBSOCKET_KEY2' in environ:
        return hixie.validate_request(environ, hixie.HIXIE_76)
    if (header_tokens(environ.get('HTTP_UPGRADE')) == ['websocket'] and
            'upgrade' in header_tokens(environ.get('HTTP_CONNECTION'))):
        return hixie.validate_request(environ, hixie.HIXIE_75)
    raise HandshakeError('the upgrade request matches no WebSocket version: no '
                         'Sec-WebSocket-Version (RFC 6455), no Sec-WebSocket-Key1/Key2 '
                         '(hixie-76), and not Upgrade: WebSocket with Connection: Upgrade '
                         '(hixie-75)')


# -- client side ------------------------------------------------------------------------------
# RFC 6455 section 4.1: the opening request a client sends and the checks on the answer.

#: Request headers the handshake writes itself; ``headers=`` may not set them.
_CLIENT_OWNED_HEADERS = frozenset(['upgrade', 'connection', 'sec-websocket-key',
                                   'sec-websocket-version', 'sec-websocket-protocol',
                                   'sec-websocket-extensions'])


def client_key() -> str:
    """A fresh Sec-WebSocket-Key (RFC 6455 4.1): 16 bytes from ``os.urandom``, because the
    key must be unpredictable, base64-encoded."""
    return base64.b64encode(os.urandom(16)).decode('ascii')


def client_request(resource: str, host: str, key: str, protocols: Sequence[str] = (),
                   origin: str | None = None, headers: Headers = (),
                   extensions: str = '') -> bytes:
    """The bytes of the opening request (RFC 6455 4.1): version 13, ``protocols`` offered in
    order, ``extensions`` the offer of an extension such as permessage-deflate. ``headers``
    (a mapping or pairs) are added; a ``Host`` or ``Origin`` among them replaces ours."""
    extra = list(headers.items() if hasattr(headers, 'items') else headers)
    names = {name.lower() for name, _ in extra}
    owned = sorted(names & _CLIENT_OWNED_HEADERS)
    if owned:
        raise ValueError('the handshake sets %s itself' % ', '.join(owned))
    for protocol in protocols:
        if not protocol or any(c not in TOKEN_CHARS for c in protocol):
            raise ValueError('subprotocol %r is not a token (RFC 6455 4.1)' % (protocol,))
    fields = [] if 'host' in names else [('Host', host)]
    fields += [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
               ('Sec-WebSocket-Key', key), ('Sec-WebSocket-Version', '13')]
    if origin is not None and 'origin' not in names:
        fields.append(('Origin', origin))
    if protocols:
        fields.append(('Sec-WebSocket-Protocol', ', '.join(protocols)))
    if extensions:
        fields.append(('Sec-WebSocket-Extensions', extensions))
    fields += extra
    lines = ['GET %s HTTP/1.1' % resource]
    for name, value in fields:
        line = '%s: %s' % (name, value)
        if '\r' in line or '\n' in line:
            raise ValueError('line break in header %r' % (name,))
        lines.append(line)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def validate_response(response: ClientResponse, key: str, protocols: Sequence[str] = (),
                      offered_extensions: Collection[str] = ()
                      ) -> tuple[str, ExtensionOffers]:
    """Check the server's answer as RFC 6455 4.1 requires of a client and return
    ``(protocol, extensions)``: the subprotocol chosen ('' for none) and the extensions
    accepted as ``[(name, params)]``. Raises HandshakeError with the server's status,
    headers and (for an error page) body."""

    def fail(reason: str) -> NoReturn:
        body = response.rest if response.status != 101 else b''
        raise HandshakeError(reason, status=response.status, headers=response.headers,
                             body=body)

    if response.status != 101:
        fail('server answered %d %s instead of 101 Switching Protocols'
             % (response.status, response.reason))
    if (response.header('upgrade') or '').strip().lower() != 'websocket':
        fail('Upgrade header is %r, not websocket' % response.header('upgrade'))
    if 'upgrade' not in header_tokens(response.header('connection')):
        fail('Connection header %r lacks the upgrade token' % response.header('connection'))
    if (response.header('sec-websocket-accept') or '').strip() != accept_key(key):
        fail('Sec-WebSocket-Accept %r does not match the key we sent'
             % response.header('sec-websocket-accept'))
    try:
        extensions = parse_extension_header(response.header('sec-websocket-extensions') or '')
    except ValueError as exc:
        fail('malformed Sec-WebSocket-Extensions: %s' % exc)
    for name, _ in extensions:
        if name not in offered_extensions:
            fail('server chose extension %r, which was not offered' % name)
    protocol = (response.header('sec-websocket-protocol') or '').strip()
    if protocol and protocol not in protocols:
        fail('server chose subprotocol %r, which was not offered' % protocol)
    if protocols and not protocol:
        # The WHATWG WebSocket standard (as browsers do): offered subprotocols that the
        # server does not answer mean the two ends did not agree on one.
        fail('server accepted none of the subprotocols offered (%s)' % ', '.join(protocols))
    return protocol, extensions

