// Drives a geventws echo server with Node's `ws` (a client no one here wrote) through the
// scenario of tests/test_interop_server.py and prints one JSON object of what it observed.
// Usage: node interop_client.js ws://127.0.0.1:PORT/
'use strict';
const WebSocket = require('ws');

const ws = new WebSocket(process.argv[2], { perMessageDeflate: false, maxPayload: 0 });
const inbox = [];
let waiting = null;
ws.on('message', (data, isBinary) => {
  const message = isBinary ? Buffer.from(data) : data.toString('utf8');
  if (waiting) { const resolve = waiting; waiting = null; resolve(message); } else inbox.push(message);
});
const next = () => new Promise((resolve) => {
  if (inbox.length) resolve(inbox.shift()); else waiting = resolve;
});
const once = (event) => new Promise((resolve) => ws.once(event, (...args) => resolve(args)));
const pattern = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255));

async function scenario() {
  const seen = {};
  ws.send('hello ünïcode');
  seen.text = await next();
  for (const size of [0, 125, 126, 65536, 2 * 1024 * 1024]) {
    ws.send(pattern(size));
    const echo = await next();
    seen['binary ' + size] = Buffer.isBuffer(echo) && echo.equals(pattern(size));
  }
  ws.send('frag', { fin: false });
  ws.send('men', { fin: false });
  ws.send('ted', { fin: true });
  seen['client fragments'] = await next();
  ws.send('fragment-me');
  seen['server fragments'] = [await next(), (await next()).toString('hex')];
  const pong = once('pong');
  ws.ping(Buffer.from('interop ping'));
  seen.pong = (await pong)[0].toString('utf8');
  ws.send('ping-me');
  seen['server ping'] = [await next()];
  ws.send('check');
  seen['server ping'].push(await next());
  const closed = once('close');
  ws.close(4001, 'bye-bye');
  const [code] = await closed;
  seen.close = code;   // the server echoes our code; the reason stays on the server side
  return seen;
}

const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 20000);
once('open')
  .then(scenario)
  .then((seen) => { clearTimeout(timer); console.log(JSON.stringify(seen)); })
  .catch((err) => { console.error(err); process.exit(1); });
ws.on('error', (err) => { console.error(err); process.exit(1); });
