"""Markdown tables of one benchmark run, and the check of issue 3's targets against them.

``results[scenario][server]`` is the load generator's JSON object for that pair, or
``{'error': 'failed: ...' or 'not run: ...'}``; ``micro`` is bench/micro.py's JSON object.
"""
BASELINE = 'gevent-websocket'
#: Scenarios whose rows are other servers, and the row each is compared with.
BASELINES = {'S7': 'socketio-gevent-websocket'}
#: A server busy (running, or runnable and waiting for its core) less than this share of the
#: time was waiting for input: the load generator, or the round trips, limited it.
SERVER_BUSY = 0.9
#: Preempted (runnable while another process had the core) more than this share of the time:
#: other work on the machine shaped that figure.
NOISY = 0.05


def _si(value):
    for unit, scale in (('M', 1e6), ('k', 1e3)):
        if value >= scale:
            return '%.3g%s' % (value / scale, unit)
    return '%.3g' % value


def _pct(value):
    return '–' if value is None or value < 0 else '%d%%' % round(value * 100)


def _rate(value):
    return '%.3g GB/s' % (value / 1e3) if value >= 1e3 else '%.3g MB/s' % value


def _ratio(value, base):
    if value is None or not base:
        return '–'
    return '%.2f' % (value / base)


def _us(value):
    return '{:,.0f}'.format(value) if value >= 100 else '%.3g' % value


def _cpu_per_message(row):
    """The server's CPU microseconds per message (per cycle in S5): what preemption by other
    processes changes least, unlike the rate."""
    if row.get('server_cpu', -1) < 0 or not row.get('rate'):
        return None
    return row['server_cpu'] / row['rate'] * 1e6


def _cpu_columns(row):
    per_message = _cpu_per_message(row)
    return [_pct(row.get(key)) for key in ('gen_cpu', 'gen_waited', 'server_cpu',
                                           'server_sys', 'server_waited')] + [
        '–' if per_message is None else _us(per_message)]


#: "preempted": the share of the time it was runnable but another process had its core (the
#: other helpers' tests on this shared machine), from /proc/PID/schedstat.
#: "server kernel": the part of its CPU spent in system calls (and, on loopback, delivering
#: what it sends to the load generator's socket).
CPU_HEADERS = ['loadgen CPU', 'loadgen preempted', 'server CPU', 'server kernel',
               'server preempted', 'server CPU µs per message']

#: scenario -> (value key, headers after the server name, cells of one row)
_BROADCAST_HEADERS = ['deliveries/s', '× gevent-websocket', 'last arrival ms (median, best)',
                      'arrival p50 / p99 ms', 'server CPU ms per broadcast']


def _broadcast_cells(r, ratio):
    return [_si(r['rate']), ratio, '%.1f, %.1f' % (r['last_ms_median'], r['last_ms_best']),
            '%.1f / %.1f' % (r['p50_us'] / 1e3, r['p99_us'] / 1e3),
            '%.1f' % r['server_cpu_per_round_ms']]


LAYOUTS = {
    'S1': ('rate', ['round trips/s', '× gevent-websocket', 'p50 ms', 'p99 ms'],
           lambda r, ratio: [_si(r['rate']), ratio, '%.2f' % (r['p50_us'] / 1e3),
                             '%.2f' % (r['p99_us'] / 1e3)]),
    'S2': ('rate', ['messages/s', '× gevent-websocket'],
           lambda r, ratio: [_si(r['rate']), ratio]),
    'S3': ('mb_per_s', ['MB/s each way', '× gevent-websocket'],
           lambda r, ratio: ['%.4g' % r['mb_per_s'], ratio]),
    'S4': ('kib_per_connection', ['KiB per connection', '× gevent-websocket',
                                  'server RSS before → after', 'seconds to open'],
           lambda r, ratio: ['%.1f' % r['kib_per_connection'], ratio,
                             '%.1f → %.1f MiB' % (r['rss_before_kib'] / 1024,
                                                  r['rss_after_kib'] / 1024),
                             '%.1f' % r['open_seconds']]),
    'S5': ('rate', ['handshakes/s', '× gevent-websocket', 'p50 cycle ms'],
           lambda r, ratio: [_si(r['rate']), ratio, '%.2f' % (r['p50_us'] / 1e3)]),
    'S6': ('rate', _BROADCAST_HEADERS, lambda r, ratio: _broadcast_cells(r, ratio)),
    'S7': ('rate', ['round trips/s', '× gevent-websocket', 'p50 ms', 'p99 ms'],
           lambda r, ratio: [_si(r['rate']), ratio, '%.2f' % (r['p50_us'] / 1e3),
                             '%.2f' % (r['p99_us'] / 1e3)]),
    'S6k': ('rate', _BROADCAST_HEADERS, lambda r, ratio: _broadcast_cells(r, ratio)),
}


