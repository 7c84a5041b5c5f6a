/**
 * Test certificates, made fresh by scripts/make-certs.sh (the script the docs
 * describe) into a temp folder the caller removes. Tests that need them skip,
 * printing the reason, where openssl is missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

function findScript(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const script = join(dir, 'scripts', 'make-certs.sh');
    if (existsSync(script)) return script;
  }
  throw new Error(`cannot find scripts/make-certs.sh above ${fileURLToPath(import.meta.url)}`);
}

/** Path of scripts/make-certs.sh. */
export const MAKE_CERTS = findScript();

/** Why certificates cannot be made here, or undefined when they can. */
export function certsUnavailable(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'openssl is not installed (Debian: apt-get install openssl), so no test certificate can be made';
  }
}

/** Skips the current suite or test, printing why. */
export function skipWithReason(context: Mocha.Context, reason: string): never {
  process.stdout.write(`      skipped: ${reason}\n`);
  context.skip();
}

/** Runs scripts/make-certs.sh DIR NAME:ADDR,... for each node; resolves once DIR holds ca.pem and NAME.pem / NAME-key.pem. */
export async function makeCerts(dir: string, nodes: Readonly<Record<string, readonly string[]>>): Promise<void> {
  const specs = Object.entries(nodes).map(([name, addresses]) => `${name}:${addresses.join(',')}`);
  await promisify(execFile)('bash', [MAKE_CERTS, dir, ...specs]);
}
