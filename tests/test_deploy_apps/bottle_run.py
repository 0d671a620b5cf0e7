"""``bottle.run(server='gevent', handler_class=WebSocketHandler)``: python bottle_run.py PORT."""
from gevent import monkey

monkey.patch_all()   # bottle's gevent server requires it before bottle is imported

import sys  # noqa: E402

import bottle  # noqa: E402

from bottle_app import app  # noqa: E402
from geventws import WebSocketHandler  # noqa: E402

if __name__ == '__main__':
    bottle.run(app, server='gevent', host='127.0.0.1', port=int(sys.argv[1]),
               handler_class=WebSocketHandler, quiet=True)
