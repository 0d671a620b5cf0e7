"""Micro-benchmark of masking and UTF-8 validation against a plain copy of the same bytes.

A copy is the limit: unmasking must touch every byte once, as a copy does. Prints one JSON
object: ``{"sizes": [...], "rows": [{"name": ..., "mb_per_s": [...]}, ...]}``; bench/run.py
turns it into a table. Run pinned to one core (bench/run.py uses ``taskset -c 0``).
"""
import argparse
import json
import os
import time

from geventws.protocol import frames, reader

try:
    from geventws.protocol import _reader as _speedups
except ImportError:  # not built: the table says so instead of failing
    _speedups = None

SIZES = [125, 4096, 65536, 1 << 20]
KEY = b'\x37\xfa\x21\x3d'
#: Text messages: mostly ASCII with 2-, 3- and 4-byte characters, as chat text in many
#: languages is; and ASCII JSON, where CPython's decoder has its fast path.
SAMPLE_TEXTS = {
    'multilingual': 'WebSocket Grüße, привет, 你好, 🎉 the quick brown fox. ',
    'ASCII JSON': '{"user": "alice", "text": "the quick brown fox", "seq": 42} ',
}


def text_of_size(n, sample):
    """Exactly ``n`` bytes of valid UTF-8 (the sample repeated, cut at a character boundary)."""
    raw = (sample * (n // len(sample.encode()) + 2)).encode()[:n]
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
    """(name, callable) for every row; the callables work on ``size`` bytes. A reader's binary
    and text frame rows differ only by UTF-8 validation and decoding: their gap is its cost."""
    data = os.urandom(size)
    source = bytearray(data)
    texts = {kind: text_of_size(size, sample) for kind, sample in SAMPLE_TEXTS.items()}
    readers = [('compiled', _speedups.MessageReader)] if _speedups is not None else []
    readers.append(('pure-Python', reader.MessageReader))
    yield 'bytes copy (the limit)', lambda: bytes(source)
    if _speedups is not None:
        yield 'mask, compiled (geventws.protocol._reader.mask)', lambda: _speedups.mask(data, KEY)
    yield 'mask, pure Python (geventws.protocol.frames.mask)', lambda: frames.mask(data, KEY)
    for kind, text in texts.items():
        yield "UTF-8 decode, %s: bytes.decode('utf-8')" % kind, text.decode
    for name, reader_class in readers:
        yield ('binary frame: unmask, %s reader' % name,
               reader_feed(reader_class, masked_frame(frames.OP_BINARY, data), data))
        for kind, text in texts.items():
            yield ('text frame, %s: unmask + UTF-8, %s reader' % (kind, name),
                   reader_feed(reader_class, masked_frame(frames.OP_TEXT, text), text.decode()))


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
