"""Headless Chromium against our server with permessage-deflate: Chromium offers
``permessage-deflate; client_max_window_bits`` on every connection. Text and binary messages
from 1 byte to 1 MiB echo back intact, and both directions are compressed on the wire.
"""
import pytest

from helpers import WireTap, echo_app

pytestmark = pytest.mark.browser

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>deflate</title></head>
<body><script>
(function () {
  const sizes = [1, 63, 64, 1000, 70000, 1048576];
  const out = {extensions: null, errors: [], echoed: 0, close: null};
  const expected = [];
  for (const n of sizes) {
    expected.push('\\u00e9'.repeat(n >> 1) + 'a'.repeat(n & 1));
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = (i * 7 + (i >> 9)) % 251;
    expected.push(bytes);
  }
  function same(got, want) {
    if (typeof want === 'string') return got === want;
    if (!(got instanceof ArrayBuffer) || got.byteLength !== want.length) return false;
    const view = new Uint8Array(got);
    for (let i = 0; i < want.length; i++) if (view[i] !== want[i]) return false;
    return true;
  }
  const ws = new WebSocket('ws://' + location.host + '/ws');
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    out.extensions = ws.extensions;
    for (const message of expected) ws.send(message);
  };
  ws.onmessage = (ev) => {
    if (!same(ev.data, expected[out.echoed])) out.errors.push('message ' + out.echoed);
    out.echoed += 1;
    if (out.echoed === expected.length) ws.close(1000, 'done');
  };
  ws.onerror = () => out.errors.push('error');
  ws.onclose = (ev) => { out.close = [ev.code, ev.wasClean]; window.__result = out; };
})();
</script></body></html>"""


def page_and_echo(environ, start_response):
    if 'wsgi.websocket' in environ:
        return echo_app(environ, start_response)
    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8'),
                              ('Content-Length', str(len(PAGE)))])
    return [PAGE]


def test_chromium_echo_with_compression(serve, browser):
    wire = WireTap(serve(page_and_echo).port)
    try:
        browser.get('http://127.0.0.1:%d/' % wire.port)
        result = browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const started = Date.now();
            (function poll() {
              if (window.__result || Date.now() - started > 50000) done(window.__result || null);
              else setTimeout(poll, 50);
            })();""")
    finally:
        wire.close()
    assert result is not None, 'the page did not finish'
    assert result['errors'] == [] and result['echoed'] == 12, result
    assert result['close'] == [1000, True]
    assert result['extensions'] == ('permessage-deflate; server_max_window_bits=12; '
                                    'client_max_window_bits=12')
    wire.assert_compressed_both_ways()
    # Our replies under min_size (the 1-byte ones) went out uncompressed.
    server_frames = wire.data_frames(1)
    assert server_frames[:2] == [(1, False), (2, False)], server_frames
