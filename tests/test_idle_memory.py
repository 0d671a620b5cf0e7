"""What an open connection keeps after its handshake (issue 3, S4): no 8 KiB read buffer.

pywsgi reads the request through ``rfile``, a BufferedReader with an 8 KiB buffer. After the
upgrade the handler takes the bytes left in it and closes it, which frees the buffer; the
WebSocket then reads into the buffer shared by the thread. These tests check that the buffer
is gone and that nothing a pipelining client sent with its handshake is lost, whether those
bytes sat in rfile's buffer, in the socket, or across both.
"""
import threading

import pytest

from conftest import echo_app
from geventws import WebSocketHandler
from geventws.frames import OP_BINARY, OP_TEXT
from test_protocol import close_frame, frame
from test_server import RawClient, upgrade_headers


class RfileWatcher(WebSocketHandler):
    """Records, once the connection is upgraded, whether rfile was closed, and every error
    pywsgi reports."""
    closed = []
    errors = []
    handled = threading.Event()

    def _accept(self, *args):
        super()._accept(*args)
        self.closed.append(self.rfile.closed)

    def handle_error(self, *exc_info):
        self.errors.append(exc_info[1])
        super().handle_error(*exc_info)

    def handle(self):
        try:
            super().handle()
        finally:
            self.handled.set()


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


@pytest.mark.parametrize('header', [('Content-Length', '6'), ('Transfer-Encoding', 'chunked')])
def test_an_upgrade_request_announcing_a_body_keeps_rfile_for_pywsgi(serve, header):
    """pywsgi reads and discards a request body after the app returns: rfile stays open for
    it (the bytes themselves are read as frames, as before), and nothing fails."""
    RfileWatcher.closed, RfileWatcher.errors, RfileWatcher.handled = [], [], threading.Event()
    client = RawClient(serve(echo_app, handler_class=RfileWatcher).port)
    try:
        client.handshake(headers=upgrade_headers() + [header], extra=frame(OP_TEXT, b''))
        assert client.recv_message() == ''
        client.send(close_frame(1000))
        client.recv_close()
        client.assert_eof()
    finally:
        client.close()
    assert RfileWatcher.handled.wait(5)
    assert RfileWatcher.closed == [False]
    assert RfileWatcher.errors == []
