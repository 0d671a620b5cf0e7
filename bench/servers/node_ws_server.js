// Node's ws echo server: `node node_ws_server.js PORT` (ws comes from tests/node/node_modules
// through NODE_PATH, set by bench/run.py).
'use strict';
const { WebSocketServer } = require('ws');

const server = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.argv[2]),
  perMessageDeflate: false,
  maxPayload: 4 * 1024 * 1024,
});
// A text message starting with '!' goes to every open connection (S6), a loop over clients.
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data[0] === 0x21) {
      server.clients.forEach((client) => client.send(data, { binary: false }));
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});
