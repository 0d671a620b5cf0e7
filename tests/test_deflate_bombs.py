"""Small compressed payloads that inflate to megabytes: the event loop inflates a message up to
``INFLATE_SLICE`` bytes only and hands the rest to the ``offload`` hook (the hub's
threadpool), so a peer sending such "bombs" stalls nobody, and the results are the same
wherever the slice ends.

The stall test is a functional bound: 20 bombs a second, 4 at a time, for 10 s against a
server, while a websocket-client peer measures its echo round trip (under 100 ms at worst).
Inflated in the event loop, one bomb took 30-50 ms here and 4 in a row 140-220 ms of a round
trip; sent one at a time, they rarely met and stayed under the bound.
"""
import os
import statistics
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

import geventws.io.websocket
from geventws import WebSocketHandler, connect
from geventws.limits import INFLATE_SLICE
from geventws.protocol import Connection, deflate
from geventws.protocol.deflate import DeflateOptions, PerMessageDeflate
from geventws.protocol.events import CloseReceived, Failure
from geventws.protocol.frames import OP_BINARY
from helpers import CoreClient, echo_app, frame, message_data, rss_kib, ws_connect

MAX_SIZE = 16 * 2 ** 20
#: Bytes a bomb inflates to, whatever is asked: past any max_message_size of these tests.
BOMB_SIZE = MAX_SIZE + 2 ** 16


def compressed(data, bits=12):
    """``data`` as one message's payload from a peer (the sync-flush tail removed)."""
    peer = zlib.compressobj(9, zlib.DEFLATED, -bits)
    return (peer.compress(data) + peer.flush(zlib.Z_SYNC_FLUSH))[:-4]


BOMB = compressed(bytes(BOMB_SIZE))


# -- the core, with an offload hook that records its calls ---------------------------------------

class Recording:
    """An ``offload`` hook that runs the work here and counts it."""

    def __init__(self):
        self.calls = 0

    def __call__(self, func, *args):
        self.calls += 1
        return func(*args)


def receiver(offload=None, max_message_size=MAX_SIZE, receive_reset=False):
    """A server connection that inflates what a ``client_max_window_bits=12`` peer sends."""
    extension = PerMessageDeflate(DeflateOptions(), send_bits=12, receive_bits=12,
                                  send_reset=False, receive_reset=receive_reset)
    extension.offload = offload
    return Connection(client=False, max_message_size=max_message_size, extension=extension)


def sender(send_reset=False):
    extension = PerMessageDeflate(DeflateOptions(min_size=0), send_bits=12, receive_bits=12,
                                  send_reset=send_reset, receive_reset=False)
    return Connection(client=True, extension=extension)


def wire_of(conn, messages):
    return [b''.join(conn.send_message(data)) for data in messages]


def error_of(events):
    assert type(events[-1]) is Failure, events
    return events[-1].error


