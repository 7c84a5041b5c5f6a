/**
 * The plain HTTP side of a node's port (http-routes.ts, metrics.ts): /health,
 * /metrics in the Prometheus text format, the page's files, the credential
 * with a secret, and what stays refused.
 */
import { expect } from 'chai';
import { parseConfig } from '@bby/core';
import { WebSocket } from 'ws';
import { startNode, type RunningNode } from '../src/index.js';
import { freePort, waitFor } from './support/wait.js';

const quiet = () => undefined;
const SECRET = 'a-secret-of-the-mesh-0123456789';
const CLIENT_SECRET = 'a-client-secret-0123456789';

/** One sample of a Prometheus text exposition. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * A small parser of the Prometheus text format (version 0.0.4): `# HELP` and
 * `# TYPE` lines, then `name{label="value",...} number` lines. Throws on any
 * line it cannot read, so that a malformed exposition fails the test.
 */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type !== null) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    // Values as Go's ParseFloat reads them, as Prometheus does: NaN in any case (prom-client writes "Nan").
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|\+Inf|-Inf)$/.exec(line);
    if (sample === null) throw new Error(`not a Prometheus line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const labelText = sample[3] ?? '';
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let match: RegExpExecArray | null;
    let consumed = 0;
    while ((match = labelPattern.exec(labelText)) !== null) {
      labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = labelPattern.lastIndex;
    }
    if (consumed !== labelText.length) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    samples.push({ name: sample[1]!, labels, value: /^nan$/i.test(sample[4]!) ? NaN : Number(sample[4]) });
  }
  return { samples, types };
}

function value(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function ask(port: number, request: object): Promise<unknown> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const answer = new Promise((resolve) => socket.once('message', (data) => resolve(JSON.parse(String(data)))));
  socket.send(JSON.stringify({ ...request, id: 1 }));
  const result = await answer;
  socket.close();
  return result;
}

describe('bby-node HTTP: /health, /metrics and the page', function () {
  this.timeout(20_000);
  const nodes: RunningNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.close()));
  });

  async function start(fields: Record<string, unknown>): Promise<{ node: RunningNode; port: number; url: string }> {
    const port = await freePort();
    const node = await startNode(parseConfig(JSON.stringify({ port, ...fields }), 'test.json'), { source: 'test.json', log: quiet });
    nodes.push(node);
    return { node, port, url: `http://127.0.0.1:${port}` };
  }

  it('answers /health with ready, the store and the peers, and 503 with the reason once a peer catch-up or the disk says not ready', async () => {
    const { url: url1, port: port1 } = await start({ id: 'one' });
    const { url: url2 } = await start({ id: 'two', peers: [`127.0.0.1:${port1}`] });
    await waitFor(async () => ((await (await fetch(`${url2}/health`)).json()) as { peers: { up: number } }).peers.up === 1, 'node two connected');
    const response = await fetch(`${url2}/health`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal('application/json');
    const health = (await response.json()) as Record<string, unknown>;
    expect(health).to.deep.include({ ready: true, reasons: [], node: 'two', store: { loaded: true, keys: 0 }, peers: { up: 1, down: 0, connecting: 0 } });
    expect(health.peerList).to.deep.equal([{ address: `127.0.0.1:${port1}`, id: 'one', state: 'connected' }]);
    expect((await fetch(`${url1}/health`)).status).to.equal(200);
  });

  it('answers /metrics in the Prometheus text format, every stats counter among them, and the numbers move with writes', async () => {
    const { url, port } = await start({ id: 'm' });
    const before = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    expect(before.types.get('bby_writes_accepted_total')).to.equal('counter');
    expect(before.types.get('bby_request_duration_seconds')).to.equal('histogram');
    expect(before.types.get('bby_keys')).to.equal('gauge');
    for (const counter of ['bby_messages_sent_total', 'bby_conflicts_total', 'bby_catch_up_entries_received_total', 'bby_auth_failures_total', 'bby_watch_events_dropped_total', 'bby_slow_links_closed_total']) {
      expect(before.types.get(counter), counter).to.equal('counter');
    }
    expect(value(before.samples, 'bby_keys', { node: 'm' })).to.equal(0);
    expect(await ask(port, { type: 'set', key: 'MonChamp', value: '42' })).to.deep.include({ result: true });
    expect(await ask(port, { type: 'get', key: 'MonChamp' })).to.deep.include({ result: '42' });
    const response = await fetch(`${url}/metrics`);
    expect(response.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const after = parsePrometheus(await response.text()).samples;
    expect(value(after, 'bby_keys')).to.equal(1);
    expect(value(after, 'bby_writes_accepted_total')).to.equal(1);
    expect(value(after, 'bby_request_duration_seconds_count', { type: 'set' })).to.equal(1);
    expect(value(after, 'bby_request_duration_seconds_count', { type: 'get' })).to.equal(1);
    expect(value(after, 'bby_store_bytes')).to.be.greaterThan(0);
    expect(value(after, 'bby_links', { role: 'watcher' })).to.equal(0);
  });

  it('with a secret: /metrics needs the client credential (Bearer or Basic), /health says only counts without it', async () => {
    const { url } = await start({ id: 's', secret: SECRET, clientSecret: CLIENT_SECRET });
    const refused = await fetch(`${url}/metrics`);
    expect(refused.status).to.equal(401);
    expect(refused.headers.get('www-authenticate')).to.match(/^Bearer/);
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: 'Bearer wrong-secret-0123456789' } })).status).to.equal(401);
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${CLIENT_SECRET}` } })).status).to.equal(200);
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${SECRET}` } })).status).to.equal(200);
    const basic = Buffer.from(`any:${CLIENT_SECRET}`).toString('base64');
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: `Basic ${basic}` } })).status).to.equal(200);
    const open = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
    expect(open).to.include({ ready: true });
    expect(open).to.not.have.any.keys('node', 'peerList');
    const full = (await (await fetch(`${url}/health`, { headers: { Authorization: `Bearer ${CLIENT_SECRET}` } })).json()) as Record<string, unknown>;
    expect(full).to.include({ node: 's' });
  });

  it('serves the page files, refuses other methods, keeps 426 for other paths, and refuses a WebSocket from another web origin', async () => {
    const { url, port } = await start({ id: 'p' });
    const page = await fetch(`${url}/`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).to.include("default-src 'self'");
    expect((await fetch(`${url}/page.js`)).status).to.equal(200);
    expect((await fetch(`${url}/metrics`, { method: 'POST', body: 'x' })).status).to.equal(405);
    expect((await fetch(`${url}/elsewhere`)).status).to.equal(426);
    // The icon a browser asks for with every page: no content, not an error.
    expect((await fetch(`${url}/favicon.ico`)).status).to.equal(204);
    const foreign = new WebSocket(`ws://127.0.0.1:${port}`, { origin: 'http://evil.example' });
    const status = await new Promise<number>((resolve) => foreign.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0)).once('open', () => resolve(101)));
    expect(status).to.equal(403);
    const own = new WebSocket(`ws://127.0.0.1:${port}`, { origin: `http://127.0.0.1:${port}` });
    await new Promise((resolve, reject) => own.once('open', resolve).once('error', reject));
    own.close();
    const metrics = parsePrometheus(await (await fetch(`${url}/metrics`)).text()).samples;
    expect(value(metrics, 'bby_refused_upgrades_total', { reason: 'cross_origin' })).to.equal(1);
  });
});
