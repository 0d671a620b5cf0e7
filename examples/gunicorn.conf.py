"""gunicorn settings for a geventws app::

    gunicorn -c examples/gunicorn.conf.py module:app

Every setting here can also be given on the command line (``-w 4``, ``-b 0.0.0.0:8000``...),
which wins over this file.
"""
# WebSocket upgrades and plain HTTP from the same app; gunicorn's own `-k gevent` parses HTTP
# itself and never upgrades.
worker_class = 'geventws.gunicorn.GeventWebSocketWorker'
bind = '127.0.0.1:8000'
workers = 2
# Per worker, and every open WebSocket holds one for its whole life: a worker that has them
# all leaves new clients waiting, unanswered.
worker_connections = 1000
# On SIGTERM (stop) and SIGHUP (reload: new workers take the new connections), the open
# WebSockets are closed with 1001 "going away" at once; this long is left for their closing
# handshakes and for the HTTP requests still running.
graceful_timeout = 10
# Seconds an idle HTTP connection may wait for its next request.
keepalive = 5
# The workers' heartbeat: an open WebSocket does not count against it.
timeout = 30
# Behind nginx or HAProxy on this machine (examples/proxy): their X-Forwarded-Proto/-For
# are believed, nobody else's.
forwarded_allow_ips = '127.0.0.1'
accesslog = '-'
