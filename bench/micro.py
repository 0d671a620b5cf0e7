"""Micro-benchmark of masking and UTF-8 validation against a plain copy of the same bytes.

A copy is the limit: unmasking must touch every byte once, as a copy does. Prints one JSON
object: ``{"sizes": [...], "rows": [{"name": ..., "mb_per_s": [...]}, ...]}``; bench/run.py
turns it into a table. Run pinned to one core (bench/run.py uses ``taskset -c 0``).
"""
import argparse
import json
import os
import time

from geventws import frames, reader

try:
    from geventws import _speedups
except ImportError:  # not built: the table says so instead of failing
    _speedups = None

SIZES = [125, 4096, 65536, 1 << 20]
KEY = b'\x37\xfa\x21\x3d'
#: Mostly ASCII with 2-, 3- and 4-byte characters, as chat text in many languages is.
SAMPLE_TEXT = 'WebSocket Grüße, привет, 你好, 🎉 the quick brown fox. '


def text_of_size(n):
    """Exactly ``n`` bytes of valid UTF-8 (the sample repeated, cut at a character boundary)."""
    raw = (SAMPLE_TEXT * (n // len(SAMPLE_TEXT.encode()) + 2)).encode()[:n]
    cut = raw.decode('utf-8', 'ignore').encode()
    return cut + b' ' * (n - len(cut))


def masked_frame(opcode, payload):
    """A client frame (masked, RFC 6455 5.3) carrying ``payload``."""
    return frames.frame_header(opcode, len(payload), mask_key=KEY) + frames.mask(payload, KEY)


def bytes_per_second(fn, nbytes, min_time):
    """Best of 3 timings, each of enough calls to last ``min_time / 3``."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 3:
            break
        loops *= max(2, min(10, int(min_time / 3 / max(elapsed, 1e-9))))
    best = elapsed / loops
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - start) / loops)
    return nbytes / best


def reader_feed(reader_class, frame, expected):
    """A closure feeding one whole frame to a server-side reader; checks the result once."""
    message_reader = reader_class(max_message_size=1 << 30, expect_masked=True)
    (event,) = message_reader.feed(frame)
    assert event.data == expected, 'the reader returned another message'
    return lambda: message_reader.feed(frame)


def cases(size):
    """(name, callable) for every row; the callables work on ``size`` bytes. The binary and
    text frame rows differ only by UTF-8 validation: their gap is its cost in each reader."""
    data = os.urandom(size)
    text = text_of_size(size)
    binary_frame = masked_frame(frames.OP_BINARY, data)
    text_frame = masked_frame(frames.OP_TEXT, text)
    decoded = text.decode()
    source = bytearray(data)
    yield 'bytes copy (the limit)', lambda: bytes(source)
    if _speedups is not None:
        yield 'mask, compiled (geventws._speedups.mask)', lambda: _speedups.mask(data, KEY)
    yield 'mask, pure Python (geventws.frames.mask)', lambda: frames.mask(data, KEY)
    yield "UTF-8: bytes.decode('utf-8')", lambda: text.decode('utf-8')
    if _speedups is not None:
        yield ('binary frame: unmask, compiled reader',
               reader_feed(_speedups.MessageReader, binary_frame, data))
    yield ('binary frame: unmask, pure-Python reader',
           reader_feed(reader.MessageReader, binary_frame, data))
    if _speedups is not None:
        yield ('text frame: unmask + UTF-8, compiled reader',
               reader_feed(_speedups.MessageReader, text_frame, decoded))
    yield ('text frame: unmask + UTF-8, pure-Python reader',
           reader_feed(reader.MessageReader, text_frame, decoded))


def measure(min_time):
    rows = {}
    for size in SIZES:
        for name, fn in cases(size):
            rows.setdefault(name, []).append(bytes_per_second(fn, size, min_time) / 1e6)
    return {'sizes': SIZES, 'compiled': _speedups is not None,
            'rows': [{'name': name, 'mb_per_s': speeds} for name, speeds in rows.items()]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--min-time', type=float, default=0.3,
                        help='seconds spent on each cell (default 0.3)')
    print(json.dumps(measure(parser.parse_args().min_time)))


if __name__ == '__main__':
    main()
