"""An app written for gevent-websocket, in the shape of its examples/chat/chat.py (Python 3):
``WebSocketServer``, ``Resource`` routing by pattern to a ``WebSocketApplication`` and to a
Flask app, ``ws.handler.active_client``, ``ws.handler.server.clients``, an ``on_message``
that ignores None. Only the import line names geventws.compat; the tests also run it with it
naming gevent-websocket. ``python gws_chat.py PORT``."""
import json
import sys

from gevent import monkey
monkey.patch_all()

from flask import Flask  # noqa: E402

from geventws.compat import WebSocketServer, WebSocketApplication, Resource  # noqa: E402

flask_app = Flask(__name__)
closed = []


class ChatApplication(WebSocketApplication):
    def on_open(self):
        print('Some client connected!', flush=True)

    def on_message(self, message):
        if message is None:
            return

        message = json.loads(message)

        if message['msg_type'] == 'message':
            self.broadcast(message)
        elif message['msg_type'] == 'update_clients':
            self.send_client_list(message)

    def send_client_list(self, message):
        current_client = self.ws.handler.active_client
        current_client.nickname = message['nickname']

        self.ws.send(json.dumps({
            'msg_type': 'update_clients',
            'clients': [
                getattr(client, 'nickname', 'anonymous')
                for client in self.ws.handler.server.clients.values()
            ]
        }))

    def broadcast(self, message):
        for client in self.ws.handler.server.clients.values():
            client.ws.send(json.dumps({
                'msg_type': 'message',
                'nickname': message['nickname'],
                'message': message['message']
            }))

    def on_close(self, reason):
        closed.append(reason)
        print('Connection closed!', flush=True)


@flask_app.route('/')
def index():
    return 'chat page'


@flask_app.route('/state')
def state():
    return json.dumps({'clients': len(server.clients), 'closed': len(closed)})


server = WebSocketServer(
    ('127.0.0.1', int(sys.argv[1])),
    Resource({
        '^/chat': ChatApplication,
        '^/.*': flask_app
    }),
    debug=False
)
server.serve_forever()
