"""S7's server: one Flask-SocketIO app that emits every 'echo' event back to its sender, on
the engine named: ``python socketio_echo.py ENGINE PORT``.

- ``geventws``: gevent's WSGIServer with geventws's handler (engineio's gevent-websocket path,
  whose WebSocket is ``environ['wsgi.websocket']``: geventws's);
- ``gevent-websocket``: the same with gevent-websocket 0.10.1's handler;
- ``simple-websocket``: plain gevent.pywsgi and gevent-websocket hidden, so that engineio takes
  the socket from the environ and runs simple-websocket on it (its threads are greenlets).

The process is monkey-patched, as Flask-SocketIO's documentation asks on gevent.
"""
from gevent import monkey

monkey.patch_all()

import importlib.machinery  # noqa: E402
import sys  # noqa: E402

ENGINE, PORT = sys.argv[1], int(sys.argv[2])

if ENGINE == 'simple-websocket':
    class _PathFinderWithout(importlib.machinery.PathFinder):
        """Finds no gevent-websocket: engineio then falls back to simple-websocket."""

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name == 'geventwebsocket' or name.startswith('geventwebsocket.'):
                return None
            return super().find_spec(name, path, target)

    sys.meta_path[:] = [_PathFinderWithout if finder is importlib.machinery.PathFinder
                        else finder for finder in sys.meta_path]

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, emit  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app)


@socketio.on('echo')
def echo(data):
    emit('echo', data)


if __name__ == '__main__':
    from engineio.async_drivers import gevent as engineio_gevent
    wanted = 'simple-websocket' if ENGINE == 'simple-websocket' else 'gevent-websocket'
    got = 'simple-websocket' if engineio_gevent.SimpleWebSocketWSGI else 'gevent-websocket'
    if got != wanted:
        sys.exit('socketio_echo: engineio took its %s path, not %s' % (got, wanted))
    options = {}
    if ENGINE == 'geventws':
        import geventws
        if not geventws.speedups_enabled():
            sys.exit('socketio_echo: the compiled speedups are not built (run make build)')
        geventws.recycle_frame_stacks()
        options['handler_class'] = geventws.WebSocketHandler
    elif ENGINE == 'gevent-websocket':
        from geventwebsocket.handler import WebSocketHandler
        options['handler_class'] = WebSocketHandler
    elif ENGINE != 'simple-websocket':
        sys.exit('socketio_echo: unknown engine %r' % ENGINE)
    WSGIServer(('127.0.0.1', PORT), app, log=None, **options).serve_forever()
