/**
 * Failure detection: links whose other side is gone or stuck are closed, so
 * that their node is marked down and redialed (dials.ts), and catches up when
 * it is back. A peer that sent nothing, not even a ping, for
 * `peerTimeoutMs` is gone (crashed, stopped, cut off); a peer link that sent
 * nothing for a heartbeat period gets a ping, so that the other side does not
 * take this node for gone. A link over its outbound budget for
 * SLOW_LINK_TIMEOUT_MS does not read what it is sent (flow-control.ts).
 * Both run from `tick()`, on the monotonic clock.
 */
import { CLOSE_CODES } from './close-codes.js';
import { SLOW_LINK_TIMEOUT_MS } from './flow-control.js';
import { type NodeContext } from './node-context.js';

/** Closes the peer links that went silent, and pings the quiet ones. */
export function detectSilentPeers(ctx: NodeContext, nowMs: number): void {
  for (const link of ctx.table.peerLinkList()) {
    if (nowMs - link.lastHeardAtMs > ctx.timing.peerTimeoutMs) {
      ctx.counters.peersTimedOut++;
      ctx.closeLink(link.id, CLOSE_CODES.PEER_TIMEOUT, 'no heartbeat', `no message for ${nowMs - link.lastHeardAtMs} ms`);
    } else if (nowMs - link.lastSentAtMs >= ctx.timing.heartbeatIntervalMs) {
      // Sent after everything queued before it on this link, so its upTo covers what went before.
      ctx.send(link.id, link.state.session.claimsUpTo ? { type: 'ping', upTo: ctx.store.seq } : { type: 'ping' });
    }
  }
}

/** Closes the links over their outbound budget for too long. */
export function closeSlowLinks(ctx: NodeContext, nowMs: number): void {
  for (const link of ctx.table.overBudget(nowMs - SLOW_LINK_TIMEOUT_MS)) {
    ctx.closeTooSlow(link, `over its outbound budget for ${nowMs - link.overBudgetSinceMs!} ms`);
  }
}
