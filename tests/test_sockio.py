"""The socket paths: direct syscalls, corking of answers to a batch, TCP_NODELAY.

A ``WebSocket`` runs over one end of a socket pair in this test's own hub (the ``pair``
fixture, conftest.py); the other end is a plain blocking socket read without waiting, so a
test sees exactly what was written before the sending greenlet yields.
"""
import os
import socket
import threading

import gevent
import gevent.socket

from geventws.io.sockio import IOV_MAX, send_all, send_some
from helpers import RawClient, frame, send_messages, written_now


def test_a_lone_message_goes_out_before_the_sender_yields(pair):
    ws, peer, _ = pair
    ws.send('alone')
    assert written_now(peer) == frame(0x1, b'alone', masked=False)


def test_answers_to_a_batch_go_out_together_with_the_last(pair):
    ws, peer, client = pair
    send_messages(peer, client, 'a', 'b', 'c')
    assert ws.receive() == 'a'
    ws.send('A')
    assert ws.receive() == 'b'
    ws.send('B')
    assert written_now(peer) == b''     # 'c' waits in the queue: answers are held
    assert ws.receive() == 'c'
    ws.send('C')
    assert written_now(peer) == b''.join(frame(0x1, m, masked=False) for m in (b'A', b'B', b'C'))


def test_held_answers_go_out_as_soon_as_the_sender_yields(pair):
    ws, peer, client = pair
    send_messages(peer, client, 'a', 'b')
    assert ws.receive() == 'a'
    ws.send('A')
    ws.ping(b'p')
    assert written_now(peer) == b''
    gevent.sleep(0)   # the app waits for something else before reading 'b'
    assert written_now(peer) == frame(0x1, b'A', masked=False) + frame(0x9, b'p', masked=False)


def test_held_answers_larger_than_the_socket_buffer_arrive_whole(pair):
    ws, peer, client = pair
    big = bytes(range(256)) * 8192   # 2 MiB: more than the kernel takes at once
    send_messages(peer, client, 'a', 'b')
    received = []
    reader = threading.Thread(target=lambda: received.append(_read_exactly(peer, expected)))
    expected = len(frame(0x2, big, masked=False)) * 2 + len(frame(0x1, b'after', masked=False))
    reader.start()
    assert ws.receive() == 'a'
    ws.send(big)   # corked, but over CORK_LIMIT: written, and the sender waits for it
    ws.send(big)
    assert ws.receive() == 'b'
    ws.send('after')
    while reader.is_alive():
        gevent.sleep(0.01)
    assert received == [frame(0x2, big, masked=False) * 2 + frame(0x1, b'after', masked=False)]


def _read_exactly(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def test_send_some_stops_at_a_full_socket_and_send_all_finishes():
    ours, peer = socket.socketpair()
    sock = gevent.socket.socket(fileno=ours.detach())
    pieces = [bytes([i % 251]) * (i * 97 % 5000) for i in range(3 * IOV_MAX)]
    expected = b''.join(pieces)
    buffers = list(pieces)
    sent_first = send_some(sock._sock, buffers)   # 7 MiB do not fit
    assert buffers and sum(map(len, buffers)) == len(expected) - sent_first > 0
    received = []
    reader = threading.Thread(
        target=lambda: received.append(_read_exactly(peer, sent_first + len(expected))))
    reader.start()
    send_all(sock, list(pieces))
    while reader.is_alive():
        gevent.sleep(0.01)
    assert received == [expected[:sent_first] + expected]
    sock.close()
    peer.close()


def test_upgraded_tcp_connections_have_nodelay(serve):
    def app(environ, start_response):
        ws = environ['wsgi.websocket']
        ws.receive()
        ws.send(str(ws._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
        ws.receive()
        return []
    client = RawClient(serve(app).port)
    client.handshake()
    client.send(frame(0x1, b'?'))
    assert client.recv_message() != '0'


def test_send_some_keeps_the_rest_of_one_large_buffer():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    data = os.urandom(8 << 20)
    buffers = [data]
    sent_first = send_some(ours, buffers)
    assert len(buffers) == 1 and len(buffers[0]) == len(data) - sent_first > 0
    assert bytes(buffers[0]) == data[sent_first:]
    ours.close()
    peer.close()
