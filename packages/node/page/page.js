// The live page of a bby node: it opens a WebSocket to the node that served
// it, sends `watch` (docs/protocol.md), and draws what comes back. Keys,
// values and node ids are untrusted: they only ever reach the page through
// textContent and setAttribute, never as HTML.


const MAX_WRITES_SHOWN = 50;
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

let socket = null;
let challenge = null;
let lastStats = null;
let lastStatsAtMs = 0;
const writes = [];

function setText(id, text) {
  $(id).textContent = String(text);
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  challenge = null;
  socket = new WebSocket(`${scheme}://${location.host}`);
  socket.addEventListener('open', () => {
    setBadge('connected', '');
    // A node with a secret sends its challenge at once; without one, watch.
    setTimeout(() => {
      if (challenge === null && socket.readyState === WebSocket.OPEN) startWatch();
    }, 250);
  });
  socket.addEventListener('close', () => {
    setBadge('connection lost: retrying', 'lost');
    setTimeout(connect, 2000);
  });
  socket.addEventListener('message', (event) => onMessage(JSON.parse(event.data)));
}

function setBadge(text, kind) {
  const badge = $('connection');
  badge.textContent = text;
  badge.className = `badge ${kind}`;
}

function startWatch() {
  socket.send(JSON.stringify({ type: 'watch', id: 1, values: 40 }));
}

function onMessage(message) {
  switch (message.type) {
    case 'challenge':
      challenge = message;
      if (secret !== null) return void prove();
      $('secret-form').hidden = false;
      if (!window.crypto?.subtle) setText('secret-note', 'this browser can only prove a secret on https:// (a node with "tls") or on localhost');
      return;
    case 'authenticated':
      if (message.proof !== expectedProof) {
        setBadge('this node could not prove it holds the secret', 'lost');
        socket.close();
        return;
      }
      $('secret-form').hidden = true;
      startWatch();
      return;
    case 'reply':
      if (message.result?.watching) setBadge('live', 'live');
      return;
    case 'error':
      setBadge(`refused: ${message.code}`, 'lost');
      return;
    case 'watch-state':
      showState(message.status, message.stats);
      return;
    case 'watch-writes':
      for (const write of message.writes) writes.unshift(write);
      writes.length = Math.min(writes.length, MAX_WRITES_SHOWN);
      showWrites();
      return;
  }
}

