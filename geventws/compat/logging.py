"""gevent-websocket's ``logging.create_logger`` (bottle-websocket's server adapter imports
it): a logger of that name whose handler prints only when ``debug`` is set."""
from __future__ import annotations

import logging


def create_logger(name: str, debug: bool = False, format: str | None = None
                  ) -> logging.Logger:
    logger = logging.getLogger(name)
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if debug else logging.CRITICAL + 1)
    if format:
        handler.setFormatter(logging.Formatter(format))
    del logger.handlers[:]
    logger.addHandler(handler)
    if debug and logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)
    return logger
