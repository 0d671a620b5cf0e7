// Node's `ws` server as a peer for the client tests (tests/test_client_peers.py).
// Listens on 127.0.0.1, a free port; prints {"port": N} once listening, then one JSON line
// {"close": code, "reason": "..."} per close frame received. Behaviour (the peer protocol
// shared by every test server): echo each message with its type, except the text commands
//   !close CODE REASON    close with CODE and REASON
//   !fragments A B C      send one text message in fragments A, B, C
//   !ping PAYLOAD         ping with PAYLOAD, and say "pong PAYLOAD" when the pong arrives
// Subprotocols: "chat" and "superchat", the first one the client offers. permessage-deflate
// when the client offers it.
'use strict';
const { WebSocketServer } = require('ws');

const SUPPORTED = ['chat', 'superchat'];
const server = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: { threshold: 0 },   // accepted when offered: compress every message
  handleProtocols: (offered) => [...offered].find((p) => SUPPORTED.includes(p)) || false,
});

server.on('listening', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});

server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === null || !text.startsWith('!')) {
      ws.send(data, { binary: isBinary });
      return;
    }
    const [command, ...args] = text.split(' ');
    if (command === '!close') {
      ws.close(Number(args[0]), args.slice(1).join(' '));
    } else if (command === '!fragments') {
      args.forEach((part, i) => ws.send(part, { binary: false, fin: i === args.length - 1 }));
    } else if (command === '!ping') {
      ws.ping(args.join(' '));
    }
  });
  ws.on('pong', (payload) => ws.send('pong ' + payload.toString()));
  ws.on('close', (code, reason) => {
    console.log(JSON.stringify({ close: code, reason: reason.toString() }));
  });
});

process.stdin.on('end', () => process.exit(0));   // the test closes our stdin to stop us
process.stdin.resume();
