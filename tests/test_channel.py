"""The compiled I/O path (geventws.io._channel) against the Python path it stands in for.

In the compiled run these go through ``Channel``; in the pure-Python run through the Python
path. Either way a ``WebSocket`` must put the same bytes on the wire and read the same
messages, whatever the kernel takes at once.
"""
import socket
import struct
import threading

import gevent
import gevent.socket
import pytest

import geventws
from geventws.errors import ConnectionClosed
from geventws.io.websocket import WebSocket
from geventws.protocol import frames
from geventws.protocol.hixie import HixieConnection as LegacyConnection
from helpers import send_messages, written_now


class Text(str):
    """A str subclass: sent as text, as a str is."""


def expected(opcode, payload):
    return b''.join(frames.frame(opcode, payload))


def read_exactly(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, 'the connection ended early'
        data += chunk
    return bytes(data)


def read_frame(sock):
    """(opcode, payload) of the next unmasked frame on a blocking socket."""
    b0, b1 = read_exactly(sock, 2)
    length = b1 & 0x7F
    if length == 126:
        length, = struct.unpack('!H', read_exactly(sock, 2))
    elif length == 127:
        length, = struct.unpack('!Q', read_exactly(sock, 8))
    return b0 & 0x0F, read_exactly(sock, length)


def read_in_thread(peer, count):
    """Start reading ``count`` frames on another OS thread (the hub keeps sending)."""
    got = []
    reader = threading.Thread(target=lambda: got.extend(read_frame(peer) for _ in range(count)))
    reader.start()
    return reader, got


def test_the_compiled_channel_serves_plain_rfc6455_connections_when_built(pair):
    ws, _, _ = pair
    assert (ws._channel is not None) == geventws.speedups_enabled()


def test_the_drafts_keep_the_python_path():
    ours, peer = socket.socketpair()
    ws = WebSocket()
    ws._attach(gevent.socket.socket(fileno=ours.detach()), LegacyConnection(76))
    try:
        assert ws._channel is None
    finally:
        ws._terminate(1000, '', True)
        peer.close()


@pytest.mark.parametrize('message, opcode, payload', [
    ('', 1, b''),
    ('ascii', 1, b'ascii'),
    ('h\xe9llo \u20ac \U0001F600', 1, 'h\xe9llo \u20ac \U0001F600'.encode()),
    (Text('sub'), 1, b'sub'),
    (b'', 2, b''),
    (b'\x00\xff' * 62 + b'!', 2, b'\x00\xff' * 62 + b'!'),          # 125: the 7-bit length
    (b'x' * 126, 2, b'x' * 126),                                     # the 16-bit length
    (b'y' * 2034, 2, b'y' * 2034),                                   # the largest on the stack
    (b'z' * 2035, 2, b'z' * 2035),                                   # header and payload apart
    ('w' * 65535, 1, b'w' * 65535),
    (bytearray(b'q' * 65536), 2, b'q' * 65536),                      # the 64-bit length
    (memoryview(b'0123456789')[2:7], 2, b'23456'),
])
def test_a_message_goes_out_as_the_protocol_frames_it(pair, message, opcode, payload):
    ws, peer, _ = pair
    ws.send(message)
    assert written_now(peer) == expected(opcode, payload)


@pytest.mark.parametrize('message', [
    b'\x01\x02\x03' * (3 << 20),      # 9 MiB: the kernel takes it in many parts
    'a' * (9 << 20),                  # ASCII text: written from the str itself
    '\u20ac' * (3 << 20),             # other text: from its UTF-8
])
def test_a_message_larger_than_the_socket_buffer_is_written_whole(pair, message):
    ws, peer, _ = pair
    reader, got = read_in_thread(peer, 1)
    ws.send(message)
    reader.join(10)
    payload = message.encode() if isinstance(message, str) else message
    assert got == [(1 if isinstance(message, str) else 2, payload)]


def test_a_send_waits_for_a_large_send_under_way(pair):
    """A small message sent while another greenlet is still writing a large one goes out
    after it, not into the middle of its frame, even when the socket has room for it."""
    ws, peer, _ = pair
    big = bytes(range(256)) * (16 << 10)   # 4 MiB
    writer = gevent.spawn(ws.send, big)
    gevent.sleep(0)                          # the writer filled the socket and waits
    assert ws.buffered_amount > 0 and not writer.ready()
    head = written_now(peer)                 # now there is room, and the writer still waits
    rest = []
    reader = threading.Thread(target=lambda: rest.append(
        read_exactly(peer, len(expected(2, big)) + len(expected(1, b'after')) - len(head))))
    reader.start()
    ws.send('after')
    writer.join(10)
    reader.join(10)
    assert head + rest[0] == expected(2, big) + expected(1, b'after')


def test_a_frame_split_across_reads_is_one_message(pair):
    ws, peer, client = pair
    data = b''.join(client.send_message('split in two'))
    peer.sendall(data[:5])
    receiver = gevent.spawn(ws.receive)
    gevent.sleep(0.05)                       # the first read ends no frame
    assert not receiver.ready()
    peer.sendall(data[5:])
    assert receiver.get(timeout=5) == 'split in two'


def test_messages_read_together_all_arrive_in_order(pair):
    ws, peer, client = pair
    send_messages(peer, client, 'one', b'two', 'three')
    assert [ws.receive() for _ in range(3)] == ['one', b'two', 'three']


def test_a_reset_while_reading_ends_the_connection_abnormally(pair):
    ws, peer, _ = pair
    receiver = gevent.spawn(ws.receive)
    gevent.sleep(0.01)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    peer.close()
    assert receiver.get(timeout=5) is None
    assert ws.close_code == 1006 and ws.closed


def test_a_send_to_a_vanished_peer_raises_connection_closed(pair):
    ws, peer, _ = pair
    peer.close()
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(100):   # the first write may still be taken by the kernel
            ws.send(b'x' * 1000)
    assert info.value.code == 1006
    assert ws.closed and ws.close_code == 1006


def test_a_send_after_the_close_raises_connection_closed(pair):
    ws, peer, client = pair
    ws.close_timeout = 0.05   # the peer never answers our close
    ws.close(4000, 'bye')
    assert read_frame(peer)[0] == 0x8
    with pytest.raises(ConnectionClosed):
        ws.send('late')
    assert written_now(peer) == b''


def test_a_closed_connection_never_writes_to_the_descriptor_reused_after_it(pair):
    """After a reset the socket is closed, and the next socket opened may get its file
    descriptor number: a later send must fail, not reach that socket."""
    ws, peer, _ = pair
    fileno = ws._sock.fileno()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    peer.close()
    assert ws.receive() is None
    newcomer, other = socket.socketpair()
    try:
        assert fileno in (newcomer.fileno(), other.fileno())   # the number was reused
        with pytest.raises(ConnectionClosed):
            ws.send('not for you')
        assert written_now(newcomer) == written_now(other) == b''
    finally:
        newcomer.close()
        other.close()


def test_receive_send_and_run_forever_are_compiled_for_their_common_case_when_built():
    methods = (WebSocket.receive, WebSocket.send, WebSocket.run_forever)
    compiled = {method.__module__ for method in methods} == {'geventws.io._channel'}
    assert compiled == geventws.speedups_enabled()
    assert 'next message' in WebSocket.receive.__doc__   # the API's own docstring
    # The attributes they read are C fields of the base class: still attributes to Python.
    bases = {klass.__module__ for klass in WebSocket.__mro__}
    assert ('geventws.io._channel' in bases) == compiled
    ws = WebSocket()
    assert ws.ready_state == WebSocket.CONNECTING and ws._queue is None
    ws.ready_state, ws._queue = WebSocket.OPEN, 'queued'
    assert (ws.ready_state, ws._queue) == (1, 'queued')


def test_a_receive_given_up_by_a_timeout_loses_nothing(pair):
    """A timeout (or a kill) while receive() waits leaves the read lock free and nobody
    registered as waiting: the next receive() gets the message that came meanwhile."""
    ws, peer, client = pair
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.01):
            ws.receive()
    waiting = gevent.spawn(ws.receive)
    gevent.sleep(0.01)
    waiting.kill()
    assert not ws._read_lock.locked() and ws._waiting is None
    send_messages(peer, client, 'after the timeout')
    assert ws.receive() == 'after the timeout'