def messages_around(slice_size):
    """Messages that make just under, exactly and just over ``slice_size`` bytes, of a run,
    text and random bytes (with context takeover, each refers back to the one before)."""
    text = b''.join(b'line %d of some text\n' % i for i in range(slice_size // 10 + 10))
    noise = os.urandom(slice_size + 1)
    return [source[:size] for source in (bytes(slice_size + 1), text, noise)
            for size in (slice_size - 1, slice_size, slice_size + 1)]


@pytest.mark.parametrize('reset', [False, True], ids=['context takeover', 'no takeover'])
def test_messages_around_the_slice_inflate_alike(reset):
    messages = messages_around(INFLATE_SLICE)
    wire = wire_of(sender(send_reset=reset), messages)
    hook = Recording()
    sliced = receiver(hook, receive_reset=reset)
    whole = receiver(receive_reset=reset)
    for data, sent in zip(messages, wire):
        assert message_data(sliced.receive_data(sent)) == [data]
        assert message_data(whole.receive_data(sent)) == [data]
    # Run and text payloads are small: only those making a whole slice or more go on in
    # the hook. The random ones are as large as their output: all of them go there whole.
    assert hook.calls == 2 * 2 + 3


@pytest.mark.parametrize('slice_size', [1, 7, 100, 257, 1000, 4099])
def test_wherever_the_slice_ends_the_messages_are_the_same(monkeypatch, slice_size):
    """Any slice, in a match, a block's end or the sync-flush tail, with context
    takeover across the messages: the output is what one pass makes."""
    monkeypatch.setattr(deflate, 'INFLATE_SLICE', slice_size)
    messages = [b'a' * 5000, bytes(range(256)) * 20, b'x' + b'a' * 5000, b'', b'b' * 300,
                os.urandom(300) + b'c' * 3000]
    hook = Recording()
    conn = receiver(hook)
    for data, sent in zip(messages, wire_of(sender(), messages)):
        assert message_data(conn.receive_data(sent)) == [data]
    assert hook.calls == sum(len(data) >= slice_size for data in messages)


#: Messages of 4 MiB that compress to a few KiB; with context takeover, the first bytes of
#: each refer to the one before.
MEGABYTES = [b''.join(b'%04d,' % i for i in range(600)) * 1400 + b'end %d' % i for i in range(3)]


def test_megabytes_from_small_payloads_with_context_takeover():
    hook = Recording()
    conn = receiver(hook)
    for data, sent in zip(MEGABYTES, wire_of(sender(), MEGABYTES)):
        assert len(sent) < 2 ** 16
        assert message_data(conn.receive_data(sent)) == [data]
    assert hook.calls == 3


@pytest.mark.parametrize('max_size', [1000, INFLATE_SLICE - 1, INFLATE_SLICE,
                                      INFLATE_SLICE + 1, MAX_SIZE])
def test_a_bomb_fails_with_1009_under_any_limit(max_size):
    """Past the limit the output stops, in the slice or in the hook."""
    hook = Recording()
    conn = receiver(hook, max_message_size=max_size)
    bomb = BOMB if max_size == MAX_SIZE else compressed(bytes(max_size + 2 ** 16))
    error = error_of(conn.receive_data(frame(OP_BINARY, bomb, rsv=4)))
    assert error.code == 1009 and 'after decompression' in error.reason
    assert hook.calls == (max_size >= INFLATE_SLICE)


def test_corrupt_data_after_the_slice_fails_with_1007_from_the_hook():
    # After the message's stored-block header: lengths that are not each other's complement.
    payload = compressed(bytes(INFLATE_SLICE * 2)) + b'\xff' * 4
    hook = Recording()
    error = error_of(receiver(hook).receive_data(frame(OP_BINARY, payload, rsv=4)))
    assert error.code == 1007 and hook.calls == 1


# -- through the gevent layer: our server and our client ------------------------------------------

def test_our_client_and_server_inflate_megabytes_in_the_threadpool(serve, monkeypatch):
    """Both roles get the hook from the I/O layer; both finish there what takes long."""
    threads = set()
    off_the_hub = geventws.io.websocket.off_the_hub

    def recording(func, *args):
        if func is deflate._inflate:
            threads.add(threading.get_ident())
        return off_the_hub(func, *args)

    monkeypatch.setattr(geventws.io.websocket, 'off_the_hub', recording)
    server = serve(echo_app)
    ws = connect(server.url, timeout=20)
    messages = MEGABYTES + ['é☺' * 100] + messages_around(INFLATE_SLICE)
    for data in messages:
        ws.send(data)
        assert ws.receive() == data
    ws.close()
    assert len(threads) == 2    # the server's thread and this one's


# -- a peer sending bombs --------------------------------------------------------------------------

RATE = 20          # bombs a second
BURST = 4          # bombs sent together, each on a connection of its own
SECONDS = 10.0


def close_code(client):
    event = client.next_event()
    client.close()
    return event.code if type(event) is CloseReceived else event


def bombard(port, stop):
    """Send bombs ``RATE`` a second, ``BURST`` at a time, one a connection (the server
    closes it), until ``stop``; the close code each connection got."""
    codes = []
    with ThreadPoolExecutor(BURST) as closes:
        start = time.monotonic()
        while not stop.is_set():
            clients = [CoreClient(port) for _ in range(BURST)]
            for client in clients:
                client.send_compressed(OP_BINARY, BOMB)
            codes += [closes.submit(close_code, client) for client in clients]
            time.sleep(max(0.0, start + len(codes) / RATE - time.monotonic()))
        return [code.result() for code in codes]


def test_a_bombing_peer_stalls_no_other_connection(serve):
    server = serve(echo_app, WebSocketHandler.configure(max_message_size=MAX_SIZE))
    probe = ws_connect(server.url)
    probe.send('warm up')
    assert probe.recv() == 'warm up'
    rss_before = rss_kib()
    stop = threading.Event()
    with ThreadPoolExecutor(1) as bomber:
        bombing = bomber.submit(bombard, server.port, stop)
        round_trips = []
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            sent_at = time.perf_counter()
            probe.send('ping')
            assert probe.recv() == 'ping'
            round_trips.append(time.perf_counter() - sent_at)
            time.sleep(0.002)
        stop.set()
        codes = bombing.result()
    probe.close()
    rss_after = rss_kib()
    worst, median = max(round_trips) * 1000, statistics.median(round_trips) * 1000
    print('\n%d bombs (%d B -> %d B each): %d round trips, max %.1f ms, median %.2f ms; '
          'RSS %d -> %d KiB' % (len(codes), len(BOMB), BOMB_SIZE, len(round_trips), worst,
                                median, rss_before, rss_after))
    assert worst < 100
    assert codes == [1009] * len(codes)
    assert len(codes) >= RATE * SECONDS * 0.9
