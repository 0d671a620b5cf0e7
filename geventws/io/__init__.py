"""The I/O layer of geventws: the protocol core (``geventws.protocol``) driven by gevent
sockets, one greenlet per connection.

- ``websocket``: ``WebSocket``, the standard API over a protocol object and a socket; its
  per-message methods are in ``base`` (their compiled twin: ``ext/geventws/io/_channel.pyx``).
- ``sockio``: the socket reads and writes of the hot path; ``lock``: the send and read locks.
- ``handler``: ``WebSocketHandler``, gevent.pywsgi's handler plus upgrades; ``requesthead``
  reads request heads for it and ``forwarded`` believes trusted proxies' headers.
- ``client``: ``connect()`` and ``WebSocketClient``.
- ``transport`` and ``keepalive``: how a connection's bytes move (read by the hub, written
  without blocking anyone but the sender) and how dead peers are found; ``broadcast``.

../shared/DESIGN.md names these modules at the package's top level; they are a subpackage so
that the I/O layer is a place in the tree, as the protocol core is.
"""
