// The harness of gust's web UI tests (node:test; run by tests/cli/ui.sh). It starts the real
// binary ($GUST_BIN, default bin/gust) as `gust standalone` on a fresh GUST_HOME and drives
// real headless Chromium (Debian's /usr/bin/chromium) with playwright-core. No mocks: the UI
// talks to the real API, whose tasks really run.
//
//   const g = await startGust({dags: {"file.yml": text}, examples: true})
//       examples: copy the repository's dags/*.yml into the DAG folder first.
//     → {url, home, dagsDir, adminPassword, api(method, path, body, {as}), cli(args),
//        createUser(name, password, role), logTail(), stop()}  (stop throws on sanitizer reports)
//   const b = await launchBrowser() → a playwright Browser (the flags the issue names)
//   const page = await newPage(b, {colorScheme}) — collects page errors and CSP violations
//        in page.problems (tests assert it stays empty)
//   await login(page, g, username, password)
//   await visit(page, g, '#/dags', 'table.dags') — go there, wait for a freshly drawn element
//   await shot(page, name) — tests/ui/artifacts/NAME.png
//   await waitFor(fn, ms) — polls fn until truthy
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const ARTIFACTS = path.join(HERE, 'artifacts');
export const CHROMIUM = process.env.GUST_CHROMIUM || '/usr/bin/chromium';
const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

export function gustBin() {
  const b = process.env.GUST_BIN || 'bin/gust';
  return path.isAbsolute(b) ? b : path.resolve(fs.existsSync(path.resolve(b)) ? process.cwd() : REPO, b);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(fn, ms = 15000, every = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`waitFor timed out after ${ms} ms; last value: ${last instanceof Error ? last.stack : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const running = new Set();
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch { /* gone */ } });

export async function startGust({ dags = {}, examples = false, config = {} } = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-ui-'));
  const dagsDir = path.join(home, 'dags');
  fs.mkdirSync(dagsDir);
  if (examples) {
    for (const f of fs.readdirSync(path.join(REPO, 'dags'))) {
      if (/\.(ya?ml|json)$/.test(f)) fs.copyFileSync(path.join(REPO, 'dags', f), path.join(dagsDir, f));
    }
  }
  for (const [name, text] of Object.entries(dags)) fs.writeFileSync(path.join(dagsDir, name), text);
  const port = await freePort();
  const bin = gustBin();
  const env = { ...process.env, GUST_HOME: home };
  for (const k of Object.keys(env)) if (k.startsWith('GUST__')) delete env[k];
  const flags = [`--api.port=${port}`, `--core.dags_folder=${dagsDir}`, '--core.dags_are_paused_at_creation=false',
    ...Object.entries(config).map(([k, v]) => `--${k}=${v}`)];
  const logFile = path.join(home, 'standalone.log');
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(bin, [...flags, 'standalone'], { env, stdio: ['ignore', out, out] });
  running.add(proc);
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; running.delete(proc); });
  const url = `http://127.0.0.1:${port}`;
  const logTail = (n = 60) => { try { return fs.readFileSync(logFile, 'utf8').split('\n').slice(-n).join('\n'); } catch { return ''; } };
  await waitFor(async () => {
    if (exited) throw new Error(`gust standalone exited (${JSON.stringify(exited)}):\n${logTail()}`);
    const r = await fetch(url + '/health').catch(() => null);
    return r && r.ok;
  }, 60000, 100);
  const pwFile = path.join(home, 'standalone_admin_password.txt');
  const adminPassword = await waitFor(() => fs.existsSync(pwFile) && fs.readFileSync(pwFile, 'utf8').trim(), 10000);

  const cli = (args, input) => {
    const r = spawnSync(bin, [`--core.dags_folder=${dagsDir}`, ...args], { env, input, encoding: 'utf8', timeout: 60000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const tokens = new Map();
  const passwords = new Map([['admin', adminPassword]]);
  const g = {
    url, home, dagsDir, adminPassword, logTail, proc,
    createUser(name, password, role) {
      const r = cli(['users', 'create', '--username', name, '--password', password, '--role', role]);
      assert.equal(r.code, 0, `gust users create ${name} failed: ${r.stderr}${r.stdout}`);
      passwords.set(name, password);
    },
    async token(user = 'admin') {
      if (tokens.has(user)) return tokens.get(user);
      const r = await fetch(url + '/auth/token', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: user, password: passwords.get(user) }),
      });
      const j = await r.json();
      assert.ok(j.access_token, `no token for ${user}: ${JSON.stringify(j)}`);
      tokens.set(user, j.access_token);
      return j.access_token;
    },
    // The REST API directly (to check what the UI did, or to set a scene).
    async api(method, p, body, { as = 'admin' } = {}) {
      const headers = { Authorization: 'Bearer ' + (await g.token(as)) };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const r = await fetch(url + '/api/v2' + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      if (!r.ok) throw new Error(`${method} ${p}: HTTP ${r.status}: ${text}`);
      return json;
    },
    cli,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
        await waitFor(() => exited, 20000, 50);
        clearTimeout(t);
      }
      const log = fs.readFileSync(logFile, 'utf8');
      const m = SANITIZER.exec(log);
      if (m) throw new Error(`sanitizer report in ${logFile}:\n${log.slice(Math.max(0, m.index - 200), m.index + 3000)}`);
      if (!process.env.GUST_UI_KEEP) fs.rmSync(home, { recursive: true, force: true });
    },
  };
  return g;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

export async function launchBrowser() {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (make deps)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export async function newPage(browser, { colorScheme = 'light', width = 1400, height = 900 } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, colorScheme, timezoneId: 'Europe/Paris', locale: 'en-GB' });
  const page = await ctx.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.stack || e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) page.problems.push(`CSP: ${t}`);
    else if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of (4\d\d)/.test(t)) page.problems.push(`console error: ${t}`);
  });
  page.setDefaultTimeout(20000);
  return page;
}

export async function login(page, g, username, password) {
  await page.goto(g.url + '/#/login');
  await page.fill('#login-user', username);
  await page.fill('#login-pass', password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#top:not([hidden])');
}

// Go to a URL of the UI (g.url + '/' + hash) and wait for `ready` among the elements drawn
// after the navigation: what the previous page left on screen does not count.
export async function visit(page, g, hash, ready) {
  await page.evaluate(() => { for (const el of document.querySelectorAll('#main *')) el.dataset.stale = '1'; }).catch(() => {});
  const target = g.url + '/' + hash;
  if (page.url() === target) await page.reload(); // the same URL would not draw the page again
  else await page.goto(target);
  return page.waitForSelector(ready.split(',').map((s) => `${s.trim()}:not([data-stale])`).join(', '));
}

export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const toast = (hide) => page.evaluate((x) => { const n = document.getElementById('notice'); if (n) n.hidden = x; }, hide);
  await toast(true); // no passing notice in the picture
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png') });
  await toast(false);
}

// WCAG relative luminance and contrast ratio of two CSS colours "rgb(r, g, b)".
export function contrast(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/[\d.]+/g).slice(0, 3).map((x) => {
      const v = Number(x) / 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
