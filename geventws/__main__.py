"""``python -m geventws`` (also the ``geventws`` command):

``connect URL``: an interactive session, like wscat: each line typed is sent as a text
message, each message received is printed after ``< ``, end of input (Ctrl-D) closes with 1000.
``serve module:app``: run a WSGI app with WebSocket support (``geventws.serve``).
"""
from __future__ import annotations

import argparse
import ssl
import sys
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .io.client import WebSocketClient

_SERVE_USAGE = 'serve module:app [--host HOST] [--port PORT] [--certfile F --keyfile F]'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='geventws', description='WebSocket client session and server for gevent.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    connect = commands.add_parser(
        'connect', help='interactive session: lines typed are sent, messages are printed')
    connect.add_argument('url', help='ws:// or wss:// URL')
    connect.add_argument('-s', '--protocol', action='append', default=[],
                         help='subprotocol to offer (repeat for more, in order)')
    connect.add_argument('-H', '--header', action='append', default=[], type=_header,
                         help="extra request header 'Name: value' (repeatable)")
    connect.add_argument('-o', '--origin', help='Origin header')
    connect.add_argument('--timeout', type=float, default=None,
                         help='seconds to open the connection (default 10)')
    connect.add_argument('--cafile', help='trust the CA certificates of this PEM file')
    connect.add_argument('--insecure', action='store_true',
                         help='no certificate verification for wss:// (testing only)')
    # serve's arguments belong to geventws.serve, which parses them itself.
    commands.add_parser('serve', add_help=False, help='run a WSGI app: ' + _SERVE_USAGE)
    options, rest = parser.parse_known_args(argv)
    if options.command == 'serve':
        from . import serve
        return serve.main(rest)
    if rest:
        parser.error('unrecognized arguments: %s' % ' '.join(rest))
    return _session(options)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(':')
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError("a header is 'Name: value', not %r" % text)
    return name.strip(), value.strip()


def _session(options: argparse.Namespace) -> int:
    import gevent

    from .io.client import connect
    from .errors import WebSocketError
    from .limits import OPEN_TIMEOUT

    context = None
    if options.cafile or options.insecure:
        context = ssl.create_default_context(cafile=options.cafile)
        if options.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    timeout = OPEN_TIMEOUT if options.timeout is None else options.timeout
    try:
        ws = connect(options.url, protocols=options.protocol, headers=options.header,
                     origin=options.origin, timeout=timeout, ssl_context=context)
    except (OSError, WebSocketError, ValueError) as exc:
        print('geventws: cannot connect to %s: %s' % (options.url, exc), file=sys.stderr)
        return 1
    _note('connected to %s%s' % (options.url,
                                 ' (subprotocol %s)' % ws.protocol if ws.protocol else ''))
    printer = gevent.spawn(_print_messages, ws)
    typist = gevent.spawn(_send_lines, ws)
    try:
        gevent.joinall([printer, typist], count=1)
        # Input ended (the typist is closing: the printer ends after the server's close) or
        # the server closed (the typist may be blocked reading a terminal: leave it).
        printer.join()
    except KeyboardInterrupt:
        ws.close(1001, 'interrupted')
        printer.join(ws.close_timeout)
    typist.kill(block=False)
    _note('closed: %s %s' % (ws.close_code, ws.close_reason or ''))
    return 0 if ws.close_code != 1006 else 1


def _print_messages(ws: WebSocketClient) -> None:
    for message in ws:
        print('< ' + message if isinstance(message, str) else '< %r' % (message,), flush=True)


def _send_lines(ws: WebSocketClient) -> None:
    """Send each line of standard input; at its end, close normally. The lines are read in
    gevent's thread pool so that reading a terminal does not block the connection."""
    import gevent

    from .errors import ConnectionClosed

    read_line = gevent.get_hub().threadpool.apply
    try:
        while True:
            line = read_line(sys.stdin.readline)
            if not line:
                break
            ws.send(line.rstrip('\r\n'))
        ws.close(1000)
    except ConnectionClosed:
        pass   # the server closed first; the printer reports it


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == '__main__':
    sys.exit(main())
