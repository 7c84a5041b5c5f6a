#!/usr/bin/env node
// Thin launcher: the code is compiled to dist/ by `npm run build` (which `npm install` runs).
let run;
try {
  ({ run } = await import('../dist/src/main.js'));
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
  process.stderr.write('bby: not built yet; run `npm run build` at the root of the bby repository\n');
  process.exit(1);
}
process.exitCode = await run(process.argv.slice(2));
