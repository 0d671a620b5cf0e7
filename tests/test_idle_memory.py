"""What an open connection keeps after its handshake (issue 3, S4): no 8 KiB read buffer.

pywsgi reads the request through ``rfile``, a BufferedReader with an 8 KiB buffer. After the
upgrade the handler takes the bytes left in it and closes it, which frees the buffer; the
WebSocket then reads into the buffer shared by the thread. These tests check that the buffer
is gone and that nothing a pipelining client sent with its handshake is lost, whether those
bytes sat in rfile's buffer, in the socket, or across both.
"""
import pytest

from conftest import echo_app
from geventws import WebSocketHandler
from geventws.frames import OP_BINARY, OP_TEXT
from test_protocol import frame
from test_server import RawClient


class RfileWatcher(WebSocketHandler):
    """Records, once the connection is upgraded, whether rfile was closed."""
    closed = []

    def _accept(self, *args):
        super()._accept(*args)
        self.closed.append(self.rfile.closed)


@pytest.mark.parametrize('early', [0, 1, 8000, 8192, 20000, 200000])
def test_rfile_is_closed_and_early_frames_survive(serve, early):
    RfileWatcher.closed = []
    server = serve(echo_app, handler_class=RfileWatcher)
    messages = [bytes([i % 256]) * (i * 997 % 3000) for i in range(early // 1500 + 1)]
    stream = b''.join(frame(OP_BINARY, m) for m in messages)
    client = RawClient(server.port)
    try:
        client.handshake(extra=stream[:early])   # in one write with the request
        client.send(stream[early:] + frame(OP_TEXT, b'last'))
        assert [client.recv_message() for _ in messages] == messages
        assert client.recv_message() == 'last'
    finally:
        client.close()
    assert RfileWatcher.closed == [True]
