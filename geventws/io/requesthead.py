"""The head of a request, read the way gevent.pywsgi reads it, only faster.

pywsgi builds ``handler.headers`` with ``http.client.parse_headers``: it reads the header
lines, then hands them to the email package's generic RFC 5322 parser, which costs about a
quarter of a WebSocket handshake's server CPU. A browser's request head is plain ``Name: value``
lines, which two regular expressions parse in a few microseconds into the very message pywsgi
would have built (``gevent.pywsgi.OldMessage``, fields in order, names as sent, values as the
email parser leaves them). A head with anything else in it (a folded line, a line without a
colon, a bare CR, a name with a space, a head cut short by EOF) goes to the email parser as
before, so what an app sees never depends on which path read the head. Both paths keep to
the server's limits on a head (its size, a line's length, the number of fields); a head over
them is refused with 431 (``HeadTooLarge``) after no more than one line past them was read.

``plain_upgrade_head`` goes one step further for the commonest first request of a connection,
a WebSocket upgrade: it takes the whole head from the bytes of one read and makes from it, in
one pass, what pywsgi's request parsing and ``get_environ`` would make of it.
"""
from __future__ import annotations

import re
from email.parser import Parser
from typing import TYPE_CHECKING, Any, BinaryIO

from gevent.pywsgi import OldMessage

from ..limits import MAX_HEADER_LINE, MAX_HEADERS, MAX_REQUEST_HEAD
from ..protocol.http import is_websocket_upgrade

if TYPE_CHECKING:
    from .._types import Environ

# A field name is the characters the email parser accepts before the colon (visible ASCII
# but ':'); its value loses the spaces and tabs after the colon and the CRLF (RFC 5322 2.2,
# as email.policy.compat32 keeps it: trailing spaces stay). '.' is the regex engine's fastest
# repeat but also takes a CR: a bare CR, which the email parser takes for a line end, is
# caught by counting CRs.
_PLAIN_FIELDS = re.compile(r'(?:[!-9;-~]+:.*\r\n)*')
_FIELD = re.compile(r'([!-9;-~]+):[ \t]*(.*)\r\n')
_BLANK_LINES = (b'\r\n', b'\n')
#: The environ keys of fields of a request with a body (or of one that waits to send it):
#: pywsgi's own reading handles those (plain_upgrade_head). A name with '_' in it, which
#: gets no key, is none of those fields.
_BODY_KEYS = frozenset(('HTTP_CONTENT_LENGTH', 'HTTP_CONTENT_TYPE', 'HTTP_TRANSFER_ENCODING',
                        'HTTP_EXPECT'))


class HeadTooLarge(ValueError):
    """The request head passes one of the server's limits: answered with 431 Request Header
    Fields Too Large (RFC 6585), with the reason on one line."""


def read_request_head(rfile: BinaryIO, *_seekable: Any, max_size: int = MAX_REQUEST_HEAD,
                      max_line: int = MAX_HEADER_LINE, max_headers: int = MAX_HEADERS,
                      read: int = 0) -> OldMessage:
    """The header fields that follow the request line in ``rfile``, as the ``OldMessage``
    pywsgi's ``MessageClass(rfile, 0)`` makes; ``HeadTooLarge`` when the head (of which
    ``read`` bytes, the request line, were read before) is more than ``max_size`` bytes, a
    line is longer than ``max_line`` or there are more than ``max_headers`` fields. No more
    than a line past those limits is ever read."""
    lines: list[bytes] = []
    size = read
    while True:
        line = rfile.readline(max_line + 1)
        if len(line) > max_line:
            raise HeadTooLarge('a request header line is longer than %d bytes' % max_line)
        size += len(line)
        if size > max_size:
            raise HeadTooLarge('the request head is longer than %d bytes' % max_size)
        lines.append(line)
        if line in _BLANK_LINES or not line:
            break
        if len(lines) > max_headers:
            raise HeadTooLarge('the request has more than %d header fields' % max_headers)
    if lines[-1] in _BLANK_LINES:
        fields = b''.join(lines[:-1]).decode('latin-1')
        if _PLAIN_FIELDS.fullmatch(fields) and fields.count('\r') == len(lines) - 1:
            message = OldMessage()
            message._headers = _FIELD.findall(fields)
            return message
    return Parser(_class=OldMessage).parsestr(b''.join(lines).decode('latin-1'))


class PlainHead:
    """A ``GET ... HTTP/1.1`` request head, complete and plain (in the sense above), as
    pywsgi would have read it: ``requestline`` as ``read_requestline`` returns it, the
    ``message`` (an ``OldMessage``), the header part of the WSGI environ in pywsgi's order
    and spelling (``HTTP_*``, repeated fields joined), and the bytes that followed the head
    in the same read (early frames of a pipelining WebSocket client)."""

    __slots__ = ('requestline', 'message', 'environ', 'rest')

    def __init__(self, requestline: str, message: OldMessage, environ: Environ,
                 rest: bytes) -> None:
        self.requestline = requestline
        self.message = message
        self.environ = environ
        self.rest = rest


def add_environ_field(environ: Environ, key: str, value: str) -> None:
    """Put a header field into a WSGI environ as pywsgi's ``get_environ`` does: a key that is
    there already gets the value appended, after '; ' for cookies and ',' for the rest."""
    if key in environ:
        environ[key] += ('; ' if 'COOKIE' in key else ',') + value
    else:
        environ[key] = value


def plain_upgrade_head(data: bytes, max_size: int = MAX_REQUEST_HEAD,
                       max_line: int = MAX_HEADER_LINE,
                       max_headers: int = MAX_HEADERS) -> PlainHead | None:
    """The ``PlainHead`` at the start of ``data``, the first bytes read from a connection,
    or None when pywsgi's own reading must see them: the head is not complete in ``data``,
    not a plain GET over HTTP/1.1, announces a body, is no upgrade to RFC 6455 (the
    Sec-WebSocket-Key or -Version field, and ``websocket`` among the Upgrade tokens), or
    passes a limit (``read_request_head`` then refuses it).
    """
    end = data.find(b'\r\n\r\n')
    if end + 4 > min(max_size, max_line):   # (a head within max_line has no line over it)
        return None
    line_end = data.find(b'\n')
    if end < 0 or not data.startswith(b'GET ') or data[line_end - 1] != 13:   # CR
        return None
    requestline = data[:line_end + 1].decode('latin-1')
    words = requestline.split()
    if len(words) != 3 or words[2] != 'HTTP/1.1' or '\r' in requestline[:-2]:
        return None
    fields = data[line_end + 1:end + 2].decode('latin-1')
    if not _PLAIN_FIELDS.fullmatch(fields) or fields.count('\r') != fields.count('\n'):
        return None
    found = _FIELD.findall(fields)
    if len(found) > max_headers:
        return None
    environ: Environ = {}
    for name, value in found:
        if '_' in name:
            continue   # pywsgi drops such fields from the environ
        # pywsgi: 'HTTP_' + the name, and the value as it comes out of '%s: %s\r\n', stripped
        add_environ_field(environ, 'HTTP_' + name.replace('-', '_').upper(), value.strip())
    if not _BODY_KEYS.isdisjoint(environ):
        return None
    if (not is_websocket_upgrade(environ) or
            ('HTTP_SEC_WEBSOCKET_KEY' not in environ and
             'HTTP_SEC_WEBSOCKET_VERSION' not in environ)):
        return None
    message = OldMessage()
    message._headers = found
    return PlainHead(requestline, message, environ, data[end + 4:])
