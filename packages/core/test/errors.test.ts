/**
 * One error model: the registry of codes in src/errors.ts is complete and
 * documented. Every error class declared in the sources of the repository's
 * packages (read as syntax trees, so that the test follows files that move
 * between packages) descends from BbyError, whose `code` the type system
 * keeps inside the registry; and every wire code is a row of the error table
 * of docs/protocol.md, and every row a wire code.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ERROR_CODES, LOCAL_ERROR_CODES } from '../src/errors.js';

// This file runs as packages/core/dist/test/errors.test.js; the repository is four levels up.
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * Error classes whose `code` is not one of the registry's, and why. Each
 * reaches the user through a class or a frame that has one.
 */
const CODED_ELSEWHERE: Readonly<Record<string, string>> = {
  NodeError: "the code the node sent in its error frame: a wire code (ERROR_CODES) for a node of this version, kept as sent for another one",
  StorageFailure: 'the errno code of the disk (ENOSPC, EIO, ...), public since the storage engine exists; the node answers it with STORAGE_FAILED',
  DataDirError: 'the errno code of the disk, or none; its startCode (START_FAILED, DATA_DIR_LOCKED, DATA_DAMAGED) is the code of the StartError bby-node turns it into',
  Crash: "the simulated power loss of @bby/node/internal's in-memory file system: only tests and @bby/sim throw it, and they catch it",
};

/** A class declared in a source file, with the name of the class it extends (undefined: none). */
interface DeclaredClass {
  readonly name: string;
  readonly parent: string | undefined;
  readonly where: string;
}

/** The classes a source file declares, at any depth. */
export function declaredClasses(fileName: string, text: string): DeclaredClass[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: DeclaredClass[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isClassDeclaration(node) || ts.isClassExpression(node)) && node.name !== undefined) {
      const extended = node.heritageClauses?.find((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
      // `extends Error`, `extends transport.StartError`: the class is known by its last name.
      const parent = extended === undefined ? undefined : ts.isPropertyAccessExpression(extended) ? extended.name.text : extended.getText(source);
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
      found.push({ name: node.name.text, parent, where: `${fileName}:${line + 1}` });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The TypeScript files under a folder, recursively. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** For each error class (one that descends from Error), the first ancestor that settles what it is: BbyError, Error, or an exception of CODED_ELSEWHERE. */
export function errorClasses(classes: readonly DeclaredClass[]): Map<string, { root: string; where: string }> {
  const byName = new Map(classes.map((c) => [c.name, c]));
  const result = new Map<string, { root: string; where: string }>();
  for (const declared of classes) {
    let current: DeclaredClass | undefined = declared;
    const seen = new Set<string>();
    while (current !== undefined && !seen.has(current.name)) {
      seen.add(current.name);
      const parent: string | undefined = current.parent;
      if (parent === 'BbyError' || parent === 'Error' || (parent !== undefined && parent in CODED_ELSEWHERE)) {
        if (declared.name !== 'BbyError') result.set(declared.name, { root: current.name in CODED_ELSEWHERE ? current.name : parent, where: declared.where });
        break;
      }
      current = parent === undefined ? undefined : byName.get(parent);
    }
  }
  return result;
}

/** The codes in the first column of the table under "## Errors" in docs/protocol.md. */
function documentedWireCodes(): string[] {
  const text = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
  const section = /^## Errors\n([\s\S]*?)(?=^## )/m.exec(text)?.[1];
  if (section === undefined) throw new Error('docs/protocol.md has no "## Errors" section');
  return [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]!);
}

describe('errors: one registry of codes', () => {
  const wire = Object.keys(ERROR_CODES);
  const local = Object.keys(LOCAL_ERROR_CODES);

  it('gives each code, wire or local, a one-line meaning and fix, and keeps the two lists apart', () => {
    for (const [code, info] of Object.entries({ ...ERROR_CODES, ...LOCAL_ERROR_CODES })) {
      expect(code).to.match(/^[A-Z]+(_[A-Z]+)*$/);
      for (const line of [info.meaning, info.fix]) expect(line, code).to.match(/^[^\n]{8,}$/);
    }
    expect(wire.filter((code) => local.includes(code))).to.deep.equal([]);
  });

  it('docs/protocol.md lists every wire code in its error table, and no other', () => {
    expect(documentedWireCodes()).to.have.members(wire);
  });

  describe('the error classes of every package', () => {
    const packages = readdirSync(join(ROOT, 'packages')).filter((name) => statSync(join(ROOT, 'packages', name, 'src'), { throwIfNoEntry: false })?.isDirectory() === true);
    const classes = packages.flatMap((name) => sourceFiles(join(ROOT, 'packages', name, 'src')).map((path) => ({ path, file: `packages/${name}/src/${path.slice(join(ROOT, 'packages', name, 'src').length + 1)}` })));
    const declared = classes.flatMap(({ path, file }) => declaredClasses(file, readFileSync(path, 'utf8')));
    const errors = errorClasses(declared);

    it('finds them in core, node and cli', () => {
      expect(packages).to.include.members(['core', 'node', 'cli']);
      expect([...errors.keys()]).to.include.members(['ConfigError', 'StartError', 'UnreachableError', 'ImportStoppedError', ...Object.keys(CODED_ELSEWHERE)]);
    });

    it('each descends from BbyError, so that its code is one of the registry (or is one of the few coded elsewhere, which all still exist)', () => {
      const uncoded = [...errors].filter(([, { root }]) => root === 'Error').map(([name, { where }]) => `${where}: ${name} extends Error without a code; extend BbyError with a code of src/errors.ts`);
      expect(uncoded, uncoded.join('\n')).to.deep.equal([]);
      for (const name of Object.keys(CODED_ELSEWHERE)) expect(errors.get(name)?.root, name).to.equal(name);
    });

    it('the check finds a class that extends Error, directly or through another one', () => {
      const found = errorClasses([
        ...declaredClasses('a.ts', 'class Good extends BbyError {}\nclass Bad extends Error {}\nclass Worse extends Bad {}\nclass Other extends Map {}'),
        ...declaredClasses('b.ts', 'export class Far extends ns.Good {}'),
      ]);
      expect(Object.fromEntries([...found].map(([name, { root }]) => [name, root]))).to.deep.equal({ Good: 'BbyError', Bad: 'Error', Worse: 'Error', Far: 'BbyError' });
    });
  });
});
