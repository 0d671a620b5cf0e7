// node deflate_server.js: a ws echo server with permessage-deflate on (threshold 0: every
// message compressed). Prints its port on the first line, then runs until killed.
'use strict';
const WebSocket = require('ws');

const wss = new WebSocket.Server({host: '127.0.0.1', port: 0,
                                  perMessageDeflate: {threshold: 0}});
wss.on('connection', (ws, request) => {
  ws.on('message', (data, isBinary) => ws.send(data, {binary: isBinary}));
});
wss.on('listening', () => console.log(wss.address().port));
