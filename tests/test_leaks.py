"""No leaks: after 1000 connections, ended cleanly, by a protocol error or by an abrupt TCP
reset, the server holds no more greenlets (counted in the server's own thread) and the
process no more file descriptors than before."""
import gc
import weakref

import websocket

from geventws.protocol.frames import OP_TEXT
from helpers import RawClient, close_frame, echo_app, fd_count, frame, greenlet_count, settled

CONNECTIONS = 1000


def _clean(client):
    client.send(frame(OP_TEXT, b'hello'))
    assert client.recv_message() == 'hello'
    client.send(close_frame(1000, masked=True))
    assert client.recv_close() == (1000, '')
    client.assert_eof()
    client.close()


def _protocol_error(client):
    client.send(frame(OP_TEXT, b'unmasked', masked=False))
    assert client.recv_close()[0] == 1002
    client.assert_eof()
    client.close()


def _reset_after_echo(client):
    client.send(frame(OP_TEXT, b'hello'))
    assert client.recv_message() == 'hello'
    client.reset()


def _reset_mid_frame(client):
    client.send(frame(OP_TEXT, b'x' * 1000)[:100])
    client.reset()


ENDINGS = [_clean, _protocol_error, _reset_after_echo, _reset_mid_frame]


def test_no_greenlet_or_fd_left_after_1000_connections(serve):
    server = serve(echo_app)
    greenlets_before = server.call(greenlet_count)
    fds_before = fd_count()

    for i in range(CONNECTIONS):
        client = RawClient(server.port)
        client.handshake()
        ENDINGS[i % len(ENDINGS)](client)

    assert settled(lambda: server.call(greenlet_count), greenlets_before) <= greenlets_before
    assert settled(fd_count, fds_before) <= fds_before


def test_a_finished_connection_is_freed_without_the_cycle_collector(serve):
    """Its WebSocket, socket and protocol objects go as soon as the connection ends, however
    it ends: nothing of it waits in a reference cycle for the garbage collector."""
    kept = []

    def app(environ, start_response):
        kept.append(weakref.ref(environ['wsgi.websocket']))
        return echo_app(environ, start_response)

    server = serve(app)
    gc.disable()
    try:
        for ending in ENDINGS:
            client = RawClient(server.port)
            client.handshake()
            ending(client)
        peer = websocket.create_connection(server.url, timeout=5)   # a client no one here wrote
        peer.send('hello')
        assert peer.recv() == 'hello'
        peer.close()
        alive = settled(lambda: sum(ref() is not None for ref in kept), 0)
    finally:
        gc.enable()
    assert len(kept) == len(ENDINGS) + 1 and alive == 0
