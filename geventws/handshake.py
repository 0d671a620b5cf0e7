"""Opening handshakes (RFC 6455 section 4): request validation, Sec-WebSocket-Accept,
subprotocol selection and the parsing of extension offers; and, server side, the choice of
the protocol family and the hixie drafts' handshakes (draft-75, and draft-76's challenge).
Sans I/O: these functions read a WSGI environ or header values and return what to answer;
the handler and the client do I/O.
"""
import base64
import binascii
import hashlib
import os
import struct
from urllib.parse import quote

from .errors import HandshakeError

GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
SUPPORTED_VERSIONS = ('13', '8', '7')   # hybi-13 (RFC 6455), hybi-08, hybi-07
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2, step 5.4)."""
    digest = hashlib.sha1((key.strip() + GUID).encode('ascii')).digest()
    return base64.b64encode(digest).decode('ascii')


def header_tokens(value):
    """The comma-separated tokens of a header value, lower-cased (RFC 7230 section 7)."""
    return [t.strip().lower() for t in (value or '').split(',') if t.strip()]


def is_websocket_upgrade(environ):
    """True when the request asks to upgrade to WebSocket (any draft): such a request is
    either answered with a WebSocket handshake or rejected with 400/426, never passed on."""
    return 'websocket' in header_tokens(environ.get('HTTP_UPGRADE'))


class ServerRequest:
    """A validated RFC 6455 opening request: what ``accept()`` needs to answer it."""

    def __init__(self, key, version, protocols, extensions):
        self.key = key
        self.version = version          # int: 13, 8 or 7
        self.protocols = protocols      # offered subprotocols, in the client's order
        self.extensions = extensions    # offered extensions: [(name, [(param, value)])]

    def response_headers(self, protocol='', extension_header='', extra=()):
        """Headers of the 101 answer."""
        headers = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
                   ('Sec-WebSocket-Accept', accept_key(self.key))]
        if protocol:
            headers.append(('Sec-WebSocket-Protocol', protocol))
        if extension_header:
            headers.append(('Sec-WebSocket-Extensions', extension_header))
        headers.extend(extra)
        return headers

    def select_protocol(self, supported):
        """The first subprotocol of the client's list that the server supports, or ''."""
        supported = [supported] if isinstance(supported, str) else list(supported or ())
        for offered in self.protocols:
            if offered in supported:
                return offered
        return ''


def validate_request(environ):
    """Check an RFC 6455 upgrade request (section 4.2.1); raise HandshakeError with the HTTP
    status to answer: 400 with a one-line reason, or 426 for an unsupported version."""
    _check_http_upgrade(environ)
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
    try:
        extensions = parse_extension_header(environ.get('HTTP_SEC_WEBSOCKET_EXTENSIONS', ''))
    except ValueError:
        extensions = []   # an offer we cannot parse is declined, never an error page
    return ServerRequest(key, int(version), protocols, extensions)


def _check_http_upgrade(environ):
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


def parse_extension_header(value):
    """Parse a Sec-WebSocket-Extensions value (RFC 6455 9.1) into
    ``[(name, [(param, value or None), ...]), ...]``; ValueError if it is malformed.

    A small tokenizer rather than a regex: quoted-string values and stray separators are the
    usual sources of wrong parses.
    """
    offers = []
    pos, n = 0, len(value)

    def skip_ws(i):
        while i < n and value[i] in ' \t':
            i += 1
        return i

    def token(i):
        j = i
        while j < n and value[j] in _TOKEN_CHARS:
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
        params = []
        pos = skip_ws(pos)
        while pos < n and value[pos] == ';':
            pos = skip_ws(pos + 1)
            param, pos = token(pos)
            pos = skip_ws(pos)
            arg = None
            if pos < n and value[pos] == '=':
                pos = skip_ws(pos + 1)
                if pos < n and value[pos] == '"':
                    end = value.find('"', pos + 1)
                    if end < 0:
                        raise ValueError('unterminated quoted string in %r' % value)
                    arg = value[pos + 1:end]
                    pos = end + 1
                    if not arg or any(c not in _TOKEN_CHARS for c in arg):
                        raise ValueError('quoted value must be a token (RFC 6455 9.1)')
                else:
                    arg, pos = token(pos)
                pos = skip_ws(pos)
            params.append((param.lower(), arg))
        offers.append((name.lower(), params))
        if pos < n and value[pos] != ',':
            raise ValueError('unexpected %r at %d in %r' % (value[pos], pos, value))
    return offers