def _table(headers, rows):
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def _busy(result):
    """The share of the time the server ran or was runnable (on its core or waiting for it)."""
    return result['server_cpu'] + max(result['server_waited'], 0)


def scenario_table(scenario, title, by_server, labels):
    """One scenario's table, and sentences on noise and on whether the load generator kept
    up."""
    key, headers, cells = LAYOUTS[scenario]
    with_cpu = scenario not in ('S4', 'S6', 'S6k')
    base = by_server.get(BASELINES.get(scenario, BASELINE), {}).get(key)
    rows, measured = [], {}
    for server, result in by_server.items():
        if 'error' in result:
            width = len(headers) + (len(CPU_HEADERS) if with_cpu else 0)
            rows.append([labels[server], result['error']] + [''] * (width - 1))
            continue
        measured[server] = result
        rows.append([labels[server]] + cells(result, _ratio(result[key], base)) +
                    (_cpu_columns(result) if with_cpu else []))
    text = '### %s %s\n\n%s\n' % (scenario, title,
                                   _table(['server'] + headers +
                                          (CPU_HEADERS if with_cpu else []), rows))
    noisy = [labels[server] for server, result in measured.items()
             if max(result.get('gen_waited', 0), result.get('server_waited', 0)) > NOISY]
    if noisy:
        text += ('\nOther processes held a core for more than %s of the run of %s (see the '
                 'preempted columns): those figures are lower than on a quiet machine.\n'
                 % (_pct(NOISY), ', '.join(noisy)))
    for server, result in measured.items():
        if result.get('compressed_echoes'):
            text += ('\n%s: permessage-deflate was offered as browsers offer it '
                     '(`client_max_window_bits`), accepted, and %d of %d echoes (warm-up '
                     'included) came back compressed, so both zlib streams of each connection '
                     'were in use.\n'
                     % (labels[server], result['compressed_echoes'], result['verified']))
    if with_cpu and measured:
        busiest = max(measured, key=lambda server: measured[server]['gen_cpu'])
        text += '\nThe load generator used at most %s of its core (against %s). ' % (
            _pct(measured[busiest]['gen_cpu']), labels[busiest])
        waiting = [server for server, result in measured.items()
                   if _busy(result) < SERVER_BUSY]
        if not waiting:
            text += ('Every server was busy at least %s of the time (on its core or waiting '
                     'for it), so the servers were the bottleneck.\n' % _pct(SERVER_BUSY))
        else:
            text += ('Busy less than %s of the time, so waiting for input (the load generator '
                     'or the round trips limited them): %s.\n' % (
                         _pct(SERVER_BUSY), '; '.join(
                             '%s %s (load generator %s CPU, preempted %s)' % (
                                 labels[server], _pct(_busy(measured[server])),
                                 _pct(measured[server]['gen_cpu']),
                                 _pct(measured[server]['gen_waited']))
                             for server in waiting)))
    return text


