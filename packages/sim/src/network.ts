/**
 * The simulated network: one engine for the Simulation (latency, faults,
 * crashes) and for its Cluster preset (the core's tests: no latency, no
 * faults, no disk).
 *
 * It keeps the connection table and carries out what a socket does, as an
 * adapter over WebSocket/TCP sees it:
 * - a dial travels to its target, which accepts it (the dialer hears
 *   `opened()` one trip later, before anything the acceptor sends), refuses
 *   it (the dialer hears `closed()`), or leaves it unanswered (blackholed);
 * - a frame travels in order on its link (unless the host lets it overtake)
 *   and is lost when the link dies under it; an end that does not read its
 *   socket keeps it back (`Port.holdsFrame`);
 * - a graceful close travels behind the frames already sent, then both ends
 *   hear `closed()`; a cut kills the link at once and both ends hear it one
 *   trip later;
 * - a write report (`written()`) travels too, and a stalled reader at the
 *   other end keeps it back (`Port.holdsWritten`).
 *
 * The host decides when: `travel()` queues what moves on the wire (first in,
 * first out among equal times), `hear()` delivers what an end learns from
 * its socket (the Cluster runs it at once), `trip()` is the one-way time of
 * a link (0 in the Cluster). The Simulation adds its faults around these
 * calls: loss and duplication before `transmit()`, reordering through
 * `transmit(..., fifo = false)`, partitions through `heldUntil()` and
 * `cut()`, pauses and crashes through its ports.
 */

/** One end of a connection: the host says what is behind it. */
export interface Port {
  /** Unique among the ends in the table at once (a node instance and its link). */
  readonly key: string;
  /** False once the process behind this end is gone: what was on its way to it is lost. */
  alive(): boolean;
  /** Runs `fn` now, or once the process runs again (it was stopped, SIGSTOP). */
  whenRunning(fn: () => void): void;
  /** Keeps a frame's delivery back while this end does not read its socket; true when it kept it (it calls `deliver` later). */
  holdsFrame(deliver: () => void): boolean;
  /** Keeps the other end's write report back while this end does not read; true when it kept it. */
  holdsWritten(report: () => void): boolean;
  /** The connection is open (dialer only). */
  opened(): void;
  closed(reason: string): void;
  receive(text: string): void;
  /** `bytes` this end sent were written out. */
  written(bytes: number): void;
  /** The connection joins or leaves the table (the host may keep its own index, per machine say). */
  attached(connection: Connection<Port, unknown>): void;
  detached(connection: Connection<Port, unknown>): void;
}

/** Direction 0 carries frames from dialer to acceptor, 1 the reverse. */
export type Direction = 0 | 1;

/** What travels: `step()` of the Cluster counts all but write reports. */
export type TravelKind = 'connect' | 'frame' | 'close' | 'written';

/** When things happen, as the host sees time. */
export interface NetworkHost<P extends Port> {
  now(): number;
  /** Queues something that travels on the wire, to happen at `at` (first in, first out among equal times); `what` describes it. */
  travel(at: number, kind: TravelKind, run: () => void, what: () => string): void;
  /** An end hears of its socket (opened, closed) at `at`. */
  hear(at: number, run: () => void): void;
  /** One-way time on this connection now, in ms. */
  trip(connection: Connection<P, unknown>): number;
  /** Until when a frame sent now in `dir` is held back (a silent partition: TCP retransmits until the heal), or null. */
  heldUntil(connection: Connection<P, unknown>, dir: Direction): number | null;
  /** A frame sent now in `dir` will arrive before one sent earlier (fifo off). */
  reordered(connection: Connection<P, unknown>, dir: Direction): void;
}

/** A connection: its ends, its state and what the host keeps on it (`data`). */
export class Connection<P extends Port, D> {
  /** `blackholed`: a dial nobody answers; `closing`: a graceful close is on its way. */
  state: 'connecting' | 'blackholed' | 'open' | 'closing' | 'dead';
  acceptor: P | null = null;
  /** Direction whose end asked to close, while `closing`. */
  closingFrom: Direction | null = null;
  /** Latest scheduled arrival per direction, to keep links in order. */
  readonly tail: [number, number] = [0, 0];