# -- the hixie drafts, server side ------------------------------------------------------------
# draft-hixie-thewebsocketprotocol-75 and -76, which browsers spoke in 2010 and 2011.

HIXIE_75, HIXIE_76 = 'hixie-75', 'hixie-76'
_ASCII_DIGITS = frozenset('0123456789')
#: Characters a request path keeps unquoted when the location is rebuilt from PATH_INFO.
_PATH_SAFE = "/;=,:@!$&'()*+"


def validate_upgrade_request(environ):
    """Check an upgrade request of whichever family its headers alone say it belongs to:
    Sec-WebSocket-Version or Sec-WebSocket-Key make it RFC 6455/hybi (``validate_request``,
    its 400s and its 426 unchanged), Sec-WebSocket-Key1/Key2 make it draft-76, and a bare
    ``Upgrade: WebSocket`` with ``Connection: Upgrade`` is draft-75. Anything else is a 400."""
    if 'HTTP_SEC_WEBSOCKET_VERSION' in environ or 'HTTP_SEC_WEBSOCKET_KEY' in environ:
        return validate_request(environ)
    if 'HTTP_SEC_WEBSOCKET_KEY1' in environ or 'HTTP_SEC_WEBSOCKET_KEY2' in environ:
        return _validate_hixie_request(environ, HIXIE_76)
    if (header_tokens(environ.get('HTTP_UPGRADE')) == ['websocket'] and
            'upgrade' in header_tokens(environ.get('HTTP_CONNECTION'))):
        return _validate_hixie_request(environ, HIXIE_75)
    raise HandshakeError('the upgrade request matches no WebSocket version: no '
                         'Sec-WebSocket-Version (RFC 6455), no Sec-WebSocket-Key1/Key2 '
                         '(hixie-76), and not Upgrade: WebSocket with Connection: Upgrade '
                         '(hixie-75)')


class HixieRequest:
    """A validated draft-75 or draft-76 opening request. For draft-76 the handler sets
    ``key3``, the 8 bytes the client sends after its headers, before the answer is made."""

    select_protocol = ServerRequest.select_protocol

    def __init__(self, version, origin, location, protocols, key_numbers=None):
        self.version = version          # HIXIE_75 or HIXIE_76
        self.origin = origin
        self.location = location        # the ws:// or wss:// URL the client asked for
        self.protocols = protocols      # the one subprotocol asked for, or none
        self.key_numbers = key_numbers  # draft-76: the numbers of Key1 and Key2
        self.key3 = None

    @property
    def draft(self):
        return 76 if self.version == HIXIE_76 else 75

    def response(self, protocol='', extra=()):
        """``(headers, status, body)`` of the 101 answer. Draft-75 clients compare the status
        line and the first two headers byte for byte (draft-75 client rules), hence the fixed
        spelling and order; draft-76 adds the 16-byte challenge answer as the body."""
        if self.version == HIXIE_75:
            prefix, status, body = 'WebSocket-', '101 Web Socket Protocol Handshake', b''
        else:
            prefix, status = 'Sec-WebSocket-', '101 WebSocket Protocol Handshake'
            body = hixie76_answer(self.key_numbers[0], self.key_numbers[1], self.key3)
        headers = [('Upgrade', 'WebSocket'), ('Connection', 'Upgrade'),
                   (prefix + 'Origin', self.origin), (prefix + 'Location', self.location)]
        if protocol:
            headers.append((prefix + 'Protocol', protocol))
        headers.extend(extra)
        return headers, status, body


def _validate_hixie_request(environ, version):
    _check_http_upgrade(environ)
    origin = environ.get('HTTP_ORIGIN')
    if not origin:
        raise HandshakeError('%s handshake needs an Origin header (the answer repeats it)'
                             % version)
    key_numbers = None
    if version == HIXIE_76:
        key_numbers = (hixie76_key_number(environ.get('HTTP_SEC_WEBSOCKET_KEY1', ''),
                                          'Sec-WebSocket-Key1'),
                       hixie76_key_number(environ.get('HTTP_SEC_WEBSOCKET_KEY2', ''),
                                          'Sec-WebSocket-Key2'))
        protocol = environ.get('HTTP_SEC_WEBSOCKET_PROTOCOL', '').strip()
    else:
        protocol = environ.get('HTTP_WEBSOCKET_PROTOCOL', '').strip()
    scheme = 'wss' if environ.get('wsgi.url_scheme') == 'https' else 'ws'
    location = '%s://%s%s' % (scheme, environ['HTTP_HOST'], _request_uri(environ))
    return HixieRequest(version, origin, location, [protocol] if protocol else [],
                        key_numbers)


