"""bottle-websocket and Eel on geventws (the README's recipe): a bottle-websocket app with
geventws.compat.bottle's server adapter in place of bottle-websocket's, and an Eel app whose
server Eel starts through that adapter once it replaces bottle-websocket's. Eel's side is
played by a WebSocket client speaking Eel's protocol (JSON calls and returns) as eel.js does,
and by eel.js itself in headless Chromium: Python functions called from the page, a page
function called from Python."""
import json

import pytest

from helpers import APPS_DIR, PYTHON, free_port, http_get, python_env, ws_connect

OURS = 'geventws.io.websocket.WebSocket'


def test_bottle_websocket(programs):
    port = free_port()
    server = programs([PYTHON, 'bottle_websocket_app.py', str(port)], port, cwd=APPS_DIR,
                      env=python_env())
    assert http_get('http://127.0.0.1:%d/' % port) == 'hello from bottle-websocket'
    ws = ws_connect('ws://127.0.0.1:%d/websocket' % port)
    ws.send('hello é')
    assert ws.recv() == 'hello é'
    ws.close()
    ws = ws_connect('ws://127.0.0.1:%d/which' % port)
    assert ws.recv() == OURS
    ws.close()
    assert 'Traceback' not in server.output()


def _call(ws, call_id, name, *args):
    ws.send(json.dumps({'call': call_id, 'name': name, 'args': list(args)}))
    while True:
        message = json.loads(ws.recv())
        if message.get('return') == call_id:
            assert message['status'] == 'ok', message
            return message['value']


def test_eel(programs):
    port = free_port()
    server = programs([PYTHON, 'eel_app.py', str(port)], port, cwd=APPS_DIR, env=python_env())
    assert http_get('http://127.0.0.1:%d/eel.js' % port).startswith('eel = {')
    assert '<title>eel on geventws</title>' in http_get(
        'http://127.0.0.1:%d/main.html' % port)
    page = ws_connect('ws://127.0.0.1:%d/eel?page=main.html' % port)
    assert _call(page, 1, 'add', 2, 3) == 5
    assert _call(page, 2, 'websocket_classes') == [OURS]
    page.send(json.dumps({'call': 3, 'name': 'shout_to_pages', 'args': ['hi page']}))
    seen = [json.loads(page.recv()) for _ in range(2)]
    call = next(message for message in seen if 'call' in message)
    assert (call['name'], call['args']) == ('shout', ['hi page'])
    assert {'return': 3, 'status': 'ok', 'value': 'sent', 'error': {}} in seen
    page.send(json.dumps({'return': call['call'], 'status': 'ok', 'value': None}))
    page.close()
    assert 'Traceback' not in server.output()


@pytest.mark.browser
def test_eel_in_a_browser(programs, browser):
    """The same app with its page in headless Chromium: eel.js calls Python (``add``), and
    Python calls the page's ``shout`` back, over geventws."""
    from selenium.webdriver.support.ui import WebDriverWait
    port = free_port()
    server = programs([PYTHON, 'eel_app.py', str(port)], port, cwd=APPS_DIR, env=python_env())
    browser.get('http://127.0.0.1:%d/main.html' % port)
    result = WebDriverWait(browser, 20).until(
        lambda driver: driver.execute_script('return window.__result || null'))
    assert result == {'sum': 5, 'said': 'hello page'}
    assert 'Traceback' not in server.output()
