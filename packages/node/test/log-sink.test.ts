/** bby-node's log lines: text for people, JSON for log shippers, and the warn level. */
import { expect } from 'chai';
import { createLogSink } from '../src/log-sink.js';

function capture(options: Parameters<typeof createLogSink>[0] = {}) {
  const lines: { stream: string; line: string }[] = [];
  const sink = createLogSink({ now: () => Date.UTC(2026, 11, 7, 12, 0, 0, 5), write: (stream, line) => lines.push({ stream, line }), ...options });
  return { sink, lines };
}

describe('log sink', () => {
  it('writes text lines by default: time, level, message; warnings on stderr', () => {
    const { sink, lines } = capture();
    sink('info', 'connected to peer node2', { event: 'peer-connected', fields: { peer: 'node2' } });
    sink('warn', 'cannot reach peer 127.0.0.1:7003');
    expect(lines).to.deep.equal([
      { stream: 'stdout', line: '12:00:00.005 info connected to peer node2\n' },
      { stream: 'stderr', line: '12:00:00.005 warn cannot reach peer 127.0.0.1:7003\n' },
    ]);
  });

  it('writes one JSON object a line with time, level, node, event, message and fields', () => {
    let id: string | null = null;
    const { sink, lines } = capture({ format: 'json', nodeId: () => id });
    sink('info', 'listening', { event: 'listening' });
    id = 'node1';
    sink('info', 'conflict on key "k\\nfake line"', { event: 'conflict', fields: { key: 'k\nfake line', timestamp: 5 } });
    sink('warn', 'a line\nwith a newline');
    expect(lines.map((l) => l.stream)).to.deep.equal(['stdout', 'stdout', 'stderr']);
    for (const { line } of lines) expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), line).to.equal(true);
    const records = lines.map(({ line }) => JSON.parse(line) as Record<string, unknown>);
    expect(records[0]).to.deep.equal({ time: '2026-12-07T12:00:00.005Z', level: 'info', node: null, event: 'listening', message: 'listening', fields: {} });
    expect(records[1]).to.deep.include({ node: 'node1', event: 'conflict', fields: { key: 'k\nfake line', timestamp: 5 } });
    expect(records[2]).to.deep.include({ level: 'warn', event: 'log', message: 'a line\nwith a newline' });
  });

  it('keeps a text line one line whatever the message holds', () => {
    const { sink, lines } = capture();
    sink('warn', 'first\nsecond\u001b[31m');
    expect(lines).to.have.length(1);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters.
    expect(lines[0]!.line.slice(0, -1)).to.not.match(/[\n\u001b]/);
  });

  it('at level warn leaves out info lines, in both formats', () => {
    for (const format of ['text', 'json'] as const) {
      const { sink, lines } = capture({ level: 'warn', format });
      sink('info', 'connected');
      sink('warn', 'refused a connection');
      expect(lines.map((l) => l.stream), format).to.deep.equal(['stderr']);
    }
  });
});
