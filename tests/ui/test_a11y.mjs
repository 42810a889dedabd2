// Accessibility basics of the web UI, in real headless Chromium against `gust standalone`:
// every control of each page is reached with the Tab key and shows a visible focus; every
// input, select and textarea has a label and every button and link a name; the grid is
// driven with the arrow keys, Enter opens a cell, Escape gives the focus back; the state
// colours (and the text colours) have a contrast ratio of at least 4.5:1 computed from the
// CSS the browser applies, in the light and the dark theme (which follows the system).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { contrast, launchBrowser, login, newPage, shot, startGust, visit, waitFor } from './lib.mjs';

const QUICK = `ui_keys:
  schedule: null
  tasks:
    - task_id: first
      operator: bash
      bash_command: "echo one"
    - task_id: second
      operator: bash
      dependencies: [first]
      bash_command: "echo two"
    - task_id: third
      operator: bash
      dependencies: [second]
      bash_command: "echo three"
`;
const STATES = ['success', 'running', 'failed', 'upstream_failed', 'skipped', 'up_for_retry', 'up_for_reschedule',
  'queued', 'scheduled', 'deferred', 'restarting', 'removed', 'none'];

// Tab from the top of the page until every visible control has had the focus (or give up
// after enough presses); returns the controls never reached and those whose focus is not visible.
async function tabThrough(page) {
  const total = await page.evaluate(() => {
    const sel = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const closed = el.closest('details:not([open])');
      return (r.width > 0 || r.height > 0) && getComputedStyle(el).visibility !== 'hidden' && !el.closest('[hidden], .sr-only') &&
        (!closed || el.parentElement === closed && el.tagName === 'SUMMARY');
    };
    const els = [...document.querySelectorAll(sel)].filter(visible);
    els.forEach((el, i) => { el.dataset.a11y = String(i); });
    return els.length;
  });
  await page.evaluate(() => { document.activeElement?.blur?.(); });
  const seen = new Set(), invisibleFocus = [];
  for (let i = 0; i < total * 2 + 20 && seen.size < total; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body || el.dataset.a11y === undefined) return null;
      const cs = getComputedStyle(el);
      let visible = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2;
      if (el instanceof SVGElement) visible = parseFloat(getComputedStyle(el.querySelector('rect')).strokeWidth) >= 3;
      return { id: el.dataset.a11y, visible, what: `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') || el.textContent || el.id).trim().slice(0, 40)}"` };
    });
    if (!f) continue;
    seen.add(f.id);
    if (!f.visible) invisibleFocus.push(f.what);
  }
  const missed = await page.evaluate((ids) => [...document.querySelectorAll('[data-a11y]')]
    .filter((el) => !ids.includes(el.dataset.a11y))
    .map((el) => `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') || el.textContent || el.id).trim().slice(0, 40)}"`), [...seen]);
  return { total, missed, invisibleFocus };
}

// Controls without a label or a name.
async function unlabelled(page) {
  return page.evaluate(() => {
    const name = (el) => (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.textContent || el.getAttribute('title') || '').trim();
    const out = [];
    for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
      if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')) out.push(`${el.tagName} #${el.id} name=${el.name}`);
    }
    for (const el of document.querySelectorAll('button, a[href]')) if (!name(el)) out.push(`${el.tagName} ${el.outerHTML.slice(0, 80)}`);
    return out;
  });
}

