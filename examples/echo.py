"""Standalone echo server: ``python examples/echo.py --host 127.0.0.1 --port 8000``.

Every message comes back as it was sent (text as text, binary as binary); a plain HTTP request
gets a short greeting.
"""
import argparse

from gevent.pywsgi import WSGIServer

from geventws import WebSocketHandler


def app(environ, start_response):
    ws = environ.get('wsgi.websocket')
    if ws is None:
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'geventws echo server: connect with a WebSocket client\n']
    for message in ws:
        ws.send(message)
    return []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    args = parser.parse_args(argv)
    server = WSGIServer((args.host, args.port), app, handler_class=WebSocketHandler, log=None)
    server.init_socket()
    print('echo server at ws://%s:%d/' % (args.host, server.server_port), flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
