// node deflate_client.js URL SIZE...: connect with permessage-deflate offered (ws's default
// offer), send a text and a binary message of each SIZE, check each echo, then close.
// Prints one JSON line: {extensions, ok, errors, close}.
'use strict';
const WebSocket = require('ws');

const [url, ...sizes] = process.argv.slice(2);
const ws = new WebSocket(url, {perMessageDeflate: true});
const expected = [];
const errors = [];
for (const size of sizes.map(Number)) {
  expected.push('é'.repeat(Math.floor(size / 2)) + 'a'.repeat(size % 2));
  expected.push(Buffer.from(Array.from({length: size}, (_, i) => (i * 7) % 251)));
}
let received = 0;
ws.on('open', () => {
  for (const message of expected) ws.send(message, {binary: Buffer.isBuffer(message)});
});
ws.on('message', (data, isBinary) => {
  const want = expected[received++];
  const same = Buffer.isBuffer(want) ? isBinary && data.equals(want)
                                     : !isBinary && data.toString() === want;
  if (!same) errors.push('message ' + (received - 1) + ' differs');
  if (received === expected.length) ws.close(1000, 'done');
});
ws.on('error', (err) => errors.push(String(err)));
ws.on('close', (code, reason) => {
  console.log(JSON.stringify({extensions: ws.extensions, ok: received === expected.length,
                              errors, close: [code, reason.toString()]}));
});
setTimeout(() => { errors.push('timeout'); ws.terminate(); }, 20000).unref();
