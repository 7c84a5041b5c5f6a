/**
 * The progress line of `bby import` and `bby export` on a terminal: a bar,
 * keys done (of how many, when known), keys a second, and the time left.
 */

/** A bar of `width` characters and a percentage, for a fraction from 0 to 1. */
export function progressBar(fraction: number, width = 24): string {
  const clamped = Math.max(0, Math.min(1, fraction));
  const filled = Math.round(clamped * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(clamped * 100)).padStart(3)}%`;
}

/** Seconds as `42 s`, `3 min 05 s` or `1 h 02 min`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * One progress line: `fraction` is how far the work is (bytes read of an
 * import's file, keys written of an export), undefined when unknown (stdin);
 * `total` the keys to do, when known. The time left is the time so far scaled
 * by what remains, once there is something to scale.
 */
export function progressLine(done: number, elapsedMs: number, fraction?: number, total?: number): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(done / seconds) : 0;
  const parts = [`${done.toLocaleString('en-US')}${total === undefined ? '' : ` of ${total.toLocaleString('en-US')}`} keys`, `${rate.toLocaleString('en-US')} keys/s`];
  if (fraction !== undefined && fraction > 0 && fraction < 1 && seconds > 0) parts.push(`ETA ${formatDuration((seconds * (1 - fraction)) / fraction)}`);
  return `${fraction === undefined ? '' : `${progressBar(fraction)} `}${parts.join(', ')}`;
}