async function hmacHex(secret, text) {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = await crypto.subtle.sign('HMAC', key, encoder.encode(text));
  return [...new Uint8Array(signature)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The secret typed in, kept in this page only (never sent: the page proves it, as bby does), to reconnect. */
let secret = null;

$('secret-form').addEventListener('submit', (event) => {
  event.preventDefault();
  secret = $('secret').value;
  void prove();
});

async function prove() {
  if (challenge === null || !window.crypto || !window.crypto.subtle) return;
  const nonce = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const transcript = (side) => ['bby-auth-1', side, 'client', challenge.nodeId, '', challenge.nonce, nonce].join('\n');
  const proof = await hmacHex(secret, transcript('initiator'));
  expectedProof = await hmacHex(secret, transcript('acceptor'));
  socket.send(JSON.stringify({ type: 'auth', role: 'client', nonce, proof }));
}

/** The node's own proof, checked before anything it says is shown. */
let expectedProof = null;

function showState(status, stats) {
  setText('node-id', status.id);
  document.title = `bby ${status.id}`;
  setText('keys', status.keys.toLocaleString('en-US'));
  setText('conflicts', stats.conflicts.toLocaleString('en-US'));
  setText('writable', status.storageFailure === null ? 'yes' : 'no');
  setText('peers-up', `${status.peers.filter((p) => p.state === 'connected').length} / ${status.peers.length}`);
  const now = performance.now();
  if (lastStats !== null) {
    const done = stats.writesAccepted + stats.entriesApplied - (lastStats.writesAccepted + lastStats.entriesApplied);
    setText('rate', Math.round((done * 1000) / Math.max(1, now - lastStatsAtMs)).toLocaleString('en-US'));
  }
  lastStats = stats;
  lastStatsAtMs = now;
  drawGraph(status);
  showCatchUps(status);
  showWrites();
}

function nodeKey(row) {
  return row.id === null ? row.address : row.id;
}

function drawGraph(status) {
  const svg = $('graph');
  svg.replaceChildren();
  const nodes = new Map();
  nodes.set(status.id, { key: status.id, label: status.id, state: 'self', address: location.host });
  const byAddress = new Map([[location.host, status.id]]);
  for (const row of status.peers) {
    const key = nodeKey(row);
    const previous = nodes.get(key);
    // A node both dialed and dialing shows once: connected wins.
    if (previous === undefined || row.state === 'connected') nodes.set(key, { key, label: row.id === null ? row.address : row.id, state: row.state, address: row.address });
    byAddress.set(row.address, key);
  }
  const reported = [];
  for (const row of status.peers) {
    for (const address of row.reportedPeers) {
      const key = byAddress.get(address) ?? address;
      if (!nodes.has(key)) nodes.set(key, { key, label: address, state: 'reported', address });
      reported.push([nodeKey(row), key]);
    }
  }
  // This node at the top, the others clockwise by name (node2 before node10): a
  // node keeps its place from one state to the next, and a ring of node1,
  // node2, ... is drawn as a ring, not in the order the links came up.
  const byName = new Intl.Collator('en', { numeric: true });
  const list = [...nodes.values()].sort((a, b) => (a.state === 'self' ? -1 : b.state === 'self' ? 1 : byName.compare(a.label, b.label) || byName.compare(a.key, b.key)));
  // The ring inside the 600 × 420 view box with room for the labels: above the top node, below the bottom one.
  const cx = 300, cy = 210, radius = list.length <= 1 ? 0 : Math.min(160, 60 + 18 * list.length);
  list.forEach((node, index) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * index) / list.length;
    node.x = cx + radius * Math.cos(angle);
    node.y = cy + radius * Math.sin(angle);
  });
  const defs = document.createElementNS(SVG, 'defs');
  for (const state of ['connected', 'down', 'connecting']) {
    const marker = document.createElementNS(SVG, 'marker');
    marker.setAttribute('id', `arrow-${state}`);
    marker.setAttribute('viewBox', '0 0 10 10');
    marker.setAttribute('refX', '10');
    marker.setAttribute('refY', '5');
    marker.setAttribute('markerUnits', 'userSpaceOnUse');
    marker.setAttribute('markerWidth', '12');
    marker.setAttribute('markerHeight', '12');
    marker.setAttribute('orient', 'auto-start-reverse');
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', 'M 0 0 L 10 5 L 0 10 z');
    path.setAttribute('class', `edge ${state}`);
    path.setAttribute('fill', getComputedStyle(document.documentElement).getPropertyValue(state === 'connected' ? '--up' : state === 'down' ? '--down' : '--connecting'));
    marker.append(path);
    defs.append(marker);
  }
  svg.append(defs);
  const line = (from, to, className, shorten) => {
    const dx = to.x - from.x, dy = to.y - from.y, length = Math.hypot(dx, dy) || 1;
    const element = document.createElementNS(SVG, 'line');
    element.setAttribute('x1', String(from.x + (dx * shorten) / length));
    element.setAttribute('y1', String(from.y + (dy * shorten) / length));
    element.setAttribute('x2', String(to.x - (dx * shorten) / length));
    element.setAttribute('y2', String(to.y - (dy * shorten) / length));
    element.setAttribute('class', className);
    svg.append(element);
    return element;
  };
  for (const [a, b] of reported) {
    if (a === status.id || b === status.id || !nodes.has(a) || !nodes.has(b)) continue;
    line(nodes.get(a), nodes.get(b), 'edge reported', 22);
  }
  const self = nodes.get(status.id);
  for (const row of status.peers) {
    const peer = nodes.get(nodeKey(row));
    if (peer === undefined || (peer.state === 'connected' && row.state !== 'connected')) continue;
    const state = row.state === 'stopped' ? 'down' : row.state;
    const [from, to] = row.direction === 'outbound' ? [self, peer] : [peer, self];
    const edge = line(from, to, `edge ${state}`, 24);
    edge.setAttribute('marker-end', `url(#arrow-${state})`);
    edge.dataset.peer = nodeKey(row);
    edge.dataset.state = row.state;
  }
  for (const node of list) {
    const group = document.createElementNS(SVG, 'g');
    group.setAttribute('class', `node ${node.state === 'self' ? 'self' : ''}`);
    group.dataset.node = node.key;
    group.dataset.state = node.state;
    const circle = document.createElementNS(SVG, 'circle');
    circle.setAttribute('cx', String(node.x));
    circle.setAttribute('cy', String(node.y));
    circle.setAttribute('r', '20');
    const colour = { self: '#0969da', connected: '#1a7f37', down: '#cf222e', stopped: '#cf222e', connecting: '#bf8700', reported: '#8c959f' }[node.state];
    circle.setAttribute('fill', colour);
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', String(node.x));
    // Labels outside the ring, away from the edges that meet at the node.
    label.setAttribute('y', String(node.y < cy - 1 ? node.y - 28 : node.y + 36));
    label.textContent = node.label.length > 24 ? `${node.label.slice(0, 23)}…` : node.label;
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${node.label} (${node.address}): ${node.state === 'self' ? 'this node' : node.state}`;
    group.append(title, circle, label);
    if (node.state !== 'self' && /^[A-Za-z0-9.\-[\]:]+$/.test(node.address)) {
      const link = document.createElementNS(SVG, 'a');
      link.setAttribute('href', `${location.protocol}//${node.address}/`);
      link.append(group);
      svg.append(link);
    } else svg.append(group);
  }
}

