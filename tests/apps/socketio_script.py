"""A Flask-SocketIO script that runs its own server (``socketio.run``), with the one line
geventws.compat asks of it: ``python socketio_script.py PORT``."""
import sys

from gevent import monkey

monkey.patch_all()

import geventws.compat.install  # noqa: E402,F401  (before the app makes its SocketIO)
from socketio_app import app, socketio  # noqa: E402

if __name__ == '__main__':
    print('serving on %s' % sys.argv[1], flush=True)
    socketio.run(app, host='127.0.0.1', port=int(sys.argv[1]))
