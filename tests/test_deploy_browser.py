"""Headless Chromium on the chat demo that ``make run`` starts: two pages chat through one
WebSocket each, the echo on / returns text and an ArrayBuffer, and a page's close code and
reason reach the server.

``GEVENTWS_CHAT_SCREENSHOT=examples/chat/screenshot.png pytest tests/test_deploy_browser.py``
also saves the picture of two chatting tabs that the README shows.
"""
import os
import shutil

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from helpers import join_chat

pytestmark = pytest.mark.browser
WAIT = 20

ECHO_TEXT_AND_BINARY = """
const done = arguments[arguments.length - 1];
const ws = new WebSocket('ws://' + location.host + '/');
ws.binaryType = 'arraybuffer';
const got = [];
ws.onopen = () => {
  ws.send('hello \\u00e9\\u263a');
  ws.send(new Uint8Array([0, 1, 2, 253, 254, 255]).buffer);
};
ws.onmessage = (m) => {
  got.push(typeof m.data === 'string' ? m.data : Array.from(new Uint8Array(m.data)));
  if (got.length === 2) ws.close(1000, 'echoed');
};
ws.onclose = (c) => done({got: got, close: [c.code, c.wasClean]});
ws.onerror = () => got.push('error');
"""


def open_page(driver, url, name):
    driver.get('%s?name=%s' % (url, name))
    wait_for_event(driver, {'type': 'join', 'name': name})


def wait_for_event(driver, expected):
    """Wait until the page's chat received an event with the ``expected`` items; return it."""
    def seen(d):
        events = d.execute_script('return window.chat ? window.chat.events : []')
        return next((e for e in events if expected.items() <= e.items()), None)
    return WebDriverWait(driver, WAIT).until(seen)


def test_two_pages_chat_echo_and_close_with_4000(browser, chat_server):
    url = 'http://127.0.0.1:%d/' % chat_server.port
    open_page(browser, url, 'alice')
    alice = browser.current_window_handle
    browser.switch_to.new_window('tab')
    open_page(browser, url, 'bob')
    bob = browser.current_window_handle
    browser.execute_script("chat.send('hello from bob \\u263a')")

    browser.switch_to.window(alice)
    wait_for_event(browser, {'type': 'join', 'name': 'bob', 'online': ['alice', 'bob']})
    wait_for_event(browser, {'type': 'message', 'name': 'bob', 'text': 'hello from bob ☺'})
    echoed = browser.execute_async_script(ECHO_TEXT_AND_BINARY)
    assert echoed == {'got': ['hello é☺', [0, 1, 2, 253, 254, 255]], 'close': [1000, True]}
    browser.execute_script("chat.leave(4000, 'alice closes the tab')")
    closed = WebDriverWait(browser, WAIT).until(lambda d: d.execute_script('return chat.closed'))
    assert (closed['code'], closed['wasClean']) == (4000, True)

    browser.switch_to.window(bob)
    left = wait_for_event(browser, {'type': 'leave', 'name': 'alice'})
    assert (left['code'], left['reason'], left['online']) == (4000, 'alice closes the tab',
                                                             ['bob'])
    assert 'alice left (4000 alice closes the tab)' in chat_server.wait_for_output('alice left')
    browser.close()
    browser.switch_to.window(alice)


TWO_TABS = """
document.body.replaceChildren();
document.body.style.cssText = 'margin: 0; display: flex';
for (const name of ['alice', 'bob']) {
  const frame = document.createElement('iframe');
  frame.src = arguments[0] + '?name=' + name;
  frame.style.cssText = 'border: 0; width: 50%; height: 100vh';
  document.body.append(frame);
}
document.querySelector('iframe').style.borderRight = '2px solid #999';
"""

CONVERSATION = [('alice', 'Hi Bob! Is the new build out?'),
                ('bob', 'Yes: gunicorn reloaded, every socket got 1001 and came back.'),
                ('alice', 'And nginx keeps idle ones for an hour now.'),
                ('bob', 'Nice. Lunch?')]


def test_screenshot_of_two_chatting_tabs(browser, chat_server, tmp_path):
    url = 'http://127.0.0.1:%d/' % chat_server.port
    browser.set_window_size(1200, 600)
    browser.get(url + 'static/chat.css')   # any page of the server's origin, replaced
    browser.execute_script(TWO_TABS, url)
    frames = {'alice': 0, 'bob': 1}
    for name, index in frames.items():
        browser.switch_to.frame(index)
        wait_for_event(browser, {'type': 'join', 'name': name})
        browser.switch_to.default_content()
    carol = join_chat(chat_server.port, 'carol')   # a third member who comes and goes
    carol.close(status=1000, reason=b'bye')
    for name, text in CONVERSATION:
        browser.switch_to.frame(frames[name])
        browser.execute_script('chat.send(arguments[0])', text)
        browser.switch_to.default_content()
    browser.switch_to.frame(frames['alice'])
    wait_for_event(browser, {'type': 'message', 'name': 'bob', 'text': CONVERSATION[-1][1]})
    browser.switch_to.default_content()
    picture = tmp_path / 'chat.png'
    assert browser.save_screenshot(str(picture))
    assert picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    target = os.environ.get('GEVENTWS_CHAT_SCREENSHOT')
    if target:
        shutil.copyfile(picture, target)
