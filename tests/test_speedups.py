"""Which hot path is in use, the switch that forces the pure-Python one, and the warning when
the compiled one is missing."""
import geventws
from geventws import speedups
from geventws.protocol import frames
from helpers import FORCED_PURE, RawClient, frame, run_python


def test_speedups_enabled_follows_the_switch():
    """The suite runs twice (make test): compiled, then GEVENTWS_NO_EXTENSIONS=1."""
    assert geventws.speedups_enabled() is not FORCED_PURE
    expected = frames.mask if FORCED_PURE else speedups._reader.mask
    assert speedups.mask is expected


def test_switch_in_a_fresh_interpreter():
    check = 'import geventws; print(geventws.speedups_enabled())'
    assert run_python(check).stdout.strip() == 'True'
    pure = run_python(check, GEVENTWS_NO_EXTENSIONS='1')
    assert pure.stdout.strip() == 'False'
    assert pure.stderr == '', 'choosing pure Python on purpose warns about nothing'


def test_one_clear_warning_when_the_extension_is_missing():
    hidden = ("import sys; sys.modules['geventws.protocol._reader'] = None\n"
              "import geventws, geventws.speedups\n"
              "print(geventws.speedups_enabled())\n"
              "print(geventws.speedups.MessageReader.__module__)")
    result = run_python(hidden)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['False', 'geventws.protocol.reader']
    warnings = [line for line in result.stderr.splitlines() if 'Warning' in line]
    assert len(warnings) == 1, result.stderr
    assert 'RuntimeWarning' in warnings[0] and 'pure-Python' in warnings[0]
    assert 'C compiler' in warnings[0]


def test_both_masks_match_a_reference():
    key = b'\x0f\xf0\xaa\x55'
    data = bytes(range(256)) * 9 + b'tail'
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert frames.mask(data, key) == expected
    assert speedups.mask(data, key) == expected
    assert frames.mask(b'', key) == speedups.mask(b'', key) == b''


# -- the read path: one shared buffer per thread ----------------------------------------------

def test_read_buffer_is_shared_per_thread_even_when_monkey_patched():
    """Greenlets of one hub share one read buffer; another OS thread (another hub) has its
    own. Checked in a fresh interpreter because patch_all() cannot be undone."""
    code = '\n'.join([
        'from gevent import monkey; monkey.patch_all()',
        'import gevent, threading',
        'from geventws.io.sockio import read_buffer as _read_buffer',
        'mine = [gevent.spawn(_read_buffer) for _ in range(3)]',
        'gevent.joinall(mine)',
        'same = len({id(g.value) for g in mine}) == 1',
        'other = []',
        'start, lock = monkey.get_original("_thread", ["start_new_thread", "allocate_lock"])',
        'done = lock(); done.acquire()',
        'start(lambda: (other.append(_read_buffer()), done.release()), ())',
        'assert done.acquire(timeout=10)',
        'print(same, other[0] is not mine[0].value, len(mine[0].value))',
    ])
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    from geventws.limits import READ_SIZE
    assert result.stdout.split() == ['True', 'True', str(READ_SIZE)]


def test_connections_sharing_the_read_buffer_keep_their_own_bytes(echo_server):
    """Half a frame from one client, a whole one from another, then the rest of the first:
    the leftover of the first read must survive the reads of the second connection."""
    first, second = RawClient(echo_server.port), RawClient(echo_server.port)
    first.handshake()
    second.handshake()
    big = bytes(range(256)) * 1000
    text = 'éü€😀' * 50
    data = frame(0x2, big) + frame(0x1, text.encode())
    for cut in (3, 7, 1000, len(data) - 5):
        first.send(data[:cut])
        second.send(frame(0x1, b'in between'))
        assert second.recv_message() == 'in between'
        first.send(data[cut:])
        assert first.recv_message() == big
        assert first.recv_message() == text
