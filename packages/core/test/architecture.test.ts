/**
 * The core stays sans-I/O: no networking, disk, processes, timers, wall clock
 * or global randomness in packages/core/src. This test reads the TypeScript
 * sources (not the compiled output) and inspects their syntax trees, so that
 * mentions in comments and strings do not count but real uses do.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// This file runs as packages/core/dist/test/architecture.test.js; the sources are in packages/core/src.
const SRC_DIR = fileURLToPath(new URL('../../src/', import.meta.url));

const FORBIDDEN_MODULES = new Set(
  ['ws', 'net', 'http', 'https', 'http2', 'fs', 'fs/promises', 'dgram', 'child_process', 'timers', 'timers/promises', 'worker_threads'].flatMap((name) =>
    name === 'ws' ? [name] : [name, `node:${name}`],
  ),
);
const FORBIDDEN_GLOBALS = new Set(['setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask']);
const FORBIDDEN_MEMBERS: Record<string, readonly string[]> = { Date: ['now'], Math: ['random'], performance: ['now'] };
const FORBIDDEN_OBJECTS = new Set(['process']);
/** node:crypto is allowed for hashing (HMAC, auth.ts), not for randomness: the core's random bytes are injected. */
const CRYPTO_MODULES = new Set(['crypto', 'node:crypto']);
const FORBIDDEN_CRYPTO = new Set(['randomBytes', 'randomFill', 'randomFillSync', 'randomInt', 'randomUUID', 'getRandomValues', 'webcrypto', 'generateKeySync', 'generateKeyPairSync']);

/** True for an identifier that refers to a variable, not a property name or a declared name. */
function isFreeReference(node: ts.Identifier): boolean {
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) && parent.name === node) return false;
  if ((ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent) || ts.isMethodDeclaration(parent) || ts.isPropertySignature(parent)) && parent.name === node) return false;
  if ((ts.isVariableDeclaration(parent) || ts.isParameter(parent) || ts.isFunctionDeclaration(parent) || ts.isBindingElement(parent)) && parent.name === node) return false;
  return true;
}