  constructor(
    readonly id: number,
    readonly dialer: P,
    state: 'connecting' | 'open',
    readonly data: D,
  ) {
    this.state = state;
  }

  /** The end that receives what travels in `dir`. */
  to(dir: Direction): P {
    return dir === 0 ? this.acceptor! : this.dialer;
  }

  /** The end that sends in `dir`. */
  from(dir: Direction): P {
    return dir === 0 ? this.dialer : this.acceptor!;
  }

  /** Open or closing: frames may still travel. */
  get carries(): boolean {
    return this.state === 'open' || this.state === 'closing';
  }
}

/** The connection table and what a socket does; see the top of this file. */
export class Network<P extends Port, D> {
  readonly #host: NetworkHost<P>;
  readonly #table = new Map<string, Connection<P, D>>();
  #nextId = 1;

  constructor(host: NetworkHost<P>) {
    this.#host = host;
  }

  /** The connection of this end, and the direction it sends in. */
  find(key: string): { connection: Connection<P, D>; dir: Direction } | undefined {
    const connection = this.#table.get(key);
    if (connection === undefined) return undefined;
    return { connection, dir: connection.dialer.key === key ? 0 : 1 };
  }

  /** The connection this end may send on now, and its direction: undefined when it is gone, not open yet, or this end is closing it. */
  sender(key: string): { connection: Connection<P, D>; dir: Direction } | undefined {
    const found = this.find(key);
    if (found === undefined || !found.connection.carries || found.connection.closingFrom === found.dir) return undefined;
    return found;
  }

  /** A connection open at once, without a dial: a client's socket (`acceptor` null: the host plays the other end itself). */
  open(dialer: P, acceptor: P | null, data: D): Connection<P, D> {
    const connection = new Connection<P, D>(this.#nextId++, dialer, 'open', data);
    this.#attach(dialer, connection);
    if (acceptor !== null) {
      connection.acceptor = acceptor;
      this.#attach(acceptor, connection);
    }
    return connection;
  }

  /** A dial: the attempt reaches its target at `arriveAt`, where the host accepts, refuses or blackholes it. */
  dial(dialer: P, data: D, arriveAt: number, what: () => string, arrives: (connection: Connection<P, D>) => void): Connection<P, D> {
    const connection = new Connection<P, D>(this.#nextId++, dialer, 'connecting', data);
    this.#attach(dialer, connection);
    this.#host.travel(arriveAt, 'connect', () => arrives(connection), what);
    return connection;
  }

  /**
   * The target takes the connection (`accepted` runs then: what the acceptor
   * sends at once goes first); the dialer hears `opened()` one trip later,
   * behind it.
   */
  accept(connection: Connection<P, D>, acceptor: P, accepted: () => void = () => undefined): void {
    connection.acceptor = acceptor;
    connection.state = 'open';
    this.#attach(acceptor, connection);
    accepted();
    const dialer = connection.dialer;
    this.#host.hear(this.arrival(connection, 1, true), () => {
      if (connection.state === 'dead' || !dialer.alive()) return;
      dialer.whenRunning(() => {
        if (connection.state === 'dead' || !dialer.alive()) return;
        dialer.opened();
      });
    });
  }

  /** The dial is refused: the dialer hears `closed(reason)` at `at`. */
  refuse(connection: Connection<P, D>, reason: string, at: number): void {
    this.#kill(connection);
    this.#notifyClosed(connection.dialer, reason, at);
  }

  /** Nobody answers the dial: nothing comes back (the core's handshake timeout ends it). */
  blackhole(connection: Connection<P, D>): void {
    connection.state = 'blackholed';
  }

  /** The dial's own end is gone before it arrived. */
  drop(connection: Connection<P, D>): void {
    this.#kill(connection);
  }

