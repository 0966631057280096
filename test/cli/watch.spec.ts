/**
 * Issue 20, acceptance 2: `kernelflow run --watch` keeps the graph live. Rewriting an input file
 * sets that source; the engine recomputes once (one dispatch for the density pipeline, counted by
 * `stats().dispatches` in the child and printed) and the output is rewritten once. A malformed
 * rewrite is reported and skipped, without recomputing or stopping; SIGTERM ends it with code 0.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clouds, head } from '../../scripts/gen-sample-data.js';
import { assertClose, DATA, density, f32, parseNpy, startKernelflow } from './helpers.js';

/** Collects a child's output and waits for lines. */
class Lines {
  text = '';
  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      this.text += s;
    });
  }

  count(re: RegExp): number {
    return this.text.split('\n').filter((l) => re.test(l)).length;
  }

  /** Resolves once `n` lines match `re`; fails after `ms`. */
  async until(re: RegExp, n: number, ms: number, other: () => string): Promise<void> {
    const t0 = Date.now();
    while (this.count(re) < n) {
      if (Date.now() - t0 > ms) assert.unreachable(`no ${n} line(s) matching ${re} within ${ms} ms:\n${this.text}\nstderr:\n${other()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('--watch: rewriting the input recomputes once (1 dispatch) and rewrites the output once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kf-watch-'));
  const input = join(dir, 'scan.ply');
  const output = join(dir, 'density.npy');
  copyFileSync(join(DATA, 'scan.ply'), input);
  const child = startKernelflow(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${input}`, '--output', output, '--watch']);
  const out = new Lines(child.stdout!);
  const err = new Lines(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await out.until(/^watching 1 input file \(Ctrl-C to stop\)$/, 1, 30_000, () => err.text);
    const first = parseNpy(readFileSync(output));
    assert.equal(first.shape, [800, 1]);

    // A truncated rewrite: reported on stderr, nothing recomputed, the previous output stays.
    writeFileSync(input, readFileSync(join(DATA, 'scan.ply')).subarray(0, 5000));
    await err.until(/truncated binary PLY.*keeping the previous data of 'x'/, 1, 10_000, () => out.text);
    assert.is(out.count(/^recomputed/), 0, 'no recompute on a malformed file');

    // A good rewrite (300 points, ASCII PLY): one recompute, one dispatch, one write.
    writeFileSync(input, readFileSync(join(DATA, 'scan-ascii.ply')));
    await out.until(/^recomputed after x \(scan\.ply, 300 points\) changed: \d+ dispatches, [\d.]+ ms$/, 1, 10_000, () => err.text);
    await sleep(800); // room for a spurious second event to show up
    assert.is(out.count(/^recomputed/), 1, `one recompute:\n${out.text}`);
    assert.match(out.text, /^recomputed after x \(scan\.ply, 300 points\) changed: 1 dispatches, /m);
    assert.is(out.count(/^wrote .*density\.npy/), 2, 'written at start and once after the change');
    const second = parseNpy(readFileSync(output));
    assert.equal(second.shape, [300, 1]);
    const pts = f32(head(clouds().scan, 300).position);
    assertClose(second.data, density(pts, pts, 3, 200), 1e-5, 0, 'density after the change');
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    rmSync(dir, { recursive: true, force: true });
    assert.is(code, 0, `SIGTERM ends --watch with code 0; stderr:\n${err.text}`);
  }
});

test.run();
