/**
 * Two clocks (NodeOptions `now` and `monotonic`): timers run on the monotonic
 * one, so a wall clock that steps back or jumps ahead an hour neither fires
 * nor suppresses a timeout; entries keep wall-clock timestamps.
 */
import { expect } from 'chai';
import { createNode, DEFAULT_TIMING, type Effect, PROTOCOL_VERSION } from '../src/index.js';
import { readyEffects, HANDSHAKE_TIMEOUT_MS, RETRY_CAP_MS } from '../src/internal.js';
import { mulberry32, START_MS } from '@bby/sim';

const HOUR_MS = 3_600_000;

/** A wall clock and a monotonic clock the test moves apart. */
function clocks() {
  const time = { wallMs: START_MS, monotonicMs: 0 };
  return {
    time,
    now: () => time.wallMs,
    monotonic: () => time.monotonicMs,
    /** Both clocks move forward together, as they do when nobody touches the wall clock. */
    advance(ms: number) {
      time.wallMs += ms;
      time.monotonicMs += ms;
    },
  };
}

/** The wall clock's two faults, each as a change of the wall clock alone. */
const STEPS = [
  { name: 'steps back 1 h', wallMs: -HOUR_MS },
  { name: 'jumps forward 1 h', wallMs: HOUR_MS },
] as const;

function effectsOf(effects: Effect[], type: Effect['type']): Effect[] {
  return effects.filter((effect) => effect.type === type);
}

describe('clocks: timers on the monotonic clock, timestamps on the wall clock', () => {
  for (const step of STEPS) {
    describe(`a wall clock that ${step.name}`, () => {
      it('neither fires nor suppresses the peer timeout', () => {
        const clock = clocks();
        const node = createNode({ id: 'a', now: clock.now, monotonic: clock.monotonic, random: mulberry32(7) });
        // A peer that says hello and then never answers a ping.
        const link = node.accept();
        node.receive(link, JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: 'p', address: 'sim-p:1' }));
        expect(node.stats().peers).to.equal(1);
        clock.time.wallMs += step.wallMs;
        node.tick();
        expect(node.stats().peers, 'no monotonic time passed: the peer is not timed out').to.equal(1);
        for (let elapsedMs = 0; elapsedMs < DEFAULT_TIMING.peerTimeoutMs - 500; elapsedMs += 500) {
          clock.advance(500);
          node.tick();
        }
        expect(node.stats().peers, 'still inside the peer timeout').to.equal(1);
        clock.advance(1000);
        node.tick();
        expect(node.stats()).to.include({ peers: 0, peersTimedOut: 1 });
      });

      it('neither fires nor suppresses the handshake timeout', () => {
        const clock = clocks();
        const node = createNode({ id: 'a', address: 'sim-a:1', peers: ['sim-b:1'], now: clock.now, monotonic: clock.monotonic, random: mulberry32(1) });
        const dial = readyEffects(node.takeReady()).find((effect) => effect.type === 'dial');
        expect(dial).to.not.equal(undefined);
        clock.time.wallMs += step.wallMs;
        node.tick();
        expect(effectsOf(readyEffects(node.takeReady()), 'close'), 'no monotonic time passed: the dial waits').to.deep.equal([]);
        clock.advance(HANDSHAKE_TIMEOUT_MS - 1);
        node.tick();
        expect(effectsOf(readyEffects(node.takeReady()), 'close'), 'inside the handshake timeout').to.deep.equal([]);
        clock.advance(2);
        node.tick();
        expect(effectsOf(readyEffects(node.takeReady()), 'close'), 'the handshake timeout passed').to.have.length(1);
      });

      it('neither fires nor suppresses a dial retry', () => {
        const clock = clocks();
        const node = createNode({ id: 'a', address: 'sim-a:1', peers: ['sim-b:1'], now: clock.now, monotonic: clock.monotonic, random: mulberry32(1) });
        const dial = readyEffects(node.takeReady()).find((effect): effect is Extract<Effect, { type: 'dial' }> => effect.type === 'dial')!;
        node.closed(dial.link, 'ECONNREFUSED');
        readyEffects(node.takeReady());
        clock.time.wallMs += step.wallMs;
        node.tick();
        expect(effectsOf(readyEffects(node.takeReady()), 'dial'), 'no monotonic time passed: the retry waits').to.deep.equal([]);
        clock.advance(RETRY_CAP_MS + 1);
        node.tick();
        expect(effectsOf(readyEffects(node.takeReady()), 'dial'), 'the retry delay passed').to.have.length(1);
      });

      it('stamps writes with the wall clock', () => {
        const clock = clocks();
        const node = createNode({ id: 'a', now: clock.now, monotonic: clock.monotonic, random: mulberry32(1) });
        clock.time.wallMs += step.wallMs;
        node.set('k', 'v');
        expect(node.entry('k')?.timestamp).to.equal(START_MS + step.wallMs);
      });
    });
  }
});
