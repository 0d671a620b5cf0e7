"""gevent-websocket's ``gunicorn`` package: ``workers.GeventWebSocketWorker``."""
