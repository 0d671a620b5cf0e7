"""The header fields of a request, read the way gevent.pywsgi reads them, only faster.

pywsgi builds ``handler.headers`` with ``http.client.parse_headers``: it reads the header
lines, then hands them to the email package's generic RFC 5322 parser, which costs about a
quarter of a WebSocket handshake's server CPU. A browser's request head is plain ``Name: value``
lines, which two regular expressions parse in a few microseconds into the very message pywsgi
would have built (``gevent.pywsgi.OldMessage``, fields in order, names as sent, values as the
email parser leaves them). A head with anything else in it (a folded line, a line without a
colon, a bare CR, a name with a space, a head cut short by EOF) goes to the email parser as
before, so what an app sees never depends on which path read the head.
"""
import re
from email.parser import Parser
from http.client import HTTPException, LineTooLong

from gevent.pywsgi import OldMessage

from .limits import MAX_HEADER_LINE, MAX_HEADER_LINES

# A field name is the characters the email parser accepts before the colon (visible ASCII
# but ':'); its value loses the spaces and tabs after the colon and the CRLF (RFC 5322 2.2,
# as email.policy.compat32 keeps it: trailing spaces stay). '.' is the regex engine's fastest
# repeat but also takes a CR: a bare CR, which the email parser takes for a line end, is
# caught by counting CRs.
_PLAIN_FIELDS = re.compile(r'(?:[!-9;-~]+:.*\r\n)*')
_FIELD = re.compile(r'([!-9;-~]+):[ \t]*(.*)\r\n')
_BLANK_LINES = (b'\r\n', b'\n')


def read_request_head(rfile, *_seekable):
    """``WSGIHandler.MessageClass``: the header fields that follow the request line in
    ``rfile``, as an ``OldMessage``; a line over the limit gives one whose ``status`` makes
    pywsgi answer 400, and too many lines raise what http.client raises (also a 400)."""
    try:
        lines = _read_lines(rfile)
    except LineTooLong:
        message = OldMessage()
        message.status = 'Line too long'
        return message
    if lines[-1] in _BLANK_LINES:
        fields = b''.join(lines[:-1]).decode('latin-1')
        if _PLAIN_FIELDS.fullmatch(fields) and fields.count('\r') == len(lines) - 1:
            message = OldMessage()
            message._headers = _FIELD.findall(fields)
            return message
    return Parser(_class=OldMessage).parsestr(b''.join(lines).decode('latin-1'))


def _read_lines(rfile):
    """The head's lines up to and with its blank line (or EOF), under http.client's limits,
    which count that blank line too."""
    lines = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise LineTooLong('header line')
        lines.append(line)
        if len(lines) > MAX_HEADER_LINES:
            raise HTTPException('got more than %d headers' % MAX_HEADER_LINES)
        if line in _BLANK_LINES or not line:
            return lines
