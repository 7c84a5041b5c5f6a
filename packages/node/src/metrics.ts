/**
 * What `GET /metrics` says, in the Prometheus text format, with prom-client
 * (the well-kept library for it: exposition format, escaping, histograms).
 *
 * The counters and gauges are read from the core at scrape time (`stats()`
 * and `status()`, once per scrape): nothing is counted twice, and a node that
 * nobody scrapes pays only for the request-latency histogram, one
 * `observe()` per request.
 *
 * Each node has its own registry, so that several nodes in one process (the
 * tests) do not share metrics.
 */
import { type NodeStatus, type Stats } from '@bby/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Request types that get a latency series; any other frame is not timed. */
export const TIMED_REQUEST_TYPES: ReadonlySet<string> = new Set(['get', 'set', 'set-many', 'keys', 'peers', 'add-peer', 'remove-peer', 'stats', 'watch']);

/** Bucket bounds of the request-latency histogram, in seconds: 50 µs (a get) to 5 s (a set waiting for acks, a slow disk). */
export const REQUEST_DURATION_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Why the adapter refused an upgrade (HTTP 503 or 403), as the label of `bby_refused_upgrades_total`. */
export type RefusalReason = 'too_many_connections' | 'shutting_down' | 'cross_origin';

/** What a scrape reads from the adapter, once per scrape. */
export interface MetricsSnapshot {
  readonly stats: Stats;
  readonly status: NodeStatus;
  /** Bytes and batches waiting for the disk (disk-pipeline.ts; the core's BACKLOG_PAUSE_BYTES). */
  readonly diskQueue: { readonly bytes: number; readonly batches: number };
  /** WebSocket connections open now, and the config's "maxConnections". */
  readonly connections: { readonly open: number; readonly max: number };
}

/** Stats fields that are gauges (now), not counters (since start). */
const STAT_GAUGES = new Set(['id', 'keys', 'peers', 'clients', 'writable']);

