// The chat room's page: one WebSocket to /chat per tab. The server sends JSON events
// ({type: 'join' | 'leave' | 'message', ...}); what we type goes out as a text message.
// window.chat is there for the tests and the console: chat.events holds every event.
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const name = params.get('name') || 'guest-' + Math.floor(Math.random() * 1000);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(scheme + location.host + '/chat?name=' + encodeURIComponent(name));
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  const chat = window.chat = {ws: ws, name: name, events: [], closed: null};

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

  ws.onopen = () => { status.textContent = 'connected as ' + name; };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    chat.events.push(event);
    if (event.type === 'message') {
      show(event.name === name ? 'message mine' : 'message', event.name, event.text);
    } else if (event.type === 'join') {
      show('notice', '', event.name + ' joined');
      showOnline(event.online);
    } else if (event.type === 'leave') {
      show('notice', '', event.name + ' left' + (event.reason ? ' (' + event.reason + ')' : ''));
      showOnline(event.online);
    }
  };
  ws.onclose = (close) => {
    chat.closed = {code: close.code, reason: close.reason, wasClean: close.wasClean};
    status.textContent = 'disconnected (' + close.code + ')';
    show('notice', '', 'You left the room.');
  };

  chat.send = (text) => ws.send(text);
  chat.leave = (code, reason) => ws.close(code, reason);

  document.getElementById('name').value = name;
  document.getElementById('name').disabled = true;
  document.getElementById('say').onsubmit = (submit) => {
    submit.preventDefault();
    const input = document.getElementById('text');
    if (input.value && ws.readyState === WebSocket.OPEN) chat.send(input.value);
    input.value = '';
  };
})();
