/**
 * A simulated machine's disk: the in-memory file system of @bby/node
 * (storage/memory-fs.ts) that the real Storage runs over, with the seed's
 * disk faults and simulated fsync time. What a crash keeps is what the file
 * system says survives (synced bytes of durable names, and with torn writes
 * a drawn prefix of the rest); a lost disk is a fresh, empty one.
 */
import { MemoryFileSystem } from '@bby/node/internal';

/** The data folder of every simulated node, inside its machine's file system. */
export const DATA_DIR = '/data';

/** The disk faults of a run; see FaultProfile for each. */
export interface DiskFaults {
  readonly syncFailure: number;
  readonly writebackLoss: boolean;
  readonly readBitFlip: number;
  readonly tornWrites: boolean;
  readonly syncMs: number;
}

/** How the disk reaches the simulation: its seeded source, and simulated time. */
export interface DiskWorld {
  /** The disk's own stream of the seed. */
  readonly random: () => number;
  /** Calls `run` after `delayMs` of simulated time, unless this disk was replaced (crash) meanwhile. */
  readonly later: (disk: MemoryFileSystem, delayMs: number, run: () => void) => void;
}

/** A machine's disk across crashes; see the file header. */
export class MachineDisk {
  #fs: MemoryFileSystem;
  #faults: DiskFaults;
  readonly #world: DiskWorld;
  /** Faults that struck on the disks this machine had before (crashed or lost). */
  readonly #struckBefore = { syncFailure: 0, readBitFlip: 0 };

  constructor(faults: DiskFaults, world: DiskWorld) {
    this.#faults = faults;
    this.#world = world;
    this.#fs = this.#fresh(new MemoryFileSystem());
  }

  /** The file system the node of this machine runs on now. */
  get fs(): MemoryFileSystem {
    return this.#fs;
  }

  /** Seeded faults that struck on this machine's disks so far. */
  get struck(): { readonly syncFailure: number; readonly readBitFlip: number } {
    return { syncFailure: this.#struckBefore.syncFailure + this.#fs.struck.syncFailure, readBitFlip: this.#struckBefore.readBitFlip + this.#fs.struck.readBitFlip };
  }

  /** The machine crashed: the disk keeps what survives (`keep`), or is replaced by an empty one. The old file system fails every later operation. */
  crash(keep: boolean): void {
    const old = this.#fs;
    const after = keep ? old.crash(this.#faults.tornWrites ? { tornWrites: this.#world.random } : {}) : new MemoryFileSystem();
    this.#struckBefore.syncFailure += old.struck.syncFailure;
    this.#struckBefore.readBitFlip += old.struck.readBitFlip;
    // What the dead process still had in flight on it goes nowhere.
    old.faults = { crashAt: 0 };
    old.wait = null;
    this.#fs = this.#fresh(after);
  }

  /** The disk is full for now (an append that does not fit fails with ENOSPC), or has room again. */
  setFull(full: boolean): void {
    if (full) this.#fs.faults.diskBytes = this.#fs.usedBytes();
    else delete this.#fs.faults.diskBytes;
  }

  /** Whether the disk is full now. */
  get full(): boolean {
    return this.#fs.faults.diskBytes !== undefined;
  }

  /** The faults stop (the liveness phase): no more failed syncs, flipped bits or full disk. */
  heal(): void {
    this.#faults = { ...this.#faults, syncFailure: 0, readBitFlip: 0 };
    this.setFull(false);
    delete this.#fs.faults.random;
  }

  /** Gives a file system the run's seeded faults and fsync time: syncs take `syncMs`, the rest of the operations no time (the page cache). */
  #fresh(fs: MemoryFileSystem): MemoryFileSystem {
    const { syncFailure, readBitFlip, syncMs, writebackLoss } = this.#faults;
    if (syncFailure > 0 || readBitFlip > 0) fs.faults.random = { random: this.#world.random, syncFailure, readBitFlip, loseWriteback: writebackLoss };
    fs.wait = (kind) => (kind === 'sync' || kind === 'syncDir' ? new Promise((resolve) => this.#world.later(fs, syncMs, resolve)) : undefined);
    return fs;
  }
}
