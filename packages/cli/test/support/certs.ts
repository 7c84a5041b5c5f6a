/**
 * Test certificates for the CLI's tests: the node package's helper
 * (packages/node/test/support/certs.ts, which runs scripts/make-certs.sh),
 * loaded from that package's build, since neither package exports its test
 * code and each builds to its own dist/.
 */
import type * as Certs from '../../../node/test/support/certs.js';

// This file runs as packages/cli/dist/test/support/certs.js.
const certs = (await import(new URL('../../../../node/dist/test/support/certs.js', import.meta.url).href)) as typeof Certs;

/** See packages/node/test/support/certs.ts. */
export const { MAKE_CERTS, certsUnavailable, makeCerts, skipWithReason } = certs;
