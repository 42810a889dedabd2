// The web UI end to end, in real headless Chromium against `gust standalone` running the
// example DAGs plus a broken file and a slow DAG: log in (and a wrong password's message from
// the API), the DAG list with its import-error banner and search, trigger hello_qubinode with a
// param and watch its run turn green in the grid without a reload, the graph, a task's live
// log, clearing a task and seeing it run again, the Gantt chart, the other pages, pausing a
// DAG, logging out; then a Viewer, who sees no button it may not use; then a new install's
// empty state. Screenshots of each page go to tests/ui/artifacts/.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, login, newPage, shot, startGust, visit, waitFor } from './lib.mjs';

const BROKEN = `broken_dag:
  schedule: "@daily"
  tasks:
    - task_id: x
      operator: bash
      bash_comand: "echo misspelt"
`;
// Writes a line every 0.4 s: long enough to watch the log grow in the panel.
const SLOW = `ui_slow:
  schedule: null
  description: Counts slowly, for the live log
  tags: [ui-test]
  tasks:
    - task_id: count
      operator: bash
      bash_command: "for i in $(seq 1 12); do echo tick-$i; sleep 0.4; done"
    - task_id: after_count
      operator: bash
      dependencies: [count]
      bash_command: "echo counted"
`;

// Classes of the grid cells of one run (column) by task id.
async function gridColumn(page, runId) {
  return page.evaluate((run) => {
    const table = document.querySelector('table.grid');
    if (!table) return null;
    const heads = [...table.tHead.rows[0].cells].slice(1);
    const col = heads.findIndex((th) => th.textContent.trim() === run);
    if (col < 0) return null;
    const out = {};
    for (const tr of table.tBodies[0].rows) out[tr.cells[0].getAttribute('title')] = tr.cells[col + 1].className;
    return out;
  }, runId);
}

