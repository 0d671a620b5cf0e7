"""The Flask-SocketIO app (socketio_app.py) under a WSGIServer built with geventws's handler
and without the line of geventws.compat: ``python socketio_handler_script.py PORT``."""
import sys

from gevent import monkey

monkey.patch_all()

from gevent.pywsgi import WSGIServer  # noqa: E402

from geventws import WebSocketHandler  # noqa: E402
from socketio_app import app  # noqa: E402

if __name__ == '__main__':
    WSGIServer(('127.0.0.1', int(sys.argv[1])), app,
               handler_class=WebSocketHandler).serve_forever()
