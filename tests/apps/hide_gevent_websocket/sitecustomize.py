"""On PYTHONPATH, makes this interpreter one where gevent-websocket is not installed: the
finder of modules on sys.path finds no ``geventwebsocket`` (``import`` fails as for a missing
package, ``importlib.util.find_spec`` says None), so geventws.compat.register may stand in.
The suite's virtualenv has the real package; the tests run both situations."""
import importlib.machinery
import sys


class _PathFinderWithout(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == 'geventwebsocket' or name.startswith('geventwebsocket.'):
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [_PathFinderWithout if finder is importlib.machinery.PathFinder
                    else finder for finder in sys.meta_path]
