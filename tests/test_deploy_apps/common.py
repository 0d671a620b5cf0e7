"""What the Flask and Bottle test apps both do, so that each of them is only the wiring."""
import json
import os
import sys

from geventws import ConnectionClosed


def echo(ws):
    """Echo every message; at the end report on stderr how many arrived and how many were
    sent back (a graceful shutdown must lose none of either)."""
    received = echoed = 0
    for message in ws:
        received += 1
        try:
            ws.send(message)
            echoed += 1
        except ConnectionClosed:
            pass   # the server is going away: it no longer sends, but still receives
    print('echo: %d messages, %d echoed' % (received, echoed), file=sys.stderr, flush=True)


def whoami(environ):
    """What the app believes about the request (JSON): scheme, client address, worker."""
    return json.dumps({'scheme': environ['wsgi.url_scheme'], 'remote': environ['REMOTE_ADDR'],
                       'pid': os.getpid()})
