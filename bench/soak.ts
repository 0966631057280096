/**
 * Soak benchmark (issue 12): 10 000 nodes are wired and then disposed while 2000 frames stream
 * through a small observed reduction (a [64, 3] frame against a fixed [256, 3] cloud, Min over j).
 * Nodes come in units of two (a source of 4 points and a Sum reduction reading it and the fixed
 * cloud), 10 nodes per frame: 1000 frames while the graph grows to 10 000 live nodes, 1000 while
 * it shrinks back. Reports the cost of wiring one node around 1k and around 10k live nodes (flat:
 * their ratio should be near 1, within 2), the frames computed, and the heap, the graph's node
 * count and stats().bytesAllocated before and after (back to the baseline). A second, identical
 * cycle gives the warm wiring cost (the first includes the JIT's warm-up) and shows that the heap
 * the first left behind (compiled code, caches) does not grow again.
 * Prints a table and writes bench/results/soak.json.
 * Usage: npx tsx bench/soak.ts [--nodes 10000] [--frames 2000] [--backend cpu|webgpu|auto]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Subject } from 'rxjs';
import { Vi, Vj, backendName, init, shutdown, source, stats, type BackendChoice, type Node, type TensorLike } from '../src/index.js';
import { graphState } from '../src/nodes/node.js';

const argOf = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const NODES = Number(argOf('nodes') ?? 10_000);
const FRAMES = Number(argOf('frames') ?? 2000);
const backend = (argOf('backend') ?? 'cpu') as BackendChoice;
const PER_FRAME = Math.max(2, Math.round((2 * NODES) / FRAMES / 2) * 2); // nodes wired (or disposed) per frame, even

// A full collection on demand, so that heap figures compare live data, not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const settledHeap = async (): Promise<number> => {
  for (let k = 0; k < 3; k++) {
    await new Promise((res) => setTimeout(res, 10));
    gc();
  }
  return process.memoryUsage().heapUsed;
};

await init({ backend });
let seed = 5;
const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
const cloud = (n: number): Float32Array => Float32Array.from({ length: n * 3 }, rand);

const frames = new Subject<TensorLike>();
const scan = source(frames, [0, 3], 'scan');
const ref = source(cloud(256), [256, 3], 'ref');
const nearest = Vi(scan).sqdist(Vj(ref)).min(1);
let computed = 0;
let waiting: (() => void) | undefined;
const sub = nearest.observe().subscribe(() => {
  computed++;
  waiting?.();
});
/** Pushes one frame and waits until the observed reduction has computed it. */
const frame = async (): Promise<void> => {
  const done = new Promise<void>((res) => (waiting = res));
  frames.next({ data: cloud(64), shape: [64, 3] });
  await done;
};

// Warm-up: kernels compiled, one unit wired and disposed, so the baseline holds what stays.
await frame();
{
  const s = source(cloud(4), [4, 3]);
  const r = Vi(s).sqdist(Vj(ref)).sum(1);
  await r.read();
  s.dispose();
}
const base = { heap: await settledHeap(), nodes: graphState().nodes.size, bytes: stats().bytesAllocated };

/**
 * One soak cycle: wires NODES nodes, a frame per PER_FRAME of them, reads every unit once, then
 * disposes them, a frame per PER_FRAME again, and streams the rest of the FRAMES. Returns the
 * wiring cost of each unit (ms per node) by the live node count before it, and the peak.
 */
async function cycle(): Promise<{ wiring: [number, number][]; peak: { heap: number; nodes: number }; unitsRead: number; sent: number }> {
  const live: Node[] = [];
  const wiring: [number, number][] = [];
  let sent = 0;
  while (live.length < NODES) {
    for (let k = 0; k < PER_FRAME / 2 && live.length < NODES; k++) {
      const before = graphState().nodes.size - base.nodes;
      const t = performance.now();
      const s = source(cloud(4), [4, 3]);
      live.push(s, Vi(s).sqdist(Vj(ref)).sum(1));
      wiring.push([before, (performance.now() - t) / 2]);
    }
    await frame();
    sent++;
  }
  const peak = { heap: process.memoryUsage().heapUsed, nodes: graphState().nodes.size };
  // Everything wired computes once (each unit's reduction is read), then the graph shrinks.
  const unitsRead = (await Promise.all(live.filter((_, k) => k % 2 === 1).map((n) => n.read()))).length;
  while (live.length > 0) {
    for (let k = 0; k < PER_FRAME && live.length > 0; k++) live.pop()!.dispose();
    await frame();
    sent++;
  }
  while (sent < FRAMES) {
    await frame();
    sent++;
  }
  return { wiring, peak, unitsRead, sent };
}

const t0 = performance.now();
const first = await cycle();
const wall = (performance.now() - t0) / 1000;
const computedInCycle = computed - 1;
const { wiring, peak, unitsRead, sent } = first;
const after = { heap: await settledHeap(), nodes: graphState().nodes.size, bytes: stats().bytesAllocated };
// A second cycle: what the first left on the heap (compiled code, caches) is not a leak if the
// second leaves nothing more.
const second = await cycle();
const again = { heap: await settledHeap(), nodes: graphState().nodes.size, bytes: stats().bytesAllocated };

/** Mean wiring cost (µs per node) of the units wired with between lo and hi live nodes. */
const costAt = (w: [number, number][], lo: number, hi: number): number => {
  const xs = w.filter(([n]) => n >= lo && n < hi).map(([, ms]) => ms);
  return (xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)) * 1000;
};
// The first cycle includes the JIT's warm-up (its 1k figure is the higher); the second is warm.
const at1k = costAt(wiring, 500, 1500);
const at10k = costAt(wiring, NODES - 1000, NODES);
const warm1k = costAt(second.wiring, 500, 1500);
const warm10k = costAt(second.wiring, NODES - 1000, NODES);
const round = (v: number, d = 1): number => Math.round(v * 10 ** d) / 10 ** d;
const mb = (b: number): number => round(b / 2 ** 20, 2);
const row = {
  backend: backendName(),
  'nodes wired and disposed': NODES,
  'frames sent': sent,
  'frames computed': computedInCycle,
  'µs per node at ~1k live': round(at1k, 1),
  'µs per node at ~10k live': round(at10k, 1),
  '10k / 1k': round(at10k / at1k, 2),
  'warm µs per node at ~1k / ~10k live': `${round(warm1k, 1)} / ${round(warm10k, 1)}`,
  'warm 10k / 1k': round(warm10k / warm1k, 2),
  'graph nodes before / peak / after': `${base.nodes} / ${peak.nodes} / ${after.nodes}`,
  'bytesAllocated before / after': `${base.bytes} / ${after.bytes}`,
  'heap MB before / peak / after': `${mb(base.heap)} / ${mb(peak.heap)} / ${mb(after.heap)}`,
  'heap MB after - before': mb(after.heap - base.heap),
  'heap MB after a 2nd cycle - after the 1st': mb(again.heap - after.heap),
  'units read at peak': unitsRead,
  'wall s': round(wall, 2),
};
console.table([row]);
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, backend: backendName() };
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/soak.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, frames: FRAMES, nodesPerFrame: PER_FRAME, rows: [row] }, null, 2));
console.log('wrote bench/results/soak.json');
sub.unsubscribe();
scan.dispose();
ref.dispose();
await shutdown();
const ok = at10k / at1k <= 2 && warm10k / warm1k <= 2 && after.nodes === base.nodes && after.bytes === base.bytes && again.nodes === base.nodes && again.bytes === base.bytes;
process.exit(ok ? 0 : 1);
