"""Trusted reverse proxies: X-Forwarded-Proto and X-Forwarded-For, from them only.

Behind a proxy that terminates TLS, the server sees a plain connection from the proxy: the
client's scheme and address arrive in headers that anybody can send. They are believed only
when the connection comes from an address in the allow list (gunicorn's
``forwarded_allow_ips`` semantics: addresses or networks, ``*`` for any peer, a peer without
an IP address such as a Unix socket counts as trusted), and are rewritten into the WSGI
environ (``wsgi.url_scheme``, ``REMOTE_ADDR``), so ``wss`` behind a TLS proxy looks like
``wss`` to the app and a client cannot spoof it.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .._types import Environ

_SCHEMES = {'http': 'http', 'ws': 'http', 'https': 'https', 'wss': 'https'}


class TrustedProxies:
    """``TrustedProxies('127.0.0.1,10.0.0.0/8')`` or a list of such strings."""

    def __init__(self, allow: str | Iterable[str]) -> None:
        if isinstance(allow, str):
            allow = allow.split(',')
        allow = [item.strip() for item in allow if item.strip()]
        self.any = '*' in allow
        self.networks = [ipaddress.ip_network(item, strict=False)
                         for item in allow if item != '*']

    def trusts(self, address: str) -> bool:
        """Whether ``address`` (an IP address string) is one of the proxies."""
        if self.any:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def apply(self, environ: Environ, peer: Any) -> None:
        """Rewrite ``environ`` from the forwarding headers if ``peer`` (pywsgi's
        ``client_address``: a tuple for TCP) is a trusted proxy."""
        if isinstance(peer, tuple) and not self.trusts(peer[0]):
            return
        scheme = _last(environ.get('HTTP_X_FORWARDED_PROTO', '')).lower()
        if scheme in _SCHEMES:
            environ['wsgi.url_scheme'] = _SCHEMES[scheme]
        client = self._client_address(environ.get('HTTP_X_FORWARDED_FOR', ''))
        if client:
            environ['REMOTE_ADDR'] = client

    def _client_address(self, header: str) -> str:
        """The nearest address in the chain that is not one of our proxies: each proxy
        appends the address it saw, so what lies left of the first untrusted hop is
        whatever the client chose to send."""
        hops = [hop.strip() for hop in header.split(',') if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else ''


def _last(header: str) -> str:
    """The value added by the nearest proxy, when a header holds a list."""
    return header.rsplit(',', 1)[-1].strip()