def micro_table(micro):
    sizes = ['125 B' if s == 125 else '%d KiB' % (s // 1024) if s < 1 << 20 else '1 MiB'
             for s in micro['sizes']]
    copy = micro['rows'][0]['mb_per_s']
    rows = [[row['name']] + ['%s (%.2f)' % (_rate(v), v / c)
                             for v, c in zip(row['mb_per_s'], copy)]
            for row in micro['rows']]
    text = ('### Masking and UTF-8 validation (one core; in parentheses: the share of the '
            'copy\'s speed)\n\n' + _table(['operation'] + sizes, rows) + '\n')
    if not micro['compiled']:
        text += '\nThe compiled extension was not built: its rows are missing.\n'
    return text


def _value(results, scenario, server):
    result = results.get(scenario, {}).get(server)
    if not result or 'error' in result:
        return None
    return result[LAYOUTS[scenario][0]]


def targets(results, micro):
    """Issue 3's targets, each with its verdict in this run."""
    lines = []
    ours = 'geventws'
    for scenario in ('S1', 'S2', 'S3', 'S5'):
        mine, theirs = _value(results, scenario, ours), _value(results, scenario, 'picows')
        if mine is None or theirs is None:
            continue
        costs = [_cpu_per_message(results[scenario][name]) for name in (ours, 'picows')]
        lines.append('- %s: geventws / picows = %.2f: %s%s' % (
            scenario, mine / theirs, 'met' if mine > theirs else 'MISSED (must be > 1)',
            '' if None in costs else
            ' (server CPU per message: geventws %s µs, picows %s µs)'
            % tuple(_us(cost) for cost in costs)))
    s7 = {engine: results.get('S7', {}).get('socketio-' + engine) for engine in
          ('geventws', 'gevent-websocket', 'simple-websocket')}
    if all(row and 'error' not in row for row in s7.values()):
        rates = {engine: row['rate'] for engine, row in s7.items()}
        costs = {engine: _cpu_per_message(row) for engine, row in s7.items()}
        ahead = all(rates['geventws'] > rates[other] and (
            None in (costs['geventws'], costs[other]) or costs['geventws'] < costs[other])
            for other in ('gevent-websocket', 'simple-websocket'))
        lines.append('- S7: Flask-SocketIO round trips/s on geventws / gevent-websocket = '
                     '%.2f, / simple-websocket = %.2f; server CPU µs per round trip %s: %s' % (
                         rates['geventws'] / rates['gevent-websocket'],
                         rates['geventws'] / rates['simple-websocket'],
                         ', '.join('%s %s' % (engine, '–' if cost is None else _us(cost))
                                   for engine, cost in costs.items()),
                         'met' if ahead else 'MISSED (geventws ahead of both on both)'))
    mine = _value(results, 'S4', ours)
    if mine is not None:
        python_peers = [s for s in ('gevent-websocket', 'websockets', 'aiohttp', 'picows')
                        if _value(results, 'S4', s) is not None]
        best = min([_value(results, 'S4', s) for s in python_peers], default=None)
        ok = mine <= 13 and (best is None or mine < best)
        lines.append('- S4: geventws %.1f KiB per idle connection (at most 13 and below every '
                     'Python peer%s): %s' % (mine, ', best %.1f' % best if best else '',
                                             'met' if ok else 'MISSED'))
    with_deflate = _value(results, 'S4', 'geventws-deflate')
    if with_deflate is not None:
        lines.append('- S4 with permessage-deflate negotiated (no target; the peers here run '
                     'without compression): geventws %.1f KiB per idle connection'
                     % with_deflate)
    if micro and micro['compiled']:
        rows = {row['name']: row['mb_per_s'][-1] for row in micro['rows']}
        copy = micro['rows'][0]['mb_per_s'][-1]
        masked = next(v for name, v in rows.items() if name.startswith('mask, compiled'))
        lines.append('- masking 1 MiB at %.2f of the copy\'s speed (at least 0.5): %s' % (
            masked / copy, 'met' if masked / copy >= 0.5 else 'MISSED'))
    return '### Targets (issue 3)\n\n' + '\n'.join(lines) + '\n' if lines else ''
