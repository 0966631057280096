/**
 * Fills the result tables of docs/benchmarks.md from the JSON files the benchmarks write in
 * bench/results/. Each table sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers
 * and is replaced by: the file it comes from, its date and machine, and its rows as a Markdown
 * table (columns as the benchmark wrote them). A missing file leaves a marked placeholder. The
 * prose around the markers is kept as it is. Numbers are copied, never computed or rounded here.
 *
 * Usage: npx tsx scripts/gen-benchmarks.ts            # rewrites docs/benchmarks.md in place
 *        npx tsx scripts/gen-benchmarks.ts --check    # exits 1 when a table is out of date
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const doc = new URL('../docs/benchmarks.md', import.meta.url);
const results = new URL('../bench/results/', import.meta.url);

/** How to produce each results file (shown in the placeholder). */
const COMMANDS: Readonly<Record<string, string>> = {
  'gaussian-sum': 'npm run bench',
  'gpu-backend': 'npx tsx bench/gpu-backend.ts',
  knn: 'npx tsx bench/knn.ts',
  'knn-large-k': 'npx tsx bench/knn.ts --sizes 10000 --K 32,64 --reps 2 --base <checkout before the heap> --out knn-large-k',
  soak: 'npx tsx bench/soak.ts',
  batch: 'npx tsx bench/batch.ts',
  solve: 'npx tsx bench/solve.ts',
  'solve-webgpu': 'npx tsx bench/solve.ts --sizes 20000,100000 --backends webgpu --compare none --out solve-webgpu',
  'solve-resident': 'npx tsx bench/solve.ts --sizes 5000,20000 --backends webgpu --compare none --out solve-resident',
  'solve-resident-1e5': 'npx tsx bench/solve.ts --sizes 100000 --backends webgpu --compare none --resident-sizes none --no-dense --out solve-resident-1e5',
  'streaming-cpu': 'npm run bench:streaming',
  'streaming-webgpu': 'npm run bench:streaming -- --backend webgpu',
  'block-sparse': 'npx tsx bench/block-sparse.ts',
  'block-sparse-cpu': 'npx tsx bench/block-sparse.ts --backends cpu --reps 2 --out block-sparse-cpu',
  'gpu-profiles-small': 'npx tsx bench/gpu-profiles.ts --sizes small',
  'gpu-profiles-ab': 'npx tsx bench/gpu-profiles-ab.ts --base <checkout of the base>',
  'gpu-profiles-gpu': 'bench/gpu/prepare.sh, then bench/gpu/run.sh on a GPU machine (bench/gpu/README.md)',
  'torch-peer-gpu': 'bench/gpu/run.sh on a GPU machine (bench/gpu/README.md)',
};

type Row = Record<string, unknown>;
interface ResultFile {
  readonly date?: string;
  readonly machine?: Record<string, unknown>;
  readonly rows?: readonly Row[];
  readonly [extra: string]: unknown;
}

const cell = (v: unknown): string => (v === undefined ? '' : String(typeof v === 'object' ? JSON.stringify(v) : v).replace(/\|/g, '\\|'));

/** A Markdown table of objects, columns in order of first appearance. */
function table(rows: readonly Row[]): string[] {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return [`| ${cols.map(cell).join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`)];
}

/** The generated block for one results file. */
export function block(name: string): string[] {
  const file = new URL(`${name}.json`, results);
  if (!existsSync(file)) {
    return [
      `> **Placeholder — no results yet.** \`bench/results/${name}.json\` does not exist. Run`,
      `> \`${COMMANDS[name] ?? `npx tsx bench/${name}.ts`}\`, then \`npx tsx scripts/gen-benchmarks.ts\`.`,
    ];
  }
  const r = JSON.parse(readFileSync(file, 'utf8')) as ResultFile;
  const machine = Object.entries(r.machine ?? {})
    .map(([k, v]) => `${k}: ${cell(v)}`)
    .join(', ');
  const settings = Object.entries(r).filter(([k, v]) => !['date', 'machine', 'rows'].includes(k) && (typeof v !== 'object' || v === null));
  // Other tables of the file: an object is a one-row table, an array of objects a table.
  const extra = Object.entries(r).filter(([k, v]) => !['machine', 'rows'].includes(k) && typeof v === 'object' && v !== null);
  const out = [`From \`bench/results/${name}.json\`, recorded ${r.date ?? '(no date in the file)'}; machine: ${machine || '(not recorded)'}.`];
  if (settings.length > 0) out.push(`Settings: ${settings.map(([k, v]) => `${k} = ${cell(v)}`).join(', ')}.`);
  if (r.rows !== undefined) out.push('', ...table(r.rows));
  for (const [k, v] of extra) {
    const rows = (Array.isArray(v) ? v : [v]) as Row[];
    if (rows.length > 0) out.push('', `\`${k}\`:`, '', ...table(rows));
  }
  return out;
}

/** docs/benchmarks.md with every marked block regenerated. */
export function render(text: string): string {
  return text.replace(/(<!-- bench:([\w-]+) -->)[\s\S]*?(<!-- \/bench:\2 -->)/g, (_m, open: string, name: string, close: string) => `${open}\n${block(name).join('\n')}\n${close}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const old = readFileSync(doc, 'utf8');
  const text = render(old);
  if (process.argv.includes('--check')) {
    if (text !== old) {
      console.error('docs/benchmarks.md does not match bench/results/: run npx tsx scripts/gen-benchmarks.ts');
      process.exit(1);
    }
    console.log('docs/benchmarks.md matches bench/results/');
  } else {
    writeFileSync(doc, text);
    console.log('wrote docs/benchmarks.md');
  }
}
