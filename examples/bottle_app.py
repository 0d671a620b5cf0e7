"""A Bottle app with a WebSocket route, on Bottle's own gevent server:
``python examples/bottle_app.py --host 127.0.0.1 --port 8000``.

GET / is a page of text, ``ws://127.0.0.1:8000/echo`` echoes every message. The same app runs
under gunicorn: ``gunicorn -k geventws.gunicorn.GeventWebSocketWorker --chdir examples
bottle_app:app``.
"""
from gevent import monkey

monkey.patch_all()   # Bottle's gevent server insists: before bottle is imported

import argparse  # noqa: E402

import bottle  # noqa: E402

from geventws import WebSocketHandler  # noqa: E402
from geventws.routing import Sockets  # noqa: E402

app = bottle.Bottle()
sockets = Sockets(app)


@app.get('/')
def index():
    bottle.response.content_type = 'text/plain'
    return 'Bottle with geventws: a WebSocket echo at /echo\n'


@sockets.route('/echo')
def echo(ws):
    for message in ws:
        ws.send(message)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000)
    args = parser.parse_args(argv)
    print('Bottle app at http://%s:%d/, WebSocket echo at ws://%s:%d/echo'
          % (args.host, args.port, args.host, args.port), flush=True)
    bottle.run(app, server='gevent', host=args.host, port=args.port,
               handler_class=WebSocketHandler, quiet=True)


if __name__ == '__main__':
    main()
