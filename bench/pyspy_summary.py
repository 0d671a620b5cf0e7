"""Where a server's time goes, from py-spy's ``record --format raw`` output.

Each line of that format is one call stack, outermost frame first, frames separated by ``;``,
then a space and the number of samples. The summary counts, per function, the samples where
it was running itself (self) and those where it was anywhere on the stack (total), and the
self time per source file (which library the time goes to).
"""
import collections
import re
import sys

_LINE_NUMBER = re.compile(r':\d+\)$')
_FILE = re.compile(r'\(([^()]*)\)$')


def _function(frame):
    """``recv_into (gevent/_socket3.py:123)`` -> ``recv_into (gevent/_socket3.py)``."""
    return _LINE_NUMBER.sub(')', frame.strip())


def summarize(path, top=15):
    own, total, files = collections.Counter(), collections.Counter(), collections.Counter()
    samples = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip('\n').rpartition(' ')
            if not stack or not count.isdigit():
                continue
            frames = [_function(frame) for frame in stack.split(';')]
            samples += int(count)
            own[frames[-1]] += int(count)
            match = _FILE.search(frames[-1])
            files[match.group(1) if match else frames[-1]] += int(count)
            for function in set(frames):
                total[function] += int(count)
    if not samples:
        return 'no samples in %s' % path

    def table(counter):
        rows = ['| %d%% | `%s` |' % (round(100 * n / samples), name)
                for name, n in counter.most_common(top)]
        return '| share | where |\n|---|---|\n' + '\n'.join(rows)

    return ('%d samples.\n\nSelf time (the function itself was running):\n\n%s\n\n'
            'Total time (the function was on the stack):\n\n%s\n\n'
            'Self time by source file:\n\n%s\n'
            % (samples, table(own), table(total), table(files)))


if __name__ == '__main__':
    print(summarize(sys.argv[1]))
