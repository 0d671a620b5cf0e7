"""gevent-websocket's ``protocols`` package: ``base.BaseProtocol``."""