/** `messagesSent` → `messages_sent`. */
function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** A node's metrics: its registry, and the two series the adapter feeds as things happen. */
export class NodeMetrics {
  readonly registry = new Registry();
  /** Time from a request frame's arrival to its batch of effects being carried out (after fsync), by request type. */
  readonly requestDuration: Histogram<'type'>;
  readonly #refused: Counter<'reason'>;
  #snapshot: MetricsSnapshot | null = null;

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const read = (): MetricsSnapshot => {
      if (this.#snapshot === null) throw new Error('metrics: collected outside of render()');
      return this.#snapshot;
    };
    this.requestDuration = new Histogram({ name: 'bby_request_duration_seconds', help: 'Time from a request frame arriving to its answer going out (after its writes are durable), by request type', labelNames: ['type'], buckets: REQUEST_DURATION_BUCKETS_SECONDS, registers });
    this.#refused = new Counter({ name: 'bby_refused_upgrades_total', help: 'WebSocket upgrades refused before any frame: too many connections, shutting down, or from a page of another web origin', labelNames: ['reason'], registers });
    for (const reason of ['too_many_connections', 'shutting_down', 'cross_origin'] as const) this.#refused.inc({ reason }, 0);

    // Every counter of `stats`, as a Prometheus counter: the core's value, read at scrape time.
    const probe: Stats = { id: '', keys: 0, peers: 0, clients: 0, writable: true, messagesSent: 0, messagesReceived: 0, writesAccepted: 0, writesRefused: 0, entriesApplied: 0, duplicatesDropped: 0, conflicts: 0, errors: 0, catchUpEntriesSent: 0, catchUpEntriesReceived: 0, fullTransfersSent: 0, antiEntropyRounds: 0, repairEntriesSent: 0, peersTimedOut: 0, peersLearned: 0, authFailures: 0, authTimeouts: 0, forbiddenMessages: 0, duplicateLinksClosed: 0, entriesFromFuture: 0, idleConnectionsClosed: 0, slowLinksClosed: 0, repairRequestsMerged: 0, writesRefusedStorage: 0, watchEventsDropped: 0 };
    for (const field of Object.keys(probe) as (keyof Stats)[]) {
      if (STAT_GAUGES.has(field)) continue;
      new Counter({
        name: `bby_${snakeCase(field)}_total`,
        help: `stats.${field} (docs/protocol.md)`,
        registers,
        collect() {
          this.reset();
          this.inc(read().stats[field] as number);
        },
      });
    }
    const gauge = (name: string, help: string, value: (snapshot: MetricsSnapshot) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value(read()));
        },
      });
    gauge('bby_keys', 'Keys stored', (s) => s.status.keys);
    gauge('bby_store_bytes', 'Bytes the store holds for keys, values and their columns', (s) => s.status.storeBytes);
    gauge('bby_change_seq', 'Sequence number of the latest change in this node\'s feed', (s) => s.status.seq);
    gauge('bby_writable', '1 while the node can write to its data folder, 0 while it refuses writes', (s) => (s.status.storageFailure === null ? 1 : 0));
    gauge('bby_disk_queue_bytes', 'Bytes of entries waiting to be made durable', (s) => s.diskQueue.bytes);
    gauge('bby_disk_queue_batches', 'Batches of effects waiting for the disk', (s) => s.diskQueue.batches);
    gauge('bby_connections', 'WebSocket connections open now (peers and clients, inbound)', (s) => s.connections.open);
    gauge('bby_max_connections', 'The config\'s maxConnections', (s) => s.connections.max);
    new Gauge({
      name: 'bby_links',
      help: 'Links by role: peer, client, pending (no handshake yet), watcher (clients that sent watch)',
      labelNames: ['role'],
      registers,
      collect() {
        const { links } = read().status;
        this.reset();
        this.set({ role: 'peer' }, links.peers);
        this.set({ role: 'client' }, links.clients);
        this.set({ role: 'pending' }, links.pending);
        this.set({ role: 'watcher' }, links.watchers);
      },
    });
    new Gauge({
      name: 'bby_peers',
      help: 'Rows of peers by state: connected, connecting, down, stopped',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = { connected: 0, connecting: 0, down: 0, stopped: 0 };
        for (const row of read().status.peers) counts[row.state]++;
        this.reset();
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
    const perPeer = (name: string, help: string, value: (row: NodeStatus['peers'][number]) => number | null, extra: string[] = []) =>
      new Gauge({
        name,
        help,
        labelNames: ['peer', 'address', ...extra],
        registers,
        collect() {
          this.reset();
          for (const row of read().status.peers) {
            const v = value(row);
            if (v !== null) this.set({ peer: row.id ?? '', address: row.address }, v);
          }
        },
      });
    perPeer('bby_peer_up', '1 for a connected peer, 0 for one down or being dialed', (row) => (row.state === 'connected' ? 1 : 0));
    perPeer('bby_peer_outbound_bytes', 'Text sent to the peer that it has not read yet, in bytes', (row) => (row.state === 'connected' ? row.outboundBytes : null));
    perPeer('bby_peer_replication_lag_ms', 'How old the last live write from the peer was when it arrived, in milliseconds (clock skew included)', (row) => row.lagMs);
    perPeer('bby_peer_catch_up_entries', 'Entries received so far in the peer\'s catch-up to this node', (row) => row.catchUpIn?.entries ?? null);
    perPeer('bby_peer_catch_up_expected_entries', 'Entries the peer said its catch-up to this node would send', (row) => row.catchUpIn?.expected ?? null);
    perPeer('bby_peer_catch_up_remaining_entries', 'Entries of the peer\'s catch-up to this node still to come (0 once done): the replication lag in entries', (row) =>
      row.catchUpIn === null ? null : row.catchUpIn.done ? 0 : Math.max(0, (row.catchUpIn.expected ?? 0) - row.catchUpIn.entries),
    );
    perPeer('bby_peer_stream_out_entries', 'Entries sent so far in this node\'s catch-up or repair to the peer, while it goes out', (row) => row.streamOut?.entries ?? null);
    perPeer('bby_peer_stream_out_expected_entries', 'Entries this node\'s catch-up or repair to the peer was to send when it began', (row) => row.streamOut?.expected ?? null);
  }

  /** An upgrade was refused. */
  refused(reason: RefusalReason): void {
    this.#refused.inc({ reason });
  }

  /** The Prometheus text of every metric, read from `snapshot`. */
  async render(snapshot: MetricsSnapshot): Promise<string> {
    // Kept after the scrape: two scrapes at once both read the later snapshot, never none.
    this.#snapshot = snapshot;
    return await this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
