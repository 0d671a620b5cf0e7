"""``gunicorn -k geventws.compat.gunicorn.workers.GeventWebSocketWorker``: gevent-websocket's
worker's name for geventws's (geventws.gunicorn), so that a migration by renaming the imports
reaches gunicorn's command line too."""
from ...gunicorn import GeventWebSocketWorker

__all__ = ['GeventWebSocketWorker']