def test_a_second_reader_waits_for_the_first(pair):
    ws, peer, client = pair
    first, second = gevent.spawn(ws.receive), gevent.spawn(ws.receive)
    gevent.sleep(0.01)   # both wait: the first on the socket, the second for the read lock
    send_messages(peer, client, 'one')
    assert first.get(timeout=5) == 'one'
    assert not second.ready()
    send_messages(peer, client, 'two')
    assert second.get(timeout=5) == 'two'


def test_a_close_from_another_greenlet_ends_a_waiting_receive(pair):
    ws, peer, client = pair
    ws.close_timeout = 5
    waiting = gevent.spawn(ws.receive)
    gevent.sleep(0.01)
    closing = gevent.spawn(ws.close, 4001, 'done')
    gevent.sleep(0.01)   # our close is sent; the closing greenlet waits for the read lock
    assert read_frame(peer) == (0x8, struct.pack('!H', 4001) + b'done')
    peer.sendall(b''.join(client.send_close(4001)))
    assert waiting.get(timeout=5) is None
    closing.join(5)
    assert ws.closed and ws.close_code == 4001


@pytest.mark.parametrize('message, binary, opcode, payload', [
    ('text', True, 2, b'text'),
    (b'bytes', False, 1, b'bytes'),
    (bytearray(b'array'), None, 2, b'array'),
    ('plain', None, 1, b'plain'),
])
def test_the_binary_flag_sets_the_frame_type(pair, message, binary, opcode, payload):
    ws, peer, _ = pair
    ws.send(message, binary=binary)
    assert written_now(peer) == expected(opcode, payload)


def test_a_push_before_any_receive_goes_out_at_once(pair):
    """A server that only sends (its open event still queued, never read) writes each
    message when it is sent."""
    ws, peer, _ = pair
    assert ws._queue   # the open event
    for n in range(3):
        ws.send('push %d' % n)
        assert written_now(peer) == expected(1, b'push %d' % n)


def test_run_forever_delivers_lone_and_batched_messages_in_order(pair):
    """The compiled run_forever() hands a lone message straight to ``onmessage`` and a
    batch through the queue: either way in order, to the callback set at that moment, with
    ``onopen`` first and ``onclose`` once, last."""
    ws, peer, client = pair
    seen = []

    def first(event):
        seen.append(('first', event.data))
        ws.onmessage = then

    def then(event):
        seen.append(('then', event.data))

    ws.onopen = lambda event: seen.append('open')
    ws.onmessage = first
    ws.onclose = lambda event: seen.append(('close', event.code))
    runner = gevent.spawn(ws.run_forever)
    send_messages(peer, client, 'lone')
    gevent.sleep(0.01)
    send_messages(peer, client, 'batched', b'together')
    gevent.sleep(0.01)
    send_messages(peer, client, 'alone again')
    peer.sendall(b''.join(client.send_close(1000)))
    runner.get(timeout=5)
    assert seen == ['open', ('first', 'lone'), ('then', 'batched'), ('then', b'together'),
                    ('then', 'alone again'), ('close', 1000)]
    assert read_frame(peer) == (0x8, struct.pack('!H', 1000))
