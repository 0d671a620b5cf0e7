"""WebSocket routes for Flask and Bottle apps, next to their plain HTTP routes::

    sockets = Sockets(app)          # a Flask app or blueprint, or a Bottle app

    @sockets.route('/chat')
    def chat(ws):                   # URL variables come as keyword arguments
        for message in ws:
            ws.send(message)

Each WebSocket route is registered with the framework's own router, so plain HTTP routes,
URL variables, blueprints, hooks and error pages work as before. With Flask, the rule is
declared ``websocket=True``: Werkzeug 2+ matches an upgrade request only against such rules
(and answers 400 to a plain GET on them), so a path may have both a page and a WebSocket; with
Bottle, a second GET route on a path replaces the first. The view runs for the connection's
whole life inside the request context. What it returns is the answer when it never used the
socket (a 403, say: nothing is upgraded) and is ignored once the connection was upgraded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .protocol.http import is_websocket_upgrade

if TYPE_CHECKING:
    from ._types import Environ
    from .io.websocket import WebSocket

#: A WebSocket view: ``view(ws, **url_variables)``.
_View = TypeVar('_View', bound=Callable[..., Any])

_NO_HANDLER = ('a WebSocket upgrade reached %r but the server has no WebSocket support: run '
               'it with handler_class=geventws.WebSocketHandler, `python -m geventws serve` '
               'or gunicorn -k geventws.gunicorn.GeventWebSocketWorker')


class Sockets:
    """WebSocket routes of ``app``: a Flask app or blueprint (anything with Flask's
    ``add_url_rule``) or a Bottle app."""

    def __init__(self, app: Any) -> None:
        if hasattr(app, 'add_url_rule'):
            self._add = self._add_flask_rule
        elif hasattr(app, 'add_route') and hasattr(app, 'router'):
            self._add = self._add_bottle_route
        else:
            raise TypeError('Sockets() takes a Flask app or blueprint or a Bottle app, not %r'
                            % (app,))
        self.app = app

    def route(self, rule: str, **options: Any) -> Callable[[_View], _View]:
        """Decorator: ``view(ws, **url_variables)`` serves WebSockets at ``rule``;
        ``options`` go to the framework's route (``endpoint=`` for Flask, ``name=`` for
        Bottle)."""
        def decorator(view: _View) -> _View:
            self.add_url_rule(rule, view, **options)
            return view
        return decorator

    def add_url_rule(self, rule: str, view: Callable[..., Any], **options: Any) -> None:
        self._add(rule, view, options)

    def _add_flask_rule(self, rule: str, view: Callable[..., Any],
                        options: dict[str, Any]) -> None:
        from flask import request

        def flask_view(**kwargs: Any) -> Any:
            return view(_websocket(request.environ), **kwargs) or ''
        endpoint = options.pop('endpoint', None) or view.__name__
        self.app.add_url_rule(rule, endpoint, flask_view, websocket=True, **options)

    def _add_bottle_route(self, rule: str, view: Callable[..., Any],
                          options: dict[str, Any]) -> None:
        import bottle

        def bottle_view(**kwargs: Any) -> Any:
            environ = bottle.request.environ
            if not is_websocket_upgrade(environ):
                raise bottle.HTTPError(400, 'This URL serves WebSocket connections only.')
            return view(_websocket(environ), **kwargs) or ''
        self.app.route(rule, 'GET', bottle_view, **options)


def _websocket(environ: Environ) -> WebSocket:
    try:
        return environ['wsgi.websocket']
    except KeyError:
        raise RuntimeError(_NO_HANDLER % environ.get('PATH_INFO')) from None
