// The chat room's page: one WebSocket to /chat per tab. The server sends JSON events
// ({type: 'join' | 'leave' | 'message' | 'resync' | 'error', id, ...}); what we type goes
// out as a text message. The tab's sessionStorage keeps the events shown and the last id:
// a reload shows them again and asks only for what came after (?since=ID); a broken
// connection is opened again the same way, after 1, 2, 4... s (at most 15, jittered).
// window.chat is there for the tests and the console: chat.events holds every event.
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const name = params.get('name') || 'guest-' + Math.floor(Math.random() * 1000);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  const chat = window.chat = {ws: null, name: name, events: [], closed: null, opened: 0};
  const storeKey = 'geventws-chat:' + name;   // per name: the screenshot's frames share a tab
  const KEEP = 200;
  let saved = JSON.parse(sessionStorage.getItem(storeKey) || '{"last": null, "events": []}');
  let leaving = false;
  let failures = 0;

  function show(kind, who, text) {
    const line = document.createElement('li');
    line.className = kind;
    const stamp = document.createElement('time');
    stamp.textContent = new Date().toLocaleTimeString();
    line.append(stamp);
    if (who) {
      const author = document.createElement('b');
      author.textContent = who;
      line.append(author);
    }
    line.append(document.createTextNode(text));
    log.append(line);
    line.scrollIntoView({block: 'end'});
  }

  function showOnline(names) {
    const list = document.getElementById('online');
    list.replaceChildren(...names.map((n) => {
      const item = document.createElement('li');
      item.textContent = n === name ? n + ' (you)' : n;
      return item;
    }));
  }

  function showEvent(event) {
    if (event.type === 'message') {
      show(event.name === name ? 'message mine' : 'message', event.name, event.text);
    } else if (event.type === 'join') {
      show('notice', '', event.name + ' joined');
      showOnline(event.online);
    } else if (event.type === 'leave') {
      show('notice', '', event.name + ' left' + (event.reason ? ' (' + event.reason + ')' : ''));
      showOnline(event.online);
    } else if (event.type === 'resync') {
      show('notice', '', 'Too much happened while you were away: from here on.');
    } else if (event.type === 'error') {
      show('notice', '', event.text);
    }
  }

  function remember(event) {
    if (event.type === 'resync') saved.events = [];
    if (event.id) {
      saved.last = event.id;
      saved.events.push(event);
      saved.events.splice(0, saved.events.length - KEEP);
    }
    sessionStorage.setItem(storeKey, JSON.stringify(saved));
  }

  function connect() {
    const since = saved.last ? '&since=' + encodeURIComponent(saved.last) : '';
    const query = '?name=' + encodeURIComponent(name) + since;
    const ws = chat.ws = new WebSocket(scheme + location.host + '/chat' + query);
    ws.onopen = () => {
      failures = 0;
      chat.opened += 1;
      status.textContent = 'connected as ' + name;
    };
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      chat.events.push(event);
      remember(event);
      showEvent(event);
    };
    ws.onclose = (close) => {
      chat.closed = {code: close.code, reason: close.reason, wasClean: close.wasClean};
      status.textContent = 'disconnected (' + close.code + ')';
      if (leaving) {
        show('notice', '', 'You left the room.');
        return;
      }
      const delay = Math.min(15000, 1000 * 2 ** failures++);
      status.textContent += ', again in ' + Math.round(delay / 1000) + ' s';
      setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    };
  }

  saved.events.forEach(showEvent);
  connect();

  chat.send = (text) => chat.ws.send(text);
  chat.leave = (code, reason) => { leaving = true; chat.ws.close(code, reason); };

  document.getElementById('name').value = name;
  document.getElementById('name').disabled = true;
  document.getElementById('say').onsubmit = (submit) => {
    submit.preventDefault();
    const input = document.getElementById('text');
    if (input.value && chat.ws.readyState === WebSocket.OPEN) chat.send(input.value);
    input.value = '';
  };
})();