  /** Where a frame sent now in `dir` arrives: one trip, held by the host (`heldUntil`), behind the link's earlier frames when `fifo`. */
  arrival(connection: Connection<P, D>, dir: Direction, fifo: boolean): number {
    let at = this.#host.now() + this.#host.trip(connection);
    const held = this.#host.heldUntil(connection, dir);
    if (held !== null) at = Math.max(at, held + this.#host.trip(connection));
    if (fifo) at = Math.max(at, connection.tail[dir]);
    else if (at < connection.tail[dir]) this.#host.reordered(connection, dir);
    connection.tail[dir] = Math.max(connection.tail[dir], at);
    return at;
  }

  /**
   * Sends a frame on an open or closing link: `lost()` when the link dies
   * under it or its receiver is gone, `delivering()` just before the receiver
   * reads it. The caller checked that the sender may send (`sender`).
   */
  transmit(connection: Connection<P, D>, dir: Direction, text: string, fifo: boolean, fate: { lost(): void; delivering(): void }, what: () => string): void {
    const to = connection.to(dir);
    const deliver = (): void => {
      if (connection.state === 'dead' || !to.alive()) return fate.lost();
      if (to.holdsFrame(deliver)) return;
      fate.delivering();
      to.receive(text);
    };
    this.#host.travel(
      this.arrival(connection, dir, fifo),
      'frame',
      () => {
        if (connection.state === 'dead') return fate.lost();
        to.whenRunning(deliver);
      },
      what,
    );
  }

  /** Reports `bytes` that `port` sent as written out, at `at` (unless the reader at the other end keeps the report back). */
  written(port: P, bytes: number, at: number): void {
    const report = (): void => {
      const other = this.#other(port);
      if (other?.holdsWritten(report)) return;
      port.whenRunning(() => {
        if (port.alive()) port.written(bytes);
      });
    };
    this.#host.travel(at, 'written', report, () => `${port.key} wrote out ${bytes} bytes`);
  }

  /**
   * Closes gracefully from `port`'s end: frames already sent arrive first,
   * then the other end hears `closed()`, and this end one trip later.
   * `arrived` runs when the close reaches the other end. False when there
   * was nothing to close. A link not open yet, or a client's, just goes away.
   */
  close(port: P, reason: string, arrived: () => void = () => undefined): boolean {
    const found = this.find(port.key);
    if (found === undefined) return false;
    const { connection, dir } = found;
    if (connection.state === 'dead' || connection.state === 'closing') return false;
    if (connection.acceptor === null || !connection.carries) {
      this.#kill(connection);
      this.#notifyClosed(port, reason, this.#host.now());
      return true;
    }
    connection.state = 'closing';
    connection.closingFrom = dir;
    this.#host.travel(
      this.arrival(connection, dir, true),
      'close',
      () => {
        if (connection.state === 'dead') return;
        arrived();
        this.#kill(connection);
        this.#notifyClosed(connection.to(dir), reason, this.#host.now());
        this.#notifyClosed(port, reason, this.#host.now() + this.#host.trip(connection));
      },
      () => `${port.key} closes: ${reason}`,
    );
    return true;
  }

  /** Cuts a link abruptly (a partition, a reset, a crash): frames on their way are lost, both ends hear it one trip later. False when it was not connected. */
  cut(connection: Connection<P, D>, reason: string): boolean {
    if (connection.state === 'dead') return false;
    this.#kill(connection);
    const acceptor = connection.acceptor;
    if (acceptor === null) return false;
    for (const end of [connection.dialer, acceptor]) this.#notifyClosed(end, reason, this.#host.now() + this.#host.trip(connection));
    return true;
  }

  #other(port: P): P | undefined {
    const found = this.find(port.key);
    if (found === undefined || found.connection.acceptor === null) return undefined;
    return found.connection.to(found.dir);
  }

  #attach(port: P, connection: Connection<P, D>): void {
    this.#table.set(port.key, connection);
    port.attached(connection);
  }

  #kill(connection: Connection<P, D>): void {
    connection.state = 'dead';
    for (const end of [connection.dialer, connection.acceptor]) {
      if (end === null) continue;
      if (this.#table.get(end.key) === connection) this.#table.delete(end.key);
      end.detached(connection);
    }
  }

  #notifyClosed(end: P, reason: string, at: number): void {
    this.#host.hear(at, () => {
      if (!end.alive()) return;
      end.whenRunning(() => {
        if (end.alive()) end.closed(reason);
      });
    });
  }
}
