"""nginx and HAProxy in front of ``python -m geventws serve``, with the configs of
examples/proxy as they are but for ports and certificate paths: upgrades pass, text and 1 MiB
binary echo, and the app sees the real client address and scheme (wss behind TLS) from the
proxy, which a client talking to the app directly cannot fake."""
import json
import os
import socket
import ssl

import pytest
import websocket

from helpers import (APPS_DIR, PYTHON, ROOT, assert_echoes, free_port, python_env,
                     require_tool)

pytestmark = pytest.mark.proxy
EXAMPLES = os.path.join(ROOT, 'examples', 'proxy')
CLIENT = '127.0.0.2'   # the client's own loopback address, so that it differs from the proxy's
SPOOFED = ['X-Forwarded-Proto: https', 'X-Forwarded-For: 198.51.100.66']
NGINX_MAIN = """worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/geventws.conf;
}}
"""


def render(example, path, replacements):
    """The example config with each ``old`` (found exactly once) replaced by ``new``."""
    with open(os.path.join(EXAMPLES, example)) as template:
        text = template.read()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)
    return str(path)


def start_nginx(programs, directory, port, tls_port, backend, tls):
    nginx = require_tool('nginx', 'reverse proxy tests')
    certfile, keyfile, _ = tls
    render('nginx.conf', directory / 'geventws.conf', [
        ('listen 80;', 'listen 127.0.0.1:%d;' % port),
        ('# listen 443 ssl;', 'listen 127.0.0.1:%d ssl;' % tls_port),
        ('# ssl_certificate     /etc/ssl/certs/example.pem;', 'ssl_certificate %s;' % certfile),
        ('# ssl_certificate_key /etc/ssl/private/example.key;',
         'ssl_certificate_key %s;' % keyfile),
        ('server 127.0.0.1:8000;', 'server 127.0.0.1:%d;' % backend)])
    # As root, nginx's workers would run as nobody, who cannot use the 0700 temp directory.
    user = 'user root;' if os.geteuid() == 0 else ''
    (directory / 'nginx.conf').write_text(NGINX_MAIN.format(d=directory, user=user))
    return programs([nginx, '-p', str(directory), '-c', str(directory / 'nginx.conf'),
                     '-e', 'stderr', '-g', 'daemon off;'], port)


def start_haproxy(programs, directory, port, tls_port, backend, tls):
    haproxy = require_tool('haproxy', 'reverse proxy tests')
    certfile, keyfile, _ = tls
    pem = directory / 'haproxy.pem'   # HAProxy wants the chain and the key in one file
    pem.write_text(open(certfile).read() + open(keyfile).read())
    config = render('haproxy.cfg', directory / 'haproxy.cfg', [
        ('bind :80', 'bind 127.0.0.1:%d' % port),
        ('# bind :443 ssl crt /etc/haproxy/certs/example.pem',
         'bind 127.0.0.1:%d ssl crt %s' % (tls_port, pem)),
        ('server app 127.0.0.1:8000', 'server app 127.0.0.1:%d' % backend)])
    return programs([haproxy, '-f', config, '-db'], port)


class Deployment:
    """The app (trusting 127.0.0.1, where the proxy connects from) behind a proxy listening
    on ``port`` (http, ws) and ``tls_port`` (https, wss)."""

    def __init__(self, programs, directory, start_proxy, tls):
        self.app_port, self.port, self.tls_port = free_port(), free_port(), free_port()
        self.cafile = tls[2]
        self.app = programs([PYTHON, '-m', 'geventws', 'serve', 'flask_app:app',
                             '--port', str(self.app_port), '--forwarded-allow-ips',
                             '127.0.0.1'], self.app_port, cwd=APPS_DIR, env=python_env())
        self.proxy = start_proxy(programs, directory, self.port, self.tls_port,
                                 self.app_port, tls)


@pytest.fixture(params=[start_nginx, start_haproxy], ids=['nginx', 'haproxy'])
def deployment(request, programs, tmp_path, tls_files):
    return Deployment(programs, tmp_path, request.param, tls_files)


def connect_from(address, port, path, cafile=None, header=()):
    """A WebSocket from the local ``address`` to 127.0.0.1:``port`` (wss with ``cafile``)."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=10,
                                    source_address=(address, 0))
    scheme = 'ws'
    if cafile:
        sock = ssl.create_default_context(cafile=cafile).wrap_socket(
            sock, server_hostname='127.0.0.1')
        scheme = 'wss'
    return websocket.create_connection('%s://127.0.0.1:%d%s' % (scheme, port, path),
                                       socket=sock, header=list(header), timeout=10)


def whoami(ws):
    seen = json.loads(ws.recv())
    ws.close()
    return seen['scheme'], seen['remote']


def test_echo_text_and_one_mib_binary_through_the_proxy(deployment):
    for port, cafile in ((deployment.port, None), (deployment.tls_port, deployment.cafile)):
        ws = connect_from(CLIENT, port, '/echo', cafile)
        assert_echoes(ws)
        big = os.urandom(1 << 20)
        ws.send_binary(big)
        assert ws.recv() == big
        ws.close()


def test_app_sees_the_real_client_and_scheme(deployment):
    plain = connect_from(CLIENT, deployment.port, '/whoami', header=SPOOFED)
    assert whoami(plain) == ('http', CLIENT)
    secure = connect_from(CLIENT, deployment.tls_port, '/whoami', deployment.cafile, SPOOFED)
    assert whoami(secure) == ('https', CLIENT)


def test_direct_client_cannot_spoof_forwarded_headers(deployment):
    direct = connect_from(CLIENT, deployment.app_port, '/whoami', header=SPOOFED)
    assert whoami(direct) == ('http', CLIENT)