function showCatchUps(status) {
  const list = $('catchups');
  const items = [];
  for (const row of status.peers) {
    for (const [progress, what] of [[row.catchUpIn, `from ${nodeKey(row)}`], [row.streamOut, `${row.streamOut ? row.streamOut.kind : ''} to ${nodeKey(row)}`]]) {
      if (progress === null || progress.done) continue;
      const item = document.createElement('li');
      const text = document.createElement('div');
      const expected = progress.expected === null ? '?' : progress.expected;
      text.textContent = `${what}: ${progress.entries.toLocaleString('en-US')} of ${expected.toLocaleString('en-US')} entries`;
      const bar = document.createElement('progress');
      bar.max = Math.max(1, progress.expected ?? progress.entries);
      bar.value = Math.min(progress.entries, bar.max);
      item.append(text, bar);
      items.push(item);
    }
  }
  if (items.length === 0) {
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'none under way';
    items.push(empty);
  }
  list.replaceChildren(...items);
}

function age(timestampMs) {
  const seconds = Math.max(0, (Date.now() - timestampMs) / 1000);
  return seconds < 60 ? `${seconds.toFixed(seconds < 10 ? 1 : 0)} s` : seconds < 3600 ? `${Math.floor(seconds / 60)} min` : `${Math.floor(seconds / 3600)} h`;
}

function showWrites() {
  const rows = writes.map((write) => {
    const row = document.createElement('tr');
    if (write.conflict) row.className = 'conflict';
    const cells = [age(write.timestamp), write.key, write.origin, write.from === null ? 'client' : `from ${write.from}`, write.value === undefined ? '' : `${write.value}${write.cut ? '…' : ''}${write.conflict ? '  (conflict: oldest kept)' : ''}`];
    cells.forEach((text, index) => {
      const cell = document.createElement('td');
      cell.textContent = text;
      if (index === 1 || index === 4) cell.className = 'mono';
      cell.title = text;
      row.append(cell);
    });
    return row;
  });
  $('writes').replaceChildren(...rows);
}

connect();
setInterval(showWrites, 1000);
