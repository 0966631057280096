#!/usr/bin/env node
/**
 * `kernelflow-worker --servers nats://HOST:PORT [--backend auto|cpu|webgpu] [--name NAME]
 *  [--cache-mb MB] [--heartbeat-ms MS] [--verbose]`: serves shards of kernelflow reductions on this
 * machine's backend until SIGINT or SIGTERM. See docs/scaling-out.md.
 */
import { startWorker } from './serve.js';

const USAGE = 'usage: kernelflow-worker --servers nats://HOST:PORT [--backend auto|cpu|webgpu] [--name NAME] [--cache-mb MB] [--heartbeat-ms MS] [--verbose]';

function parseArgs(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (a === '--verbose') {
      out.set('verbose', 'true');
      continue;
    }
    const m = /^--(servers|backend|name|cache-mb|heartbeat-ms)(?:=(.*))?$/.exec(a);
    if (m === null) fail(`unknown argument '${a}'`);
    const value = m[2] ?? argv[++k];
    if (value === undefined) fail(`--${m[1]} needs a value`);
    out.set(m[1]!, value);
  }
  return out;
}

function fail(message: string): never {
  process.stderr.write(`kernelflow-worker: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function positive(args: Map<string, string>, key: string): number | undefined {
  const s = args.get(key);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) fail(`--${key} must be a positive number, got '${s}'`);
  return n;
}

const args = parseArgs(process.argv.slice(2));
const servers = args.get('servers') ?? process.env.KERNELFLOW_SERVERS;
if (servers === undefined) fail('--servers is required');
const backend = args.get('backend') ?? 'auto';
if (backend !== 'auto' && backend !== 'cpu' && backend !== 'webgpu') fail(`--backend must be auto, cpu or webgpu, got '${backend}'`);
const cacheMb = positive(args, 'cache-mb');

try {
  const worker = await startWorker({
    servers,
    backend,
    ...(args.has('name') ? { name: args.get('name')! } : {}),
    ...(cacheMb === undefined ? {} : { cacheBytes: cacheMb * 1024 * 1024 }),
    ...(args.has('heartbeat-ms') ? { heartbeatMs: positive(args, 'heartbeat-ms')! } : {}),
    verbose: args.has('verbose'),
  });
  process.stderr.write(`kernelflow-worker ${worker.name}: serving on ${servers} with the ${worker.backend} backend (id ${worker.id})\n`);
  const stop = (): void => {
    void worker.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (e) {
  process.stderr.write(`kernelflow-worker: ${(e as Error).message}\n`);
  process.exit(1);
}
