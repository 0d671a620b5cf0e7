"""What the Flask and Bottle test apps do, so that each of them is only the wiring; the
deployment tests (tests/test_deploy_*.py) serve them in the programs they start."""
import ctypes
import json
import os
import sys

from geventws import ConnectionClosed


def echo(ws):
    """Echo every message; at the end report on stderr how many arrived and how many were
    sent back (a graceful shutdown must lose none of either)."""
    received = echoed = 0
    for message in ws:
        received += 1
        try:
            ws.send(message)
            echoed += 1
        except ConnectionClosed:
            pass   # the server is going away: it no longer sends, but still receives
    print('echo: %d messages, %d echoed' % (received, echoed), file=sys.stderr, flush=True)


def options(ws):
    """Send the connection's options as the server configured them (JSON)."""
    ws.accept()
    ws.send(json.dumps({'max_message_size': ws._conn.max_message_size,
                        'max_queue': ws.max_queue, 'close_timeout': ws.close_timeout,
                        'ping_interval': ws.ping_interval, 'ping_timeout': ws.ping_timeout,
                        'write_limit': ws.write_limit}))
    ws.receive()


def whoami(environ):
    """What the app believes about the request (JSON): scheme, client address, worker."""
    return json.dumps({'scheme': environ['wsgi.url_scheme'], 'remote': environ['REMOTE_ADDR'],
                       'pid': os.getpid()})


class _ArenaAllocator(ctypes.Structure):
    """CPython's PyObjectArenaAllocator."""
    _fields_ = [('ctx', ctypes.c_void_p), ('alloc', ctypes.c_void_p), ('free', ctypes.c_void_p)]


class _DlInfo(ctypes.Structure):
    _fields_ = [('dli_fname', ctypes.c_char_p), ('dli_fbase', ctypes.c_void_p),
                ('dli_sname', ctypes.c_char_p), ('dli_saddr', ctypes.c_void_p)]


def frame_stacks():
    """Whether the server process runs with geventws' frame-stack cache (JSON): the file
    of the function CPython's arena allocator allocates with now (the cache's shared object
    once ``recycle_frame_stacks()`` installed it), and how many frame stacks the cache holds
    right after a greenlet finished (none unless installed; None if it was not built)."""
    import greenlet
    allocator = _ArenaAllocator()
    ctypes.pythonapi.PyObject_GetArenaAllocator(ctypes.byref(allocator))
    dladdr = ctypes.CDLL(None).dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    found = _DlInfo()
    assert dladdr(allocator.alloc, ctypes.byref(found)), 'dladdr found no object'
    greenlet.greenlet(lambda: None).switch()   # its frame stack is freed as it finishes
    try:
        from geventws import _framestacks
    except ImportError:
        kept = None
    else:
        kept = _framestacks.kept()
    return json.dumps({'allocator': os.path.basename(found.dli_fname.decode()), 'kept': kept,
                       'pid': os.getpid()})
