// gust's web UI benchmark (issue 7): `gust api` over a SQLite store seeded by seed_api (1,000
// DAGs; bench_big with 100 runs x 100 tasks), measured in real headless Chromium:
//   dags  time to first render of the DAG list (#/dags: the first 100 DAGs painted), and to
//         its complete render (run statistics of those 100 filled in)
//   grid  time to first render of bench_big's grid with 100 runs (#/dags/bench_big/grid?runs=100:
//         10,000 cells painted)
// Each is the page's own performance mark (set once the frame with the data is painted),
// read from performance.getEntriesByName; times count from the navigation's start, so they
// include loading the UI's files and every API call. Each page is loaded BENCH_UI_RUNS times
// (default 7) in a fresh browser context (a cold cache); the median and the worst are printed.
// Also: the bytes the UI ships (every file of ui/ but embed.sh, uncompressed) and the bytes each
// page loaded (its scripts, CSS, HTML). Goal (issue 7): <= 200 ms for each first render.
// Screenshots of both pages go to tests/ui/artifacts/bench-dags.png and bench-grid.png.
//
//   make bin/gust bin/bench/seed_api && (cd tests/ui && npm ci) && node tests/bench/bench_ui.mjs
//
// Prints "ui <page> <metric> <value> <unit>" lines on stdout; asserts nothing.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const require = createRequire(path.join(ROOT, 'tests/ui/package.json'));
const { chromium } = require('playwright-core');

const GUST = process.env.GUST_BIN ? path.resolve(process.env.GUST_BIN) : path.join(ROOT, 'bin/gust');
const SEED = path.join(ROOT, 'bin/bench/seed_api');
const RUNS = Number(process.env.BENCH_UI_RUNS || 7);
const CHROMIUM = process.env.GUST_CHROMIUM || '/usr/bin/chromium';
const say = (m) => process.stderr.write(`ui-bench: ${m}\n`);
const die = (m) => { say(m); process.exit(1); };

for (const [f, how] of [[GUST, 'make bin/gust'], [SEED, 'make bin/bench/seed_api'], [CHROMIUM, 'make deps (Debian chromium)']]) {
  if (!fs.existsSync(f)) die(`${f} is missing: ${how}`);
}

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-bench-ui-'));
const url = `sqlite://${tmp}/bench.db`;
const env = { ...process.env, GUST_HOME: tmp };
let api = null, browser = null;
const cleanup = () => { if (api) api.kill('SIGKILL'); fs.rmSync(tmp, { recursive: true, force: true }); };
process.on('exit', cleanup);

try {
  say('seeding (1,000 DAGs, bench_big: 100 runs x 100 tasks)');
  let r = spawnSync(SEED, [url], { env, encoding: 'utf8' });
  if (r.status !== 0) die(`seed_api failed: ${r.stderr}`);
  r = spawnSync(GUST, [`--database.url=${url}`, 'users', 'create', '--username', 'bench', '--password', 'bench-pass-1', '--role', 'Admin'], { env, encoding: 'utf8' });
  if (r.status !== 0) die(`gust users create failed: ${r.stderr}${r.stdout}`);
  const port = await freePort();
  fs.mkdirSync(path.join(tmp, 'dags'));
  const log = fs.openSync(path.join(tmp, 'api.log'), 'a');
  api = spawn(GUST, [`--database.url=${url}`, `--api.port=${port}`, `--core.dags_folder=${tmp}/dags`, 'api'], { env, stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(base + '/health').then((x) => x.ok).catch(() => false);
    if (ok) break;
    if (i > 200) die(`gust api does not answer: ${fs.readFileSync(path.join(tmp, 'api.log'), 'utf8').slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const tok = await (await fetch(base + '/auth/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'bench', password: 'bench-pass-1' }),
  })).json();
  if (!tok.access_token) die(`no token: ${JSON.stringify(tok)}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'] });

  // One cold page load of hash; waits for the marks; returns their times and what it loaded.
  async function load(hash, marks, check, shotName) {
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await ctx.addInitScript((t) => localStorage.setItem('gust.token', t), tok.access_token);
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base + '/' + hash);
    const times = {};
    for (const m of marks) {
      await page.waitForFunction((n) => performance.getEntriesByName(n).length > 0 || document.querySelector('main .error'), m, { timeout: 60000 });
      const shown = await page.$('main .error');
      if (shown) die(`${hash} shows an error: ${await shown.textContent()}`);
      times[m] = await page.evaluate((n) => performance.getEntriesByName(n)[0].startTime, m);
    }
    const detail = check ? await page.evaluate(check) : null;
    if (shotName) {
      fs.mkdirSync(path.join(ROOT, 'tests/ui/artifacts'), { recursive: true });
      await page.screenshot({ path: path.join(ROOT, 'tests/ui/artifacts', shotName + '.png') });
    }
    const bytes = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      let ui = nav.decodedBodySize, api = 0, calls = 0;
      for (const e of performance.getEntriesByType('resource')) {
        if (e.name.includes('/api/v2/')) { api += e.decodedBodySize; calls++; } else ui += e.decodedBodySize;
      }
      return { ui, api, calls };
    });
    if (errors.length) die(`page errors on ${hash}: ${errors.join('; ')}`);
    await ctx.close();
    return { times, detail, bytes };
  }

  const pages = [
    ['dags', '#/dags', ['gust:dags:rendered', 'gust:dags:complete'], () => document.querySelectorAll('table.dags tbody tr').length],
    ['grid', '#/dags/bench_big/grid?runs=100', ['gust:dag:data', 'gust:grid:rendered'], () => document.querySelectorAll('table.grid td[class^="st-"]').length],
  ];
  for (const [name, hash, marks, check] of pages) {
    await load(hash, marks, check, `bench-${name}`); // warms the server's caches, not the browser's
    const results = [];
    for (let i = 0; i < RUNS; i++) results.push(await load(hash, marks, check));
    const shown = results[0].detail;
    say(`${name}: ${shown} ${name === 'dags' ? 'rows' : 'coloured cells'} shown`);
    for (const m of marks) {
      const xs = results.map((x) => x.times[m]);
      const what = { rendered: 'first_render', complete: 'complete_render', data: 'data_loaded' }[m.split(':')[2]];
      console.log(`ui ${name} ${what}_p50 ${median(xs).toFixed(0)} ms`);
      console.log(`ui ${name} ${what}_max ${Math.max(...xs).toFixed(0)} ms`);
    }
    const b = results[0].bytes;
    console.log(`ui ${name} ui_bytes_loaded ${b.ui} bytes`);
    console.log(`ui ${name} api_calls ${b.calls} requests`);
    console.log(`ui ${name} api_bytes ${b.api} bytes`);
  }
  let total = 0;
  for (const f of fs.readdirSync(path.join(ROOT, 'ui'))) {
    if (/\.(html|js|css|svg)$/.test(f)) total += fs.statSync(path.join(ROOT, 'ui', f)).size;
  }
  console.log(`ui all shipped_bytes ${total} bytes`);
} finally {
  if (browser) await browser.close();
  if (api) { api.kill('SIGTERM'); api = null; }
}
