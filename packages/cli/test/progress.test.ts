/** The progress line of import and export: keys done, keys a second, and the time left. */
import { expect } from 'chai';
import { formatDuration, progressBar, progressLine } from '../src/progress.js';

describe('progress line', () => {
  it('shows keys done of the total, keys a second and the time left', () => {
    expect(progressLine(25_000, 2_000, 0.25, 100_000)).to.equal('[######------------------]  25% 25,000 of 100,000 keys, 12,500 keys/s, ETA 6 s');
  });

  it('scales the time left by what remains of the file, and writes minutes and hours', () => {
    expect(progressLine(1_000, 60_000, 0.1)).to.match(/ 1,000 keys, 17 keys\/s, ETA 9 min 00 s$/);
    expect(formatDuration(3_725)).to.equal('1 h 02 min');
    expect(formatDuration(65)).to.equal('1 min 05 s');
  });

  it('has no bar nor time left when the size is unknown (stdin), and none at the start or the end', () => {
    expect(progressLine(500, 1_000)).to.equal('500 keys, 500 keys/s');
    expect(progressLine(0, 0, 0, 10)).to.equal('[------------------------]   0% 0 of 10 keys, 0 keys/s');
    expect(progressLine(10, 1_000, 1, 10)).to.not.include('ETA');
  });

  it('keeps the bar within its width whatever the fraction', () => {
    expect(progressBar(1.5)).to.equal(`[${'#'.repeat(24)}] 100%`);
    expect(progressBar(-1)).to.equal(`[${'-'.repeat(24)}]   0%`);
  });
});
