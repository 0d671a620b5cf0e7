"""The demo ``make run`` starts (examples/chat): the chat page on GET /, a WebSocket echo on /,
the room on /chat with join and leave notices; and examples/echo.py, still there."""
import json
import os

import websocket

from helpers import PYTHON, ROOT, assert_echoes, free_port, http_get, join_chat, python_env


def next_event(ws):
    """The room's next event, without its id (the tests of ids: test_pubsub_deploy.py)."""
    event = json.loads(ws.recv())
    assert event.pop('id', None)
    return event


def test_banner_names_the_page_and_the_echo(chat_server):
    port = chat_server.port
    assert ('chat room at http://127.0.0.1:%d/ (its socket: ws://127.0.0.1:%d/chat); '
            'WebSocket echo at ws://127.0.0.1:%d/' % (port, port, port)) in chat_server.output()


def test_page_and_its_files(chat_server):
    base = 'http://127.0.0.1:%d/' % chat_server.port
    page = http_get(base)
    assert '<title>geventws chat</title>' in page
    assert '/static/chat.js' in page and '/static/chat.css' in page
    assert "new WebSocket(scheme + location.host + '/chat" in http_get(base + 'static/chat.js')
    assert '#log' in http_get(base + 'static/chat.css')


def test_websocket_on_root_echoes_text_and_binary(chat_server):
    ws = websocket.create_connection('ws://127.0.0.1:%d/' % chat_server.port, timeout=10)
    assert_echoes(ws)
    ws.close()


def test_room_join_messages_and_leave(chat_server):
    alice = join_chat(chat_server.port, 'alice')
    assert next_event(alice) == {'type': 'join', 'name': 'alice', 'online': ['alice']}
    bob = join_chat(chat_server.port, 'bob')
    for ws in (alice, bob):
        assert next_event(ws) == {'type': 'join', 'name': 'bob', 'online': ['alice', 'bob']}
    bob.send('hi alice')
    for ws in (alice, bob):
        assert next_event(ws) == {'type': 'message', 'name': 'bob', 'text': 'hi alice'}
    alice.send_binary(b'\x00 not for the room')
    alice.send('hi bob')
    for ws in (alice, bob):
        assert next_event(ws) == {'type': 'message', 'name': 'alice', 'text': 'hi bob'}
    bob.close(status=4000, reason=b'see you')
    assert next_event(alice) == {'type': 'leave', 'name': 'bob', 'code': 4000,
                                 'reason': 'see you', 'online': ['alice']}
    assert 'bob left (4000 see you)' in chat_server.wait_for_output('bob left')
    alice.close()


def test_echo_example_still_runs(programs):
    port = free_port()
    server = programs([PYTHON, os.path.join('examples', 'echo.py'), '--port', str(port)],
                      port, cwd=ROOT, env=python_env())
    assert http_get('http://127.0.0.1:%d/' % server.port).startswith('geventws echo server')
    ws = websocket.create_connection('ws://127.0.0.1:%d/' % port, timeout=10)
    assert_echoes(ws)
    ws.close()
