/**
 * A throw-away cluster for the tests: Debian's `nats-server` on 127.0.0.1 (a free port, JetStream
 * on, a temporary store directory) and `kernelflow-worker` processes run from source with tsx.
 * Everything is stopped by `stop()`, and killed on process exit whatever happened.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Whether `nats-server` is installed (`.ci/install-nats.sh`). */
export function haveNatsServer(): boolean {
  return spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).status === 0;
}

/**
 * Whether the `what` tests can run: nats-server is installed. Without it, CI=true fails the spec
 * (CI installs it: .ci/install-nats.sh); elsewhere a notice says what is skipped.
 */
export function natsServerFor(what: string): boolean {
  if (haveNatsServer()) return true;
  if (process.env.CI === 'true') throw new Error('nats-server is not installed (CI installs it: .ci/install-nats.sh)');
  process.stderr.write(`nats-server not found: ${what} are skipped (install it: bash .ci/install-nats.sh)\n`);
  return false;
}

/** Children's environment: no V8 coverage from the subprocesses (another loader, other source maps). */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (env.NODE_V8_COVERAGE !== undefined) env.NODE_V8_COVERAGE = '';
  delete env.KERNELFLOW_SERVERS;
  return env;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = new Socket();
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
      c.connect(port, '127.0.0.1');
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nats-server did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A worker process, with what it printed on stderr. */
export interface WorkerProc {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Resolves when its stderr matches `re`. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
}

/** A running test cluster. */
export interface TestCluster {
  readonly servers: string;
  readonly workers: WorkerProc[];
  /** Starts one more worker and resolves once it serves. */
  addWorker(name: string, args?: readonly string[]): Promise<WorkerProc>;
  stop(): Promise<void>;
}

/** Starts nats-server and `workers` workers (CPU backend, verbose). */
export async function startCluster(workers: number, workerArgs: readonly string[] = []): Promise<TestCluster> {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'kf-nats-'));
  const server = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(server);
  let serverLog = '';
  server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  try {
    await waitForPort(port, 10_000);
  } catch (e) {
    server.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${serverLog}`);
  }
  const servers = `nats://127.0.0.1:${port}`;
  const list: WorkerProc[] = [];

  const addWorker = async (name: string, args: readonly string[] = workerArgs): Promise<WorkerProc> => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', join('src', 'worker', 'main.ts'), '--servers', servers, '--backend', 'cpu', '--name', name, '--verbose', ...args],
      { cwd: root, env: childEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    let text = '';
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    proc.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      for (const w of [...waiters]) if (w.re.test(text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
    const w: WorkerProc = {
      name,
      proc,
      log: () => text,
      waitFor: (re, ms = 30_000) =>
        new Promise<void>((resolve, reject) => {
          if (re.test(text)) return resolve();
          const t = setTimeout(() => reject(new Error(`worker ${name}: no ${re} within ${ms} ms; stderr:\n${text}`)), ms);
          waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
          proc.once('exit', (code) => reject(new Error(`worker ${name} exited (${code}) before ${re}; stderr:\n${text}`)));
        }),
    };
    await w.waitFor(/serving on/);
    list.push(w);
    return w;
  };

  try {
    await Promise.all(Array.from({ length: workers }, (_, k) => addWorker(`w${k + 1}`)));
  } catch (e) {
    for (const c of live) c.kill('SIGKILL');
    throw e;
  }

  const stopProc = (c: ChildProcess, signal: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      const t = setTimeout(() => c.kill('SIGKILL'), 3000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      c.kill(signal);
    });

  return {
    servers,
    workers: list,
    addWorker,
    stop: async () => {
      await Promise.all(list.map((w) => stopProc(w.proc, 'SIGTERM')));
      await stopProc(server, 'SIGTERM');
      live.delete(server);
      rmSync(store, { recursive: true, force: true });
    },
  };
}