def _request_uri(environ):
    """The path and query as the client wrote them: draft-76 clients compare the location
    with the URL they opened. gunicorn keeps it (RAW_URI); pywsgi has only the decoded
    PATH_INFO (latin-1 per PEP 3333), quoted again here."""
    raw = environ.get('RAW_URI')
    if raw:
        return raw
    path = quote(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', ''),
                 safe=_PATH_SAFE, encoding='latin-1')
    query = environ.get('QUERY_STRING')
    return path + '?' + query if query else path


def hixie76_key_number(value, name='Sec-WebSocket-Key1'):
    """The number a draft-76 key stands for: its ASCII digits read as one integer, divided
    by its count of spaces. 400 when it has no digits or no spaces, when the division
    leaves a remainder, or when the result does not fit in 32 bits."""
    digits = ''.join(c for c in value if c in _ASCII_DIGITS)   # not str.isdigit: '\xb2'
    spaces = value.count(' ')
    if not digits or not spaces:
        raise HandshakeError('%s must contain digits and spaces' % name)
    digits = digits.lstrip('0') or '0'
    # Over 20 digits is far past 32 bits times any count of spaces: not worth an int().
    quotient, remainder = divmod(int(digits), spaces) if len(digits) <= 20 else (1 << 32, 0)
    if remainder:
        raise HandshakeError('%s: its number is not a multiple of its %d spaces'
                             % (name, spaces))
    if quotient > 0xFFFFFFFF:
        raise HandshakeError('%s: its number divided by its spaces exceeds 32 bits' % name)
    return quotient


def hixie76_answer(number1, number2, key3):
    """The 16-byte answer to a draft-76 challenge: the MD5 of the two key numbers as 32-bit
    big-endian integers followed by the 8 bytes of key3."""
    return hashlib.md5(struct.pack('>II', number1, number2) + bytes(key3)).digest()


# -- client side ------------------------------------------------------------------------------
# RFC 6455 section 4.1: the opening request a client sends and the checks on the answer.

#: Request headers the handshake writes itself; ``headers=`` may not set them.
_CLIENT_OWNED_HEADERS = frozenset(['upgrade', 'connection', 'sec-websocket-key',
                                   'sec-websocket-version', 'sec-websocket-protocol',
                                   'sec-websocket-extensions'])


def client_key():
    """A fresh Sec-WebSocket-Key (RFC 6455 4.1): 16 bytes from ``os.urandom``, because the
    key must be unpredictable, base64-encoded."""
    return base64.b64encode(os.urandom(16)).decode('ascii')


def client_request(resource, host, key, protocols=(), origin=None, headers=(),
                   extensions=''):
    """The bytes of the opening request (RFC 6455 4.1): version 13, ``protocols`` offered in
    order, ``extensions`` the offer of an extension such as permessage-deflate. ``headers``
    (a mapping or pairs) are added; a ``Host`` or ``Origin`` among them replaces ours."""
    extra = list(headers.items() if hasattr(headers, 'items') else headers)
    names = {name.lower() for name, _ in extra}
    owned = sorted(names & _CLIENT_OWNED_HEADERS)
    if owned:
        raise ValueError('the handshake sets %s itself' % ', '.join(owned))
    for protocol in protocols:
        if not protocol or any(c not in _TOKEN_CHARS for c in protocol):
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


class ClientResponse:
    """The head of the server's answer; ``rest`` is what followed it in the same reads (the
    first frames after a 101, the body of an error page)."""

    def __init__(self, status, reason, headers, rest):
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as received
        self.rest = rest

    def header(self, name):
        """The values of header ``name`` joined with commas (RFC 7230 3.2.2), or None."""
        values = [v for n, v in self.headers if n.lower() == name]
        return ', '.join(values) if values else None


def parse_response(data, limit):
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


def validate_response(response, key, protocols=(), offered_extensions=()):
    """Check the server's answer as RFC 6455 4.1 requires of a client and return
    ``(protocol, extensions)``: the subprotocol chosen ('' for none) and the extensions
    accepted as ``[(name, params)]``. Raises HandshakeError with the server's status,
    headers and (for an error page) body."""

    def fail(reason):
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
