"""wss:// with certificates made in the test (trustme): verification on by default, succeeds
with the test CA passed as ``ssl_context``, fails clearly without it or for another name;
client certificates. Against python-websockets' server and ours."""
import ssl
import threading

import pytest
import trustme

from geventws import WebSocketClient, connect
from helpers import cooperative_server_context, echo_app

TIMEOUT = 10


@pytest.fixture(scope='module')
def ca():
    return trustme.CA()


def _server_context(ca, *names, client_ca=None, kind='websockets'):
    """A server's TLS context; gevent's class for our server, whose sockets must cooperate
    with its hub (a standard-library context would hand it blocking sockets)."""
    if kind == 'geventws':
        context = cooperative_server_context(ca, *names)
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_context(ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_server(serve):
    """``start(kind, server_context) -> port``: a TLS echo server, websockets' or ours."""
    stoppers = []

    def start(kind, context):
        if kind == 'geventws':
            return serve(echo_app, ssl_context=context).port
        from websockets.sync.server import serve as websockets_serve
        server = websockets_serve(lambda ws: [ws.send(m) for m in ws], '127.0.0.1', 0,
                                  ssl=context)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        stoppers.append(lambda: (server.shutdown(), thread.join(TIMEOUT)))
        return server.socket.getsockname()[1]

    yield start
    for stop in stoppers:
        stop()


KINDS = ['geventws', 'websockets']


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('host', ['127.0.0.1', 'localhost'])
def test_verified_with_the_test_ca(ca, tls_server, kind, host):
    port = tls_server(kind, _server_context(ca, '127.0.0.1', 'localhost', kind=kind))
    ws = connect('wss://%s:%d/path' % (host, port), ssl_context=_client_context(ca),
                 timeout=TIMEOUT)
    ws.send('over TLS')
    assert ws.receive() == 'over TLS'
    ws.send(b'\x00' * 300000)
    assert ws.receive() == b'\x00' * 300000
    ws.close()
    assert ws.close_code == 1000


# The failures run against websockets' server, which logs the alert it gets through logging
# (captured by pytest) where gevent's hub would print it.

def test_unknown_ca_fails_by_default(ca, tls_server):
    port = tls_server('websockets', _server_context(ca, '127.0.0.1'))
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        connect('wss://127.0.0.1:%d/' % port, timeout=TIMEOUT)
    assert 'certificate verify failed' in str(info.value)


def test_name_not_in_certificate_fails(ca, tls_server):
    port = tls_server('websockets', _server_context(ca, 'other.example'))
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        connect('wss://127.0.0.1:%d/' % port, ssl_context=_client_context(ca), timeout=TIMEOUT)
    assert 'mismatch' in str(info.value)


def test_tls_failure_in_event_style(ca, tls_server):
    port = tls_server('websockets', _server_context(ca, '127.0.0.1'))
    ws = WebSocketClient('wss://127.0.0.1:%d/' % port, timeout=TIMEOUT)
    seen = []
    ws.onerror = lambda event: seen.append(type(event.error))
    ws.onclose = lambda event: seen.append(event.code)
    ws.run_forever()
    assert seen == [ssl.SSLCertVerificationError, 1006]


def test_client_certificate(ca, tls_server):
    client_ca = trustme.CA()
    port = tls_server('websockets', _server_context(ca, '127.0.0.1', client_ca=client_ca))
    url = 'wss://127.0.0.1:%d/' % port
    context = _client_context(ca)
    client_ca.issue_cert('client@example').configure_cert(context)
    ws = connect(url, ssl_context=context, timeout=TIMEOUT)
    ws.send('it is me')
    assert ws.receive() == 'it is me'
    ws.close()
    with pytest.raises(OSError):   # the server refuses a client without a certificate
        ws = connect(url, ssl_context=_client_context(ca), timeout=TIMEOUT)
        ws.send('anyone?')
        ws.receive()
