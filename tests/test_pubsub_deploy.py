"""A deployment on Redis behind HAProxy (round robin): two ``geventws serve`` processes and a
gunicorn with two workers, all serving tests/apps/pubsub_app.py (``/sub/<channel>``,
``/pub/<channel>``; a subscriber's messages are ``<id> <message>``, and ``pid <pid>`` once
subscribed). Subscribers are ``WebSocketClient(..., reconnect=True)`` in this thread's hub,
sending the last id they saw as ``Last-Event-ID`` on each connection.

Then the chat demo (examples/chat) on Redis, with a page on ``python examples/chat/app.py
--redis`` and one on gunicorn with examples/gunicorn.conf.py, in headless Chromium.
"""
import os
import signal
import time

import gevent
import pytest
from selenium.webdriver.support.ui import WebDriverWait

from geventws import WebSocketClient
from helpers import APPS_DIR, PYTHON, ROOT, free_port, python_env, require_tool

pytestmark = [pytest.mark.redis, pytest.mark.proxy, pytest.mark.gunicorn]
WORKER = 'geventws.gunicorn.GeventWebSocketWorker'
HAPROXY = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    retries 3
    option redispatch
frontend web
    bind 127.0.0.1:{port}
    default_backend apps
backend apps
    balance roundrobin
{servers}
"""


class Deployment:
    def __init__(self, programs, tmp_path, redis):
        env = python_env(REDIS_URL=redis.url)
        self.serve_pids = set()
        backends = []
        for _ in range(2):
            port = free_port()
            program = programs([PYTHON, '-m', 'geventws', 'serve', 'pubsub_app:app',
                                '--port', str(port)], port, cwd=APPS_DIR, env=env)
            self.serve_pids.add(program.pid)
            backends.append(port)
        port = free_port()
        self.gunicorn = programs(
            [PYTHON, '-m', 'gunicorn', '-k', WORKER, '-w', '2', '-b', '127.0.0.1:%d' % port,
             '--no-control-socket', '--graceful-timeout', '1', '--chdir', APPS_DIR,
             'pubsub_app:app'], port, env=env, stop_signal=signal.SIGQUIT)
        backends.append(port)
        self.direct_port = backends[0]
        self.port = free_port()
        servers = '\n'.join('    server app%d 127.0.0.1:%d' % (i, p)
                            for i, p in enumerate(backends))
        config = tmp_path / 'haproxy.cfg'
        config.write_text(HAPROXY.format(port=self.port, servers=servers))
        programs([require_tool('haproxy', 'the deployment behind a proxy'), '-f',
                  str(config), '-db'], self.port)


class Subscriber:
    """A reconnecting client of ``/sub/<channel>`` through the proxy: ``messages`` as (id,
    text), ``pids`` of the processes it was served by, one per connection."""

    def __init__(self, port, channel):
        self.messages, self.pids = [], []
        self.ws = WebSocketClient(
            'ws://127.0.0.1:%d/sub/%s' % (port, channel), reconnect=True,
            reconnect_delay=0.05, reconnect_attempts=20,
            headers=lambda: {'Last-Event-ID': self.messages[-1][0]} if self.messages else {})
        self.ws.onmessage = self.received
        self.ws.start()

    def received(self, event):
        kind, rest = event.data.split(' ', 1)
        if kind == 'pid':
            self.pids.append(int(rest))
        else:
            assert kind != 'lost', event.data
            self.messages.append((kind, rest))

    def wait_subscribed(self, connections=1):
        deadline = time.monotonic() + 20
        while len(self.pids) < connections:
            assert time.monotonic() < deadline, 'not subscribed'
            gevent.sleep(0.01)


def publish(port, channel, count, pause=0.0, every=None):
    """``count`` messages ``m-<n>`` published through the app at ``port`` (acknowledged one
    by one); ``every``: (n, function) calls the function after the n-th."""
    ws = WebSocketClient('ws://127.0.0.1:%d/pub/%s' % (port, channel))
    assert ws.receive().startswith('pid ')
    published = []
    for n in range(count):
        ws.send('m-%d' % n)
        answer, rest = ws.receive().split(' ', 1)
        assert answer == 'ok', rest
        published.append((rest, 'm-%d' % n))
        if every is not None and n + 1 == every[0]:
            every[1]()
        gevent.sleep(pause)
    ws.close()
    return published


def wait_for(subscribers, count, timeout=30):
    deadline = time.monotonic() + timeout
    while any(len(s.messages) < count for s in subscribers):
        assert time.monotonic() < deadline, [len(s.messages) for s in subscribers]
        gevent.sleep(0.02)


@pytest.fixture
def deployment(programs, tmp_path, redis_server):
    return Deployment(programs, tmp_path, redis_server())


def test_subscribers_on_every_process_get_one_order(deployment):
    subscribers = [Subscriber(deployment.port, 'room') for _ in range(8)]
    for subscriber in subscribers:
        subscriber.wait_subscribed()
    pids = {subscriber.pids[0] for subscriber in subscribers}
    publishers = [gevent.spawn(publish, deployment.port, 'room', 300) for _ in range(2)]
    gevent.joinall(publishers, raise_error=True)
    wait_for(subscribers, 600)
    print('8 subscribers on %d processes (%d of them gunicorn workers), 2 publishers through '
          'the proxy: 600 messages each, in one order'
          % (len(pids), len(pids - deployment.serve_pids)))
    assert len(pids) >= 3 and deployment.serve_pids <= pids
    for subscriber in subscribers:
        assert subscriber.messages == subscribers[0].messages
        subscriber.ws.close()
    ids = [message_id for message_id, _ in subscribers[0].messages]
    assert len(set(ids)) == 600 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split('-'))))


def test_worker_killed_its_clients_resume_elsewhere(deployment):
    subscribers = [Subscriber(deployment.port, 'k') for _ in range(9)]
    for subscriber in subscribers:
        subscriber.wait_subscribed()
    on_workers = {s.pids[0] for s in subscribers} - deployment.serve_pids
    assert on_workers, 'no subscriber on a gunicorn worker'
    victim = min(on_workers)
    hit = [s for s in subscribers if s.pids[0] == victim]
    killed_at = []

    def kill():
        os.kill(victim, signal.SIGKILL)
        killed_at.append(time.monotonic())

    published = publish(deployment.direct_port, 'k', 600, pause=0.002, every=(200, kill))
    wait_for(subscribers, 600)
    print('worker %d SIGKILLed after 200 of 600 messages: %d of 9 subscribers were on it, '
          'came back on %s and missed nothing; all had everything %.2f s after the kill'
          % (victim, len(hit), sorted({s.pids[-1] for s in hit}),
             time.monotonic() - killed_at[0]))
    for subscriber in subscribers:
        assert subscriber.messages == published   # no gap, no duplicate, in order
        subscriber.ws.close()
    for subscriber in hit:
        assert len(subscriber.pids) == 2 and subscriber.pids[1] != victim


# -- the chat demo on Redis, in a browser ---------------------------------------------------

def wait_for_event(driver, expected, timeout=20):
    def seen(d):
        events = d.execute_script('return window.chat ? window.chat.events : []')
        return next((e for e in events if expected.items() <= e.items()), None)
    return WebDriverWait(driver, timeout).until(seen)


@pytest.mark.browser
def test_chat_pages_on_two_processes_and_a_reload_catches_up(programs, redis_server,
                                                             browser):
    redis = redis_server()
    env = python_env(REDIS_URL=redis.url)
    solo = free_port()
    programs([PYTHON, 'examples/chat/app.py', '--port', str(solo), '--redis', redis.url],
             solo, cwd=ROOT, env=python_env()).wait_for_output('chat room at')
    workers = free_port()
    programs([PYTHON, '-m', 'gunicorn', '-c', 'examples/gunicorn.conf.py', '-w', '2',
              '-b', '127.0.0.1:%d' % workers, '--no-control-socket', '--graceful-timeout',
              '1', '--chdir', 'examples/chat', 'app:app'], workers, cwd=ROOT, env=env,
             stop_signal=signal.SIGQUIT)
    browser.get('http://127.0.0.1:%d/?name=alice' % solo)
    wait_for_event(browser, {'type': 'join', 'name': 'alice'})
    alice = browser.current_window_handle
    browser.switch_to.new_window('tab')
    browser.get('http://127.0.0.1:%d/?name=bob' % workers)
    wait_for_event(browser, {'type': 'join', 'name': 'bob', 'online': ['alice', 'bob']})
    bob = browser.current_window_handle
    browser.execute_script("chat.send('hi alice, from a gunicorn worker')")
    browser.switch_to.window(alice)
    wait_for_event(browser, {'type': 'message', 'name': 'bob',
                             'text': 'hi alice, from a gunicorn worker'})
    browser.execute_script("chat.send('hi bob')")
    wait_for_event(browser, {'type': 'message', 'name': 'alice', 'text': 'hi bob'})
    browser.execute_script("chat.leave(1000, 'brb')")   # alice goes away...
    browser.switch_to.window(bob)
    wait_for_event(browser, {'type': 'message', 'name': 'alice', 'text': 'hi bob'})
    wait_for_event(browser, {'type': 'leave', 'name': 'alice'})
    for text in ('where did you go?', 'you missed this'):
        browser.execute_script('chat.send(arguments[0])', text)
    browser.switch_to.window(alice)   # ... and reloads the page, which catches up
    browser.refresh()
    wait_for_event(browser, {'type': 'message', 'text': 'you missed this'})
    new = [(e['type'], e.get('text')) for e in browser.execute_script('return chat.events')]
    assert new[:3] == [('leave', None), ('message', 'where did you go?'),
                       ('message', 'you missed this')], new
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#log li')).map(li => li.textContent)")
    assert any(line.endswith('hi bob') for line in shown), shown   # kept from before
    browser.close()
    browser.switch_to.window(bob)
