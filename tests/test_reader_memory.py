"""What a frame's announced length costs a server before its bytes come: nothing much.

A header may announce up to ``max_message_size`` (16 MiB by default) and then send nothing
more. A reader that reserved the announced length at once would give 200 such connections
3.2 GiB of address space; under a 2 GiB limit (RLIMIT_AS) the server ran out of memory
after about 120 of them. Here ``python -m geventws serve`` runs under that limit and must
keep all 200 open, and still echo on a new connection; and the reader the suite runs
(compiled or pure) holds about what arrived, whatever was announced.
"""
import selectors
import tracemalloc

import pytest

from geventws import speedups
from geventws.protocol.frames import OP_BINARY
from helpers import (APPS_DIR, PYTHON, RawClient, assert_echoes, frame, free_port,
                     python_env, ws_connect)

ADDRESS_SPACE = 2 * 2 ** 30
CONNECTIONS = 200
ANNOUNCED = 16 * 2 ** 20

#: ``python -m geventws ...`` under the address-space limit.
LIMITED_GEVENTWS = ('import resource, runpy, sys\n'
                    'resource.setrlimit(resource.RLIMIT_AS, (%d, %d))\n'
                    'sys.argv[0] = "geventws"\n'
                    'runpy.run_module("geventws", run_name="__main__")'
                    % (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize('fin', [True, False], ids=['final frame', 'first fragment'])
def test_a_reader_holds_what_arrived_not_what_was_announced(fin):
    arrived = 2 ** 20
    wire = frame(OP_BINARY, bytes(arrived), fin=fin, length=ANNOUNCED)
    header = len(wire) - arrived
    reader = speedups.MessageReader(ANNOUNCED, True)
    tracemalloc.start()
    try:
        assert reader.feed(wire[:header + 11]) == []
        first = tracemalloc.get_traced_memory()[0]
        for start in range(header + 11, len(wire), 65536):
            assert reader.feed(wire[start:start + 65536]) == []
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert first < 128 * 1024, first
    assert held < 2 * arrived, held


def memory_kib(pid):
    """The process's (VmRSS, VmSize) in KiB."""
    with open('/proc/%d/status' % pid) as status:
        fields = dict(line.split(':', 1) for line in status)
    return tuple(int(fields[name].split()[0]) for name in ('VmRSS', 'VmSize'))


def test_announced_lengths_reserve_no_memory(programs):
    port = free_port()
    server = programs([PYTHON, '-c', LIMITED_GEVENTWS, 'serve', 'flask_app:app', '--port',
                       str(port)], port, cwd=APPS_DIR, env=python_env())
    before = memory_kib(server.pid)
    clients = []
    for _ in range(CONNECTIONS):
        client = RawClient(port)
        client.handshake(path='/echo')
        client.send(frame(OP_BINARY, b'a few bytes', length=ANNOUNCED))
        clients.append(client)
    ws = ws_connect('ws://127.0.0.1:%d/echo' % port)
    assert_echoes(ws)
    ws.close()
    after = memory_kib(server.pid)
    print('\nserver RSS %d -> %d KiB, VmSize %d -> %d KiB with %d frames announcing %d bytes'
          % (before[0], after[0], before[1], after[1], CONNECTIONS, ANNOUNCED))
    # A closed connection is readable (its close frame, or its end): none may be.
    with selectors.DefaultSelector() as selector:
        for client in clients:
            selector.register(client.sock, selectors.EVENT_READ)
        readable = selector.select(timeout=1.0)
    assert not readable, '%d of %d connections closed' % (len(readable), CONNECTIONS)
    output = server.output()
    assert 'Traceback' not in output, '%d errors, the last:\n%s' % (
        output.count('Traceback'), output[output.rfind('Traceback'):])
    for client in clients:
        client.sock.close()