describe('web UI', () => {
  let g, browser, page;

  before(async () => {
    g = await startGust({ examples: true, dags: { 'broken.yml': BROKEN, 'ui_slow.yml': SLOW } });
    g.createUser('viewer', 'viewer-pass-1', 'Viewer');
    browser = await launchBrowser();
    page = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await g?.stop();
  });

  test('an unauthenticated visit lands on the login page; a wrong password shows the API message', async () => {
    await visit(page, g, '', '#login-form');
    assert.match(page.url(), /#\/login/);
    await shot(page, 'login');
    await page.fill('#login-user', 'admin');
    await page.fill('#login-pass', 'wrong-password');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-error:not(:empty)');
    assert.match(await page.textContent('#login-error'), /Invalid username or password/);
  });

  test('log in and see the DAG list with the import-error banner', async () => {
    await login(page, g, 'admin', g.adminPassword);
    await page.waitForSelector('table.dags tr[data-dag="hello_qubinode"]');
    const ids = await page.$$eval('table.dags tbody tr', (rows) => rows.map((r) => r.dataset.dag));
    for (const id of ['aws_infrastructure', 'hello_qubinode', 'qubinode_deploy', 'ui_slow']) assert.ok(ids.includes(id), `${id} in ${ids}`);
    assert.ok(!ids.includes('broken_dag'));
    const banner = await page.waitForSelector('section.banner.error');
    const text = await banner.innerText();
    assert.match(text, /1 DAG file failed to load/);
    assert.match(text, /broken\.yml/);
    assert.match(text, /bash_comand/); // the loader's own message, as the API gives it
    // statistics arrive after the rows
    await page.waitForFunction(() => !document.querySelector('tr[data-dag="hello_qubinode"] .c-stats').textContent.includes('…'));
    assert.deepEqual(page.problems, []);
    await shot(page, 'dags');
  });

  test('search and the tag filter narrow the list', async () => {
    await page.fill('#dag-search', 'hello');
    await page.waitForFunction(() => document.querySelectorAll('table.dags tbody tr').length === 1);
    assert.equal(await page.$eval('table.dags tbody tr', (r) => r.dataset.dag), 'hello_qubinode');
    assert.match(page.url(), /search=hello/);
    await page.fill('#dag-search', '');
    await page.waitForFunction(() => document.querySelectorAll('table.dags tbody tr').length > 1);
    await page.selectOption('#dag-tag', 'ui-test');
    await page.waitForFunction(() => [...document.querySelectorAll('table.dags tbody tr')].map((r) => r.dataset.dag).join() === 'ui_slow');
    await page.selectOption('#dag-tag', '');
    await page.waitForFunction(() => document.querySelectorAll('table.dags tbody tr').length > 1);
  });

  let runId;
  test('trigger hello_qubinode with a param and watch it turn green without a reload', async () => {
    await page.click('tr[data-dag="hello_qubinode"] a[aria-label="Trigger hello_qubinode"]');
    await page.waitForSelector('#trigger-form');
    assert.equal(await page.inputValue('#trigger-form input[name="greeting"]'), 'hello'); // the param's default
    await shot(page, 'trigger');
    await page.evaluate(() => { window.__sameDocument = 'yes'; }); // a reload would drop it
    await page.fill('#trigger-form input[name="greeting"]', 'bonjour-from-the-ui-test');
    await page.click('#trigger-form button[type=submit]');
    await page.waitForFunction(() => /#\/dags\/hello_qubinode\/grid\?run=/.test(location.hash));
    runId = decodeURIComponent(/run=([^&]+)/.exec(page.url())[1]);
    // the run is in the grid at once, then its cells change colour as the events arrive
    const col = await waitFor(async () => {
      const c = await gridColumn(page, runId);
      return c && Object.values(c).every((cls) => cls.includes('st-success')) && c;
    }, 60000, 200);
    assert.deepEqual(Object.keys(col).sort(), ['check_qubinode_status', 'print_date']);
    assert.equal(await page.evaluate(() => window.__sameDocument), 'yes', 'the page was reloaded');
    // the run header and the run panel (the run is selected) follow too
    await page.waitForFunction(() => document.querySelector('#run-state .st-success'));
    const conf = await g.api('GET', `/dags/hello_qubinode/dagRuns/${encodeURIComponent(runId)}`);
    assert.deepEqual(conf.conf, { greeting: 'bonjour-from-the-ui-test' });
    await shot(page, 'grid');
  });

  test('a task instance panel shows the rendered command and the log with the param', async () => {
    await page.click(`table.grid tbody tr:has(th[title="print_date"]) td:last-child`);
    await page.waitForSelector('#ti-log');
    await page.waitForFunction(() => document.querySelector('#ti-log').textContent.includes('bonjour-from-the-ui-test from gust'), null, { timeout: 20000 });
    // the rendered command, as the API has it (workers that record rendered fields fill it in)
    const ti = await g.api('GET', `/dags/hello_qubinode/dagRuns/${encodeURIComponent(runId)}/taskInstances/print_date`);
    if (ti.rendered_fields?.bash_command) {
      assert.match(await page.textContent('.kv.rendered'), /echo 'bonjour-from-the-ui-test from gust'/);
    } else {
      assert.match(await page.textContent('#ti-no-rendered'), /Not recorded/);
    }
    assert.match(await page.textContent('#ti-state'), /success/);
    assert.match(await page.textContent('#ti-tries'), /Try 1/);
    await shot(page, 'task-instance');
  });

  test('the graph draws the DAG coloured by the run, with task groups', async () => {
    await page.click('.tabs a[data-view="graph"]');
    await page.waitForSelector('svg.graph a.node[data-task="print_date"]');
    const nodes = await page.$$eval('svg.graph a.node', (as) => as.map((a) => [a.dataset.task, a.getAttribute('class')]));
    assert.equal(nodes.length, 2);
    for (const [, cls] of nodes) assert.match(cls, /st-success/);
    assert.equal(await page.$$eval('svg.graph path.edge', (p) => p.length), 1);
    await shot(page, 'graph-hello');
    // qubinode_deploy has two task groups: drawn as labelled boxes around their members
    await visit(page, g, '#/dags/qubinode_deploy/graph', 'svg.graph a.node[data-task="configure_host"]');
    const groups = await page.$$eval('svg.graph g.tg text', (t) => t.map((x) => x.textContent).sort());
    assert.deepEqual(groups, ['preflight', 'provision']);
    // every member sits inside its group's box
    const inside = await page.evaluate(() => {
      const box = (el) => el.getBBox();
      const out = [];
      for (const g of document.querySelectorAll('svg.graph g.tg')) {
        const name = g.querySelector('text').textContent;
        const b = box(g.querySelector('rect'));
        for (const a of document.querySelectorAll(`svg.graph a.node[data-task^="${name}."] rect`)) {
          const n = box(a);
          out.push(n.x >= b.x && n.y >= b.y && n.x + n.width <= b.x + b.width && n.y + n.height <= b.y + b.height);
        }
      }
      return out;
    });
    assert.ok(inside.length >= 4 && inside.every(Boolean), JSON.stringify(inside));
  });

  let slowRun;
  test("a running task's log is followed live in the panel", async () => {
    const run = await g.api('POST', '/dags/ui_slow/dagRuns', { logical_date: null, conf: {} });
    slowRun = run.dag_run_id;
    await visit(page, g, `#/dags/ui_slow/grid?run=${encodeURIComponent(slowRun)}&task=count`, '#ti-log');
    // some lines but not all: the task is still writing
    const partial = await waitFor(async () => {
      const t = await page.textContent('#ti-log');
      return t.includes('tick-2') && !t.includes('tick-12') && t;
    }, 20000, 50);
    assert.ok(partial);
    assert.match(await page.textContent('#ti-log-status'), /Following the log/);
    await shot(page, 'live-log');
    await page.waitForFunction(() => document.querySelector('#ti-log').textContent.includes('tick-12'), null, { timeout: 30000 });
    const lines = (await page.textContent('#ti-log')).split('\n').filter((l) => /tick-\d+/.test(l)).map((l) => /tick-(\d+)/.exec(l)[1]);
    // every line once, in order
    assert.deepEqual(lines, Array.from({ length: 12 }, (_, i) => String(i + 1)));
    await page.waitForFunction(() => document.querySelector('#ti-state .st-success'), null, { timeout: 20000 });
  });

  test('clear a task: it runs again (try 2) and turns green again', async () => {
    await waitFor(async () => (await gridColumn(page, slowRun))?.after_count?.includes('st-success'), 30000, 200);
    await page.click('#panel button[data-act="clear"]');
    await page.waitForSelector('#ti-confirm .confirm');
    assert.match(await page.textContent('#ti-confirm'), /Clear 1 task instance/);
    await page.click('#ti-confirm button[data-act="clear-confirm"]');
    // the cell leaves success, then comes back to it with a second try
    await waitFor(async () => !(await gridColumn(page, slowRun)).count.includes('st-success'), 15000, 50);
    await page.waitForFunction(() => /Try 2/.test(document.querySelector('#ti-tries')?.textContent || ''), null, { timeout: 30000 });
    await waitFor(async () => (await gridColumn(page, slowRun)).count.includes('st-success'), 30000, 200);
    const ti = await g.api('GET', `/dags/ui_slow/dagRuns/${encodeURIComponent(slowRun)}/taskInstances/count`);
    assert.equal(ti.try_number, 2);
    assert.equal(ti.state, 'success');
  });

  test('mark a task failed from the panel', async () => {
    await visit(page, g, `#/dags/ui_slow/grid?run=${encodeURIComponent(slowRun)}&task=after_count`, '#panel button[data-act="failed"]');
    await page.waitForFunction(() => document.querySelector('#ti-state .st-success'));
    await page.click('#panel button[data-act="failed"]');
    await waitFor(async () => (await gridColumn(page, slowRun)).after_count.includes('st-failed'), 15000, 100);
    const ti = await g.api('GET', `/dags/ui_slow/dagRuns/${encodeURIComponent(slowRun)}/taskInstances/after_count`);
    assert.equal(ti.state, 'failed');
  });

  test('the Gantt chart of a run', async () => {
    // qubinode_deploy has no schedule: run it once for the chart
    const run = await g.api('POST', '/dags/qubinode_deploy/dagRuns', { logical_date: null, conf: {} });
    await waitFor(async () => ['success', 'failed'].includes((await g.api('GET', `/dags/qubinode_deploy/dagRuns/${encodeURIComponent(run.dag_run_id)}`)).state), 60000, 200);
    await visit(page, g, `#/dags/qubinode_deploy/gantt?run=${encodeURIComponent(run.dag_run_id)}`, 'svg.gantt a.gbar rect');
    assert.ok((await page.$$eval('svg.gantt a.gbar', (a) => a.length)) >= 5);
    await shot(page, 'gantt');
    // and the same run's graph, coloured: the task groups' members succeeded, report_failure was skipped
    await page.click('.tabs a[data-view="graph"]');
    await page.waitForSelector('svg.graph a.node[data-task="report_failure"]');
    assert.match(await page.getAttribute('svg.graph a.node[data-task="provision.create_vms"]', 'class'), /st-success/);
    assert.match(await page.getAttribute('svg.graph a.node[data-task="report_failure"]', 'class'), /st-skipped/);
    await shot(page, 'graph');
  });

  test("the DAG page's runs and details views, the number of runs shown, its pause switch", async () => {
    await visit(page, g, '#/dags/ui_slow/runs', 'table.runs tbody tr');
    assert.ok((await page.textContent('table.runs')).includes(slowRun));
    await shot(page, 'dag-runs');
    await page.click('.tabs a[data-view="details"]');
    await page.waitForSelector('.details');
    const details = await page.textContent('.details');
    assert.match(details, /ui_slow\.yml/);
    assert.match(details, /after_count/);
    await shot(page, 'details');
    await page.click('.tabs a[data-view="grid"]');
    await page.waitForSelector('#grid-runs');
    await page.selectOption('#grid-runs', '50');
    await page.waitForFunction(() => /runs=50/.test(location.hash) && document.querySelector('#grid-runs')?.value === '50');
    await page.waitForSelector('table.grid');
    await page.click('#pause-switch');
    await page.waitForFunction(() => document.querySelector('#pause-switch')?.getAttribute('aria-checked') === 'false');
    assert.equal((await g.api('GET', '/dags/ui_slow')).is_paused, true);
    await page.click('#pause-switch');
    await page.waitForFunction(() => document.querySelector('#pause-switch')?.getAttribute('aria-checked') === 'true');
    assert.equal((await g.api('GET', '/dags/ui_slow')).is_paused, false);
  });

  test('runs, workers, pools, variables, connections and the audit log', async () => {
    await visit(page, g, '#/runs', 'table.runs tbody tr');
    assert.match(await page.textContent('table.runs'), /hello_qubinode/);
    await shot(page, 'runs');

    await visit(page, g, '#/workers', '#workers table, #workers p.empty');
    await shot(page, 'workers');

    await visit(page, g, '#/pools', 'table.list tbody tr');
    assert.match(await page.textContent('table.list'), /default_pool/);
    await shot(page, 'pools');

    await visit(page, g, '#/variables', '#res-new');
    await page.click('#res-new');
    await page.fill('#f-key', 'qubinode_host');
    await page.fill('#f-value', 'lab.example.org');
    await page.fill('#f-description', 'set from the UI test');
    await page.click('#res-form button[type=submit]');
    await page.waitForSelector('table.list tbody tr');
    assert.match(await page.textContent('table.list'), /lab\.example\.org/);
    assert.equal((await g.api('GET', '/variables/qubinode_host')).value, 'lab.example.org');
    // the API's message when it refuses: a duplicate key
    await page.click('#res-new');
    await page.fill('#f-key', 'qubinode_host');
    await page.fill('#f-value', 'again');
    await page.click('#res-form button[type=submit]');
    await page.waitForSelector('#res-error .error');
    assert.match(await page.textContent('#res-error'), /qubinode_host/);
    await page.click('#res-cancel');
    await shot(page, 'variables');

    await visit(page, g, '#/connections', '#res-new');
    await page.click('#res-new');
    await page.fill('#f-connection_id', 'lab_ssh');
    await page.fill('#f-conn_type', 'ssh');
    await page.fill('#f-host', 'lab.example.org');
    await page.fill('#f-password', 'never-shown');
    await page.click('#res-form button[type=submit]');
    await page.waitForSelector('table.list tbody tr');
    assert.match(await page.textContent('table.list'), /lab_ssh/);
    assert.ok(!(await page.content()).includes('never-shown'));
    await shot(page, 'connections');

    await visit(page, g, '#/audit', 'table.list tbody tr');
    const audit = await page.textContent('table.list');
    assert.match(audit, /admin/);
    assert.match(audit, /hello_qubinode/);
    await shot(page, 'audit');
    assert.deepEqual(page.problems, []);
  });

  test('pause a DAG from the list', async () => {
    const sw = 'tr[data-dag="hello_qubinode"] button[role=switch]';
    await visit(page, g, '#/dags', sw);
    assert.equal(await page.getAttribute(sw, 'aria-checked'), 'true');
    await page.click(sw);
    await page.waitForFunction((s) => document.querySelector(s).getAttribute('aria-checked') === 'false', sw);
    assert.equal((await g.api('GET', '/dags/hello_qubinode')).is_paused, true);
    // still paused after a reload: it is the server's state, not the page's
    await page.reload();
    await page.waitForSelector(sw);
    assert.equal(await page.getAttribute(sw, 'aria-checked'), 'false');
  });

  test('log out', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    assert.equal(await page.evaluate(() => localStorage.getItem('gust.token')), null);
    await visit(page, g, '#/variables', '#login-form');
    assert.deepEqual(page.problems, []);
  });

  test('a Viewer sees no button it may not use', async () => {
    const vp = await newPage(browser);
    await login(vp, g, 'viewer', 'viewer-pass-1');
    assert.match(await vp.textContent('#who'), /viewer \(Viewer\)/);
    await vp.waitForSelector('table.dags tr[data-dag="ui_slow"]');
    assert.equal(await vp.$$eval('button[role=switch]', (b) => b.length), 0);
    assert.equal(await vp.$$eval('a[href$="/trigger"]', (b) => b.length), 0);
    assert.match(await vp.textContent('tr[data-dag="hello_qubinode"]'), /paused/);
    await visit(vp, g, `#/dags/ui_slow/grid?run=${encodeURIComponent(slowRun)}&task=count`, '#ti-log');
    assert.equal(await vp.$$eval('#panel button[data-act]:not([data-act="close"])', (b) => b.length), 0);
    assert.equal(await vp.$$eval('#pause-switch, #dag-actions a', (b) => b.length), 0);
    await shot(vp, 'viewer-task-instance');
    await visit(vp, g, `#/dags/ui_slow/grid?run=${encodeURIComponent(slowRun)}`, '#run-state');
    assert.equal(await vp.$$eval('#panel button[data-act]:not([data-act="close"])', (b) => b.length), 0);
    for (const p of ['variables', 'pools', 'connections']) {
      await visit(vp, g, '#/' + p, '#res-list[aria-busy="false"]');
      assert.equal(await vp.$$eval('#res-new, [data-edit], [data-del]', (b) => b.length), 0, p);
    }
    // the trigger page, reached by its URL, says why instead of offering a form
    await visit(vp, g, '#/dags/hello_qubinode/trigger', 'main .error');
    assert.equal(await vp.$$eval('#trigger-form', (f) => f.length), 0);
    assert.deepEqual(vp.problems, []);
    await vp.context().close();
  });
});

describe('a new install', () => {
  let g, browser;
  before(async () => {
    g = await startGust();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await g?.stop();
  });

  test('shows where DAG files go and how to trigger the first one', async () => {
    const page = await newPage(browser);
    await login(page, g, 'admin', g.adminPassword);
    await page.waitForSelector('.empty-install');
    const text = await page.textContent('.empty-install');
    assert.match(text, /core\.dags_folder/);
    assert.match(text, /gust dags trigger/);
    await shot(page, 'empty');
    assert.deepEqual(page.problems, []);
  });
});
