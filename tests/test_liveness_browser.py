"""Headless Chromium leaves a page whose WebSocket an app holds while it sleeps: the hub
answers the browser's close (1001, going away) and the sleeping app's socket is closed with
that code within a second, before the app reads anything."""
import threading
import time

import gevent
import pytest

pytestmark = pytest.mark.browser

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>leaving</title></head>
<body><script>
  const ws = new WebSocket('ws://' + location.host + '/ws');
  ws.onmessage = (ev) => { window.__opened = ev.data; };
</script></body></html>"""


def test_a_tab_that_navigates_away_is_seen_closed_by_a_sleeping_app(serve, browser):
    sockets = []
    wake = threading.Event()

    def app(environ, start_response):
        ws = environ.get('wsgi.websocket')
        if ws is None:
            # no-store: Chromium keeps other pages (and their sockets) in its
            # back-forward cache when the tab navigates away.
            start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8'),
                                      ('Content-Length', str(len(PAGE))),
                                      ('Cache-Control', 'no-store')])
            return [PAGE]
        ws.send('hello')
        sockets.append(ws)
        while not wake.is_set():
            gevent.sleep(0.01)   # the app does something else and never reads
        return []

    server = serve(app)
    try:
        browser.get('http://127.0.0.1:%d/' % server.port)
        deadline = time.monotonic() + 10
        while browser.execute_script('return window.__opened || null') != 'hello':
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ws = sockets[0]
        browser.get('about:blank')
        left = time.monotonic()
        while not server.call(lambda: ws.closed):
            assert time.monotonic() - left < 5
            time.sleep(0.01)
        took = time.monotonic() - left
        print('\nthe sleeping app\'s socket was closed %.0f ms after the tab left: %s %r'
              % (took * 1000, ws.close_code, ws.close_reason))
        assert ws.close_code == 1001
        assert took < 1.0
    finally:
        wake.set()
