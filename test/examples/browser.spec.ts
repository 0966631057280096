/**
 * The browser demo (examples/browser/) in headless Chromium: bundles it with esbuild, serves it on
 * 127.0.0.1, opens it with Debian's Chromium through playwright-core (no browser download), waits for
 * a few computed-and-drawn frames and checks the page's own brute-force verification and the canvas.
 * Headless Chromium has no GPU here, so the page takes the CPU backend (which it says).
 * Without /usr/bin/chromium the test is skipped with a notice, except with CI=true where it fails
 * (CI installs it: .ci/install-chromium.sh).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildDemo } from '../../examples/browser/build.mjs';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'browser');
const FRAMES = 5;
const WAIT_MS = 30_000;

interface KfStatus {
  frames: number;
  backend: string | null;
  lastError: string | null;
  latencyMs: number | null;
  checked: number;
  mismatches: number;
  sizes: { m: number; n: number; grid: [number, number] } | null;
  kernels: { profile: string; rowsPerThread: number; workgroupSize: number; tileRows: number }[];
  cpu: { kernels: string; reason: string; wasmCompiled: number; jsFallbacks: number } | null;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.css': 'text/css',
};

/** A static file server for `root` on 127.0.0.1 and an ephemeral port. */
async function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/` };
}

/** Reads the canvas in the page: pixels that differ from the background, and distinct colours. */
const CANVAS_STATS = `(() => {
  const c = document.querySelector('canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const bg = [11, 13, 23];
  let lit = 0, cyan = 0;
  const colours = new Set();
  for (let k = 0; k < d.length; k += 4) {
    const [r, g, b] = [d[k], d[k + 1], d[k + 2]];
    if (Math.abs(r - bg[0]) + Math.abs(g - bg[1]) + Math.abs(b - bg[2]) > 24) lit++;
    if (r < 120 && g > 180 && b > 200) cyan++;
    if (colours.size < 5000) colours.add((r << 16) | (g << 8) | b);
  }
  return { total: d.length / 4, lit, cyan, colours: colours.size, width: c.width, height: c.height };
})()`;

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') {
    test('browser demo: Chromium is installed', () => {
      assert.unreachable(`${CHROMIUM} is missing: CI must install it (.ci/install-chromium.sh)`);
    });
  } else {
    console.log(`\n  notice: ${CHROMIUM} not found, the browser demo test is skipped (install it: .ci/install-chromium.sh)`);
  }
} else {
  const browsers: Browser[] = [];
  let server: Server | undefined;
  let url = '';
  let bundleMs = 0;

  test.before(async () => {
    const built = await buildDemo();
    assert.equal(built.warnings.length, 0, `esbuild warnings: ${JSON.stringify(built.warnings)}`);
    bundleMs = built.ms;
    const served = await serve(ROOT);
    server = served.server;
    url = served.url;
  });

  test.after(async () => {
    await Promise.all(browsers.map((b) => b.close().catch(() => undefined)));
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((r) => server!.close(() => r()));
    }
  });

  /** Opens the page in a fresh Chromium, waits for FRAMES frames (or an error), screenshots it and reads the canvas. */
  async function runPage(name: string, query: string, extraArgs: string[]) {
    const t0 = performance.now();
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
    });
    browsers.push(browser);
    const page: Page = await browser.newPage({ viewport: { width: 800, height: 840 } });
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    await page.goto(url + query);
    const loaded = performance.now();
    let kf: KfStatus | undefined;
    try {
      await page.waitForFunction(
        (n) => {
          const s = (globalThis as unknown as { __kf?: KfStatus }).__kf;
          return s !== undefined && (s.frames >= n || s.lastError !== null);
        },
        FRAMES,
        { timeout: WAIT_MS, polling: 100 },
      );
    } finally {
      kf = await page.evaluate(() => (globalThis as unknown as { __kf?: KfStatus }).__kf);
    }
    const framesMs = performance.now() - loaded;
    const shot = join(tmpdir(), `kernelflow-browser-demo-${name}-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    const statusText = (await page.textContent('#status')) ?? '';
    const px = (await page.evaluate(CANVAS_STATS)) as { total: number; lit: number; cyan: number; colours: number };
    await browser.close();
    assert.ok(kf !== undefined, 'window.__kf is not set');
    console.log(
      `\n  browser demo (${name}): ${kf.backend} backend, M=${kf.sizes?.m} N=${kf.sizes?.n} grid=${kf.sizes?.grid.join('x')}, ` +
        `last latency ${kf.latencyMs?.toFixed(1)} ms; bundle ${bundleMs.toFixed(0)} ms, launch+load ${(loaded - t0).toFixed(0)} ms, ` +
        `${FRAMES} frames in ${framesMs.toFixed(0)} ms; ${px.lit}/${px.total} lit pixels; screenshot ${shot}`,
    );
    return { kf, px, statusText, consoleLines };
  }

  /** What every run must show: frames computed without error, verified in the page, and drawn. */
  function assertComputedAndDrawn(r: Awaited<ReturnType<typeof runPage>>): void {
    const { kf, px, statusText, consoleLines } = r;
    assert.is(kf.lastError, null, `page error: ${kf.lastError}\n${consoleLines.join('\n')}`);
    assert.ok(kf.frames >= FRAMES, `only ${kf.frames} frames`);
    assert.ok(kf.checked > 0, 'the page checked no rows');
    assert.is(kf.mismatches, 0, `${kf.mismatches} of ${kf.checked} checked rows disagree with the brute force`);
    assert.match(statusText, /backend\s+(CPU|WebGPU)/);
    assert.match(statusText, /frames\s+\d+/);
    // The density image, the links and both clouds: a good share of the canvas is lit, with many colours.
    assert.ok(px.lit > px.total * 0.05, `canvas mostly blank: ${px.lit} of ${px.total} pixels differ from the background`);
    assert.ok(px.cyan > 500, `moving cloud not drawn: ${px.cyan} cyan pixels`);
    assert.ok(px.colours > 100, `only ${px.colours} colours on the canvas`);
  }

  test('browser demo: bundles, computes nearest neighbours and a density, and draws them (no GPU: CPU backend)', async () => {
    const r = await runPage('cpu', '', []);
    // Headless Chromium with --disable-gpu has no WebGPU adapter: 'auto' takes the CPU backend and says so.
    assert.is(r.kf.backend, 'cpu');
    assert.match(r.statusText, /no WebGPU adapter/);
    assertComputedAndDrawn(r);
    // Chromium has WebAssembly SIMD: the CPU backend ran every kernel as WASM (none fell back to JavaScript).
    assert.is(r.kf.cpu?.kernels, 'wasm', `CPU kernels: ${JSON.stringify(r.kf.cpu)}`);
    assert.ok(r.kf.cpu!.wasmCompiled >= 2 && r.kf.cpu!.jsFallbacks === 0, `CPU kernels: ${JSON.stringify(r.kf.cpu)}`);
    assert.match(r.statusText, /WebAssembly SIMD kernels/);
  });

  const SWIFTSHADER = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--use-angle=swiftshader'];

  test('browser demo: takes WebGPU where the browser has an adapter (SwiftShader), with the CPU-driver kernel profile', async () => {
    // Chromium's bundled SwiftShader (a CPU Vulkan) as WebGPU adapter: the same page on the WebGPU backend.
    const r = await runPage('webgpu', '', SWIFTSHADER);
    assert.is(r.kf.backend, 'webgpu', `no WebGPU adapter in Chromium with SwiftShader: ${r.consoleLines.join('\n')}`);
    assert.match(r.statusText, /backend\s+WebGPU/);
    assertComputedAndDrawn(r);
    // A software adapter: 'auto' takes the CPU-driver profile (no workgroup memory) for both kernels.
    assert.ok(r.kf.kernels.length >= 2, JSON.stringify(r.kf.kernels));
    assert.ok(r.kf.kernels.every((k) => k.profile === 'cpu' && k.tileRows === 0 && k.workgroupSize === 16), JSON.stringify(r.kf.kernels));
  });

  test('browser demo: the GPU kernel profile forced on SwiftShader (?profile=gpu) computes the same, verified in the page', async () => {
    const r = await runPage('webgpu-gpu-profile', '?profile=gpu', SWIFTSHADER);
    assert.is(r.kf.backend, 'webgpu', `no WebGPU adapter in Chromium with SwiftShader: ${r.consoleLines.join('\n')}`);
    assertComputedAndDrawn(r);
    // Both kernels (the neighbours and the density) ran with the GPU profile: workgroups of 128, j tiles in workgroup memory.
    assert.ok(r.kf.kernels.length >= 2, JSON.stringify(r.kf.kernels));
    assert.ok(r.kf.kernels.every((k) => k.profile === 'gpu' && k.tileRows > 0 && k.workgroupSize === 128), JSON.stringify(r.kf.kernels));
    assert.match(r.statusText, /shapes gpu 1x128 tile/);
  });
}

test.run();
