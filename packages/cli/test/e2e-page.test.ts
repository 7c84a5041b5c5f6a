/**
 * End to end, in a real browser: the live page of a node (packages/node/page)
 * with three bby-node processes, driven by headless Chromium through
 * playwright-core. Skipped, saying why, where no Chromium is installed
 * (.ci/run installs Debian's `chromium`); set CHROMIUM_PATH to use another.
 * BBY_PAGE_SCREENSHOT=path also saves the screenshot there (docs/page.png is
 * made so).
 */
import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { type Browser, chromium, type Page } from 'playwright-core';
import { freePort, restartNode, startNode, testDir, useCleanup, waitForConnected, writeConfig } from './support/processes.js';

/** The Chromium to drive: CHROMIUM_PATH, else the usual Debian and Ubuntu paths. */
function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'];
  return candidates.find((path): path is string => path !== undefined && path !== '' && existsSync(path));
}

/** Polls the page (bounded) until `check` returns true. */
async function pageShows(page: Page, what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  try {
    await page.waitForFunction(check, undefined, { timeout: timeoutMs, polling: 100 });
  } catch (error) {
    throw new Error(`the page did not show ${what} within ${timeoutMs} ms: ${(error as Error).message.split('\n')[0]}`);
  }
}

describe('e2e: the live page in a real browser', function () {
  this.timeout(90_000);
  useCleanup();
  let browser: Browser | undefined;

  before(function () {
    if (findChromium() === undefined) {
      console.log('    skipped: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it');
      this.skip();
    }
  });

  after(async () => {
    await browser?.close();
  });

  /** One browser for the tests of this file. */
  async function launch(): Promise<Browser> {
    browser ??= await chromium.launch({ executablePath: findChromium()!, args: ['--no-sandbox', '--disable-gpu'] });
    return browser;
  }

  it('shows three nodes and their links, the key count and the writes as they come, a node stopped as down, then back', async () => {
    const one = await startNode({ id: 'node1' });
    const two = await startNode({ id: 'node2', peers: [one.address] });
    const three = await startNode({ id: 'node3', peers: [two.address] });
    await waitForConnected(one, ['node2', 'node3'], 15_000);
    const page = await (await launch()).newPage({ viewport: { width: 1100, height: 820 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`http://${one.address}/`);
    await pageShows(page, 'the three nodes, linked', () => {
      const nodes = [...document.querySelectorAll('#graph g.node')].map((g) => `${(g as SVGElement).dataset.node}:${(g as SVGElement).dataset.state}`).sort();
      return nodes.join(' ') === 'node1:self node2:connected node3:connected' && document.querySelectorAll('#graph line.edge.connected').length === 2;
    });
    expect(await page.textContent('#node-id')).to.equal('node1');
    expect(await page.textContent('#keys')).to.equal('0');

    // A write on node2 reaches node1: the count and the stream move. A key that looks like HTML stays text.
    expect(await two.bby('set', '<img src=x onerror=alert(1)>', 'MonChamp')).to.include({ code: 0 });
    expect(await three.bby('set', 'MonChamp', '42')).to.include({ code: 0 });
    await pageShows(page, 'two keys and two writes', () => document.getElementById('keys')!.textContent === '2' && document.querySelectorAll('#writes tr').length === 2);
    const cells = await page.$$eval('#writes tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    expect(cells).to.deep.equal(['MonChamp', '<img src=x onerror=alert(1)>']);
    expect(await page.$$eval('#writes img', (images) => images.length)).to.equal(0);
    expect(await page.$$eval('#writes tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent))).to.deep.equal(['from node3', 'from node2']);

    const screenshot = join(await testDir(), 'page.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`    screenshot: ${screenshot}`);
    if (process.env.BBY_PAGE_SCREENSHOT) await copyFile(screenshot, process.env.BBY_PAGE_SCREENSHOT);

    // node3 stops: shown down; it comes back: connected again, and it has every key.
    await three.stop();
    await pageShows(page, 'node3 down', () => (document.querySelector('#graph g.node[data-node="node3"]') as SVGElement | null)?.dataset.state === 'down');
    const back = await restartNode(three);
    await pageShows(page, 'node3 connected again', () => (document.querySelector('#graph g.node[data-node="node3"]') as SVGElement | null)?.dataset.state === 'connected', 20_000);
    expect(await back.bby('get', 'MonChamp')).to.include({ stdout: '42\n' });

    // Clicking a node opens its page.
    await page.click('#graph g.node[data-node="node2"]');
    await pageShows(page, "node2's own page", () => document.getElementById('node-id')!.textContent === 'node2');
    expect(page.url()).to.equal(`http://${two.address}/`);
    expect(errors).to.deep.equal([]);
  });

  it('draws 10 nodes legibly: 10 circles, every one connected, no label over another label or a circle, all inside the graph', async () => {
    // A ring node1 → node2 → … → node10 → node1, a chord node1 → node5, and peer exchange (the default), which links node1 to the rest.
    const ports = await Promise.all(Array.from({ length: 10 }, () => freePort()));
    const files = await Promise.all(
      ports.map((port, i) =>
        writeConfig({ id: `node${i + 1}`, port, peers: [`127.0.0.1:${ports[(i + 1) % 10]!}`, ...(i === 0 ? [`127.0.0.1:${ports[4]!}`] : [])] }),
      ),
    );
    const nodes = await Promise.all(files.map((file) => startNode(file)));
    const page = await (await launch()).newPage({ viewport: { width: 1100, height: 820 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`http://${nodes[0]!.address}/`);
    await pageShows(
      page,
      'ten nodes, nine of them connected',
      () => {
        const states = [...document.querySelectorAll('#graph g.node')].map((g) => (g as SVGElement).dataset.state);
        return states.length === 10 && states.filter((state) => state === 'connected').length === 9;
      },
      20_000,
    );
    const layout = await page.evaluate(() => {
      const box = (element: Element) => {
        const { x, y, width, height } = element.getBoundingClientRect();
        return { x, y, width, height };
      };
      return {
        graph: box(document.getElementById('graph')!),
        circles: [...document.querySelectorAll('#graph g.node circle')].map((circle) => ({ name: `circle of ${(circle.parentNode as SVGElement).dataset.node}`, ...box(circle) })),
        labels: [...document.querySelectorAll('#graph g.node text')].map((text) => ({ name: `label ${text.textContent}`, ...box(text) })),
      };
    });
    expect(layout.circles).to.have.length(10);
    expect(layout.labels.map((label) => label.name).sort()).to.deep.equal(nodes.map((node) => `label ${node.id}`).sort());
    type Box = { name: string; x: number; y: number; width: number; height: number };
    const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    const clashes: string[] = [];
    for (const [i, a] of layout.labels.entries()) {
      for (const b of [...layout.labels.slice(i + 1), ...layout.circles]) if (overlap(a, b)) clashes.push(`${a.name} / ${b.name}`);
      const g = layout.graph;
      if (a.x < g.x || a.y < g.y || a.x + a.width > g.x + g.width || a.y + a.height > g.y + g.height) clashes.push(`${a.name} outside the graph`);
    }
    expect(clashes).to.deep.equal([]);
    const screenshot = join(await testDir(), 'page-10.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`    screenshot: ${screenshot}`);
    expect(errors).to.deep.equal([]);
  });
});