describe('accessibility', () => {
  let g, browser, page, runs;

  before(async () => {
    g = await startGust({ examples: true, dags: { 'ui_keys.yml': QUICK, 'broken.yml': 'broken:\n  tasks: 3\n' } });
    browser = await launchBrowser();
    page = await newPage(browser);
    runs = [];
    for (let i = 0; i < 2; i++) {
      const r = await g.api('POST', '/dags/ui_keys/dagRuns', { logical_date: null, conf: {} });
      runs.push(r.dag_run_id);
      await waitFor(async () => (await g.api('GET', `/dags/ui_keys/dagRuns/${encodeURIComponent(r.dag_run_id)}`)).state === 'success', 60000, 200);
    }
    await login(page, g, 'admin', g.adminPassword);
  });

  after(async () => {
    await browser?.close();
    await g?.stop();
  });

  const PAGES = [
    ['dags', '#/dags', 'table.dags tbody tr'],
    ['grid', '#/dags/ui_keys/grid', 'table.grid'],
    ['graph', '#/dags/ui_keys/graph', 'svg.graph a.node'],
    ['task instance panel', null, '#ti-log'],
    ['gantt', '#/dags/ui_keys/gantt', 'svg.gantt a.gbar'],
    ['runs', '#/runs', 'table.runs'],
    ['trigger form', '#/dags/hello_qubinode/trigger', '#trigger-form'],
    ['variables with its form open', '#/variables', '#res-list[aria-busy="false"]'],
    ['pools', '#/pools', 'table.list'],
    ['audit log', '#/audit', 'table.list'],
    ['workers', '#/workers', '#ratelimits p, #ratelimits table'],
  ];
  for (const [name, hash, ready] of PAGES) {
    test(`${name}: every control is reached by Tab, shows its focus, and is labelled`, async () => {
      const h = hash || `#/dags/ui_keys/grid?run=${encodeURIComponent(runs[1])}&task=second`;
      await visit(page, g, '' + h, ready);
      if (name.startsWith('variables')) {
        await page.click('#res-new');
        await page.waitForSelector('#res-form');
      }
      if (name === 'trigger form') await page.click('#trigger-form details summary'); // and what it hides
      if (name === 'task instance panel') await page.waitForFunction(() => document.querySelector('#ti-log').textContent.includes('two'));
      const r = await tabThrough(page);
      assert.ok(r.total > 5, `only ${r.total} controls found`);
      assert.deepEqual(r.missed, [], `not reached by Tab on ${name}`);
      assert.deepEqual(r.invisibleFocus, [], `focus not visible on ${name}`);
      assert.deepEqual(await unlabelled(page), [], `unlabelled controls on ${name}`);
      assert.deepEqual(page.problems, []);
    });
  }

  test('the grid is driven with the arrow keys; Enter opens a cell, Escape comes back to it', async () => {
    await visit(page, g, '#/dags/ui_keys/grid', 'table.grid [tabindex="0"]');
    // one tab stop in the whole grid
    assert.equal(await page.$$eval('table.grid [tabindex="0"]', (e) => e.length), 1);
    await page.focus('table.grid [tabindex="0"]');
    const label = () => page.evaluate(() => document.activeElement.getAttribute('aria-label'));
    assert.equal(await label(), `first in ${runs[1]}: success`); // the newest run's first task
    await page.keyboard.press('ArrowDown');
    assert.equal(await label(), `second in ${runs[1]}: success`);
    await page.keyboard.press('ArrowLeft');
    assert.equal(await label(), `second in ${runs[0]}: success`);
    await page.keyboard.press('ArrowLeft'); // stays at the edge
    assert.equal(await label(), `second in ${runs[0]}: success`);
    await page.keyboard.press('End');
    assert.equal(await label(), `second in ${runs[1]}: success`);
    await page.keyboard.press('PageDown');
    assert.equal(await label(), `third in ${runs[1]}: success`);
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp'); // the run header row
    assert.equal(await label(), `Run ${runs[1]}: success`);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#panel-title')?.textContent === 'second');
    await page.waitForFunction(() => document.activeElement.id === 'panel-title'); // focus moves to the panel
    assert.match(page.url(), /task=second/);
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.querySelector('#panel').hidden);
    assert.equal(await label(), `second in ${runs[1]}: success`);
    // a run header opens the run
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    assert.equal(await label(), `Run ${runs[1]}: success`);
    await page.keyboard.press(' ');
    await page.waitForSelector('#run-state');
    assert.match(await page.textContent('#panel-title'), new RegExp(runs[1].replace(/[.+]/g, '\\$&')));
    assert.deepEqual(page.problems, []);
  });

  for (const scheme of ['light', 'dark']) {
    test(`state colours and text have a contrast of 4.5:1 or more (${scheme} theme)`, async () => {
      const p = await newPage(browser, { colorScheme: scheme });
      await login(p, g, 'admin', g.adminPassword);
      await p.waitForSelector('table.dags tbody tr');
      const colours = await p.evaluate((states) => {
        const probe = (cls, parent = document.body) => {
          const el = document.createElement('span');
          el.className = cls;
          el.textContent = 'x';
          parent.append(el);
          const cs = getComputedStyle(el);
          const r = { fg: cs.color, bg: cs.backgroundColor };
          el.remove();
          return r;
        };
        const page = getComputedStyle(document.documentElement).backgroundColor;
        const out = {};
        for (const s of states) {
          const c = probe(`st st-${s}`);
          // a transparent badge (no status) shows the page behind it
          out[`state ${s}`] = { fg: c.fg, bg: c.bg === 'rgba(0, 0, 0, 0)' ? page : c.bg };
        }
        out['body text'] = { fg: getComputedStyle(document.body).color, bg: page };
        out['muted text'] = { fg: probe('muted').fg, bg: page };
        const a = document.querySelector('main a');
        out['links'] = { fg: getComputedStyle(a).color, bg: page };
        const banner = document.querySelector('.banner.error');
        out['import error banner'] = { fg: getComputedStyle(banner).color, bg: getComputedStyle(banner).backgroundColor };
        const primary = probe('button primary');
        out['primary button'] = primary;
        return { out, page };
      }, STATES);
      const bad = [];
      for (const [what, { fg, bg }] of Object.entries(colours.out)) {
        const ratio = contrast(fg, bg);
        if (!(ratio >= 4.5)) bad.push(`${what}: ${fg} on ${bg} = ${ratio.toFixed(2)}`);
      }
      assert.deepEqual(bad, []);
      // the theme really follows the system setting
      const dark = contrast(colours.page, 'rgb(0, 0, 0)') < contrast(colours.page, 'rgb(255, 255, 255)');
      assert.equal(dark, scheme === 'dark', `page background ${colours.page} in the ${scheme} scheme`);
      if (scheme === 'dark') {
        await shot(p, 'dags-dark');
        await visit(p, g, `#/dags/ui_keys/grid?run=${encodeURIComponent(runs[1])}&task=second`, '#ti-log');
        await p.waitForFunction(() => document.querySelector('#ti-log')?.textContent.includes('two'));
        await shot(p, 'grid-dark');
      }
      assert.deepEqual(p.problems, []);
      await p.context().close();
    });
  }

  test('times are shown in the user\'s timezone with UTC on hover', async () => {
    await visit(page, g, `#/dags/ui_keys/grid?run=${encodeURIComponent(runs[0])}`, '#panel time');
    const t = await page.$eval('#panel time', (el) => ({ text: el.textContent, title: el.title, dt: el.getAttribute('datetime') }));
    // the browser runs in Europe/Paris (lib.mjs): the text is local, the title UTC
    const d = new Date(t.dt);
    const paris = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(d);
    assert.ok(t.text.includes(paris), `${t.text} shows Paris time ${paris}`);
    assert.match(t.title, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z \(UTC\)$/);
  });
});