/** The forbidden things a source file uses, one line each, with line numbers. */
export function violations(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const report = (node: ts.Node, what: string) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
    found.push(`${fileName}:${line + 1}: ${what}`);
  };
  const visit = (node: ts.Node): void => {
    // import ... from 'x', export ... from 'x', import x = require('x')
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      if (FORBIDDEN_MODULES.has(node.moduleSpecifier.text)) report(node, `imports ${node.moduleSpecifier.text}`);
      if (CRYPTO_MODULES.has(node.moduleSpecifier.text)) {
        const bindings = ts.isImportDeclaration(node) ? node.importClause?.namedBindings : node.exportClause;
        if (bindings === undefined || ts.isNamespaceImport(bindings) || ts.isNamespaceExport(bindings) || (ts.isImportDeclaration(node) && node.importClause?.name !== undefined)) {
          report(node, `imports all of ${node.moduleSpecifier.text} (name the hashing functions it uses)`);
        } else {
          for (const element of bindings.elements) {
            const name = (element.propertyName ?? element.name).text;
            if (FORBIDDEN_CRYPTO.has(name)) report(node, `uses crypto.${name}`);
          }
        }
      }
    }
    if (ts.isExternalModuleReference(node) && ts.isStringLiteral(node.expression) && FORBIDDEN_MODULES.has(node.expression.text)) {
      report(node, `imports ${node.expression.text}`);
    }
    // import('x'), require('x')
    if (ts.isCallExpression(node)) {
      const [first] = node.arguments;
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if ((isImport || isRequire) && first !== undefined && ts.isStringLiteralLike(first) && FORBIDDEN_MODULES.has(first.text)) {
        report(node, `imports ${first.text}`);
      }
    }
    // setTimeout(...), process.env: free references to forbidden globals (not property names or declarations).
    if (ts.isIdentifier(node) && isFreeReference(node)) {
      if (FORBIDDEN_GLOBALS.has(node.text)) report(node, `uses ${node.text}`);
      if (FORBIDDEN_OBJECTS.has(node.text) && (ts.isPropertyAccessExpression(node.parent) || ts.isElementAccessExpression(node.parent))) {
        report(node, `uses ${node.text}.`);
      }
    }
    // Date.now, Math.random, Date['now'], globalThis.setTimeout
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const objectName = ts.isIdentifier(node.expression) ? node.expression.text : undefined;
      const member = ts.isPropertyAccessExpression(node) ? node.name.text : ts.isStringLiteralLike(node.argumentExpression) ? node.argumentExpression.text : undefined;
      if (objectName !== undefined && member !== undefined) {
        if (FORBIDDEN_MEMBERS[objectName]?.includes(member)) report(node, `uses ${objectName}.${member}`);
        if (objectName === 'globalThis' && FORBIDDEN_GLOBALS.has(member)) report(node, `uses ${member}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('architecture: the core is sans-I/O', () => {
  const files = readdirSync(SRC_DIR).filter((name) => name.endsWith('.ts'));

  it('finds the core sources', () => {
    expect(files).to.include.members(['node.ts', 'protocol.ts', 'store.ts', 'index.ts']);
  });

  it('the detector finds a forbidden line added to a real core source', () => {
    const text = readFileSync(`${SRC_DIR}node.ts`, 'utf8');
    expect(violations('node.ts', text)).to.deep.equal([]);
    const lines = text.split('\n').length;
    expect(violations('node.ts', `${text}\nexport const startedAt = Date.now();\n`)).to.deep.equal([`node.ts:${lines + 1}: uses Date.now`]);
  });

  it('no core source imports networking, disk, process or timer modules, or reads the clock, randomness, timers or process', () => {
    const found = files.flatMap((name) => violations(name, readFileSync(`${SRC_DIR}${name}`, 'utf8')));
    expect(found, found.join('\n')).to.deep.equal([]);
  });

  describe('the detector itself', () => {
    const forbidden: [string, string][] = [
      [`import { WebSocket } from 'ws';`, 'imports ws'],
      [`import * as net from 'node:net';`, 'imports node:net'],
      [`import net from 'net';`, 'imports net'],
      [`import { createServer } from 'node:http';`, 'imports node:http'],
      [`import http from 'http';`, 'imports http'],
      [`import { readFileSync } from 'node:fs';`, 'imports node:fs'],
      [`import 'fs';`, 'imports fs'],
      [`import dgram from 'node:dgram';`, 'imports node:dgram'],
      [`import { spawn } from 'node:child_process';`, 'imports node:child_process'],
      [`export { readFile } from 'node:fs/promises';`, 'imports node:fs/promises'],
      [`const fs = await import('node:fs');`, 'imports node:fs'],
      [`const fs = require('fs');`, 'imports fs'],
      [`const t = Date.now();`, 'uses Date.now'],
      [`const now = Date.now;`, 'uses Date.now'],
      [`const t = Date['now']();`, 'uses Date.now'],
      [`const r = Math.random();`, 'uses Math.random'],
      [`setTimeout(() => {}, 10);`, 'uses setTimeout'],
      [`const id = setInterval(tick, 100);`, 'uses setInterval'],
      [`setImmediate(run);`, 'uses setImmediate'],
      [`globalThis.setTimeout(run, 1);`, 'uses setTimeout'],
      [`const port = process.env.PORT;`, 'uses process.'],
      [`process.exit(1);`, 'uses process.'],
      [`import { randomBytes } from 'node:crypto';`, 'uses crypto.randomBytes'],
      [`import { createHmac, randomUUID as id } from 'crypto';`, 'uses crypto.randomUUID'],
      [`import * as crypto from 'node:crypto';`, 'imports all of node:crypto (name the hashing functions it uses)'],
    ];
    for (const [line, what] of forbidden) {
      it(`catches ${line}`, () => {
        expect(violations('sample.ts', `// a harmless first line\n${line}\n`)).to.deep.equal([`sample.ts:2: ${what}`]);
      });
    }

    it('ignores comments, strings and look-alike names', () => {
      const allowed = [
        `/** Never call Date.now() or Math.random() here; no setTimeout, no process.exit. */`,
        `// import { WebSocket } from 'ws';`,
        `const text = "uses Date.now and process.env";`,
        `const url = 'ws://host:7001';`,
        `import { parseAddress } from './address.js';`,
        `import { createHmac, timingSafeEqual } from 'node:crypto';`,
        `const options = { now: () => 0, random: () => 0.5 };`,
        `const processed = 1; const processor = { run() {} }; processor.run();`,
        `class Clock { now() { return 0; } } new Clock().now();`,
        `const later = { setTimeout: 1 }; later.setTimeout;`,
      ].join('\n');
      expect(violations('sample.ts', allowed)).to.deep.equal([]);
    });
  });
});
