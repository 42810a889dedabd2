// The REST API's read side against Airflow's REST API v2 contract (tests/api/v2.yaml): every GET
// endpoint gust serves, on a gust with a few small DAGs and finished runs, answers bodies that
// validate against the spec's response schema — lists with their pagination (limit/offset,
// total_entries that does not move with the page) and order_by (ascending, descending, an
// unknown field refused with 400), single resources, and 404s in Airflow's error shape.
// Once in each deployment: `gust standalone` (SQLite) and `gust api` + scheduler + worker
// (PostgreSQL, RabbitMQ, Redis). The last test of each block checks every body seen again
// strictly — no field the spec does not define — so an invented or misspelt field shows up.
// The runs it reads are made with the CLI (`gust dags trigger --wait`): creating runs through
// the API is test_runs' subject, reading them is this file's.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, assertResponse, enc, startGust, validateResponse, waitFor } from './lib.mjs';

const DAGS = {
    'contract.yml': `
contract_chain:
  description: three tasks in a row
  doc_md: "# chain\\nextract, transform, load"
  schedule: None
  tags: [contract, chain]
  params:
    greeting: hello
  default_args:
    owner: qa
    retries: 1
    retry_delay: 1s
  tasks:
    - task_id: extract
      operator: bash
      bash_command: "echo extract-says-{{ params.greeting }}"
    - task_id: transform
      operator: bash
      bash_command: "echo transform"
      dependencies: [extract]
    - task_id: load
      operator: bash
      bash_command: "echo load"
      dependencies: [transform]
      outlets: ["s3://contract/loaded"]
contract_fails:
  schedule: None
  tags: [contract]
  tasks:
    - task_id: boom
      operator: bash
      bash_command: "echo failing; exit 3"
    - task_id: after
      operator: bash
      bash_command: "echo never"
      dependencies: [boom]
contract_daily:
  schedule: "@daily"
  start_date: 2024-01-01
  catchup: false
  tags: [daily]
  tasks:
    - task_id: tick
      operator: bash
      bash_command: "echo tick"
contract_on_asset:
  schedule: ["s3://contract/loaded"]
  tasks:
    - task_id: consume
      operator: bash
      bash_command: "echo consumed"
`,
    'pages.yml': Array.from({ length: 7 }, (_, i) => `
contract_page_0${i + 1}:
  schedule: None
  tags: [page, "p${i % 3}"]
  tasks:
    - task_id: only
      operator: bash
      bash_command: "echo ${i}"
`).join(''),
    'broken.yml': `
contract_broken:
  schedule: None
  tasks:
    - task_id: a
      operator: bash
      bash_command: "echo a"
      dependencies: [no_such_task]
`,
};
const DAG_IDS = ['contract_chain', 'contract_daily', 'contract_fails', 'contract_on_asset',
    ...Array.from({ length: 7 }, (_, i) => `contract_page_0${i + 1}`)];

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function contractSuite(mode) {
    describe(`contract (${mode})`, { timeout: 600000 }, () => {
        let s;
        const seen = [];     // every 2xx body, checked again strictly at the end

        async function get(path, query, status = 200, opts = {}) {
            const res = await api(s, 'GET', path, { query, ...opts });
            const body = assertResponse(res, status);
            if (status < 300) seen.push(res);
            return body;
        }

        // Pages of `limit` walk the whole list in the same order as one big page; total_entries
        // is the whole count on every page; past the end is an empty page.
        async function checkPaging(path, key, idOf, query = {}) {
            const all = await get(path, { ...query, limit: 100 });
            assert.ok(Array.isArray(all[key]), `${path}: no ${key} list`);
            const total = all.total_entries;
            assert.equal(all[key].length, Math.min(total, 100), `${path}: ${key} has ${all[key].length} entries, total_entries says ${total}`);
            const ids = [];
            for (let off = 0; off < Math.min(total, 100); off += 2) {
                const page = await get(path, { ...query, limit: 2, offset: off });
                assert.equal(page.total_entries, total, `${path}?limit=2&offset=${off}: total_entries ${page.total_entries}, the whole list has ${total}`);
                assert.ok(page[key].length <= 2, `${path}?limit=2: ${page[key].length} entries`);
                ids.push(...page[key].map(idOf));
            }
            assert.deepEqual(ids, all[key].map(idOf), `${path}: pages of 2 do not add up to the whole list`);
            const past = await get(path, { ...query, limit: 5, offset: total + 10 });
            assert.deepEqual(past[key], [], `${path}: offset past the end must give an empty page`);
            assert.equal(past.total_entries, total);
            return all;
        }

        // order_by=field sorts ascending, -field descending (by valueOf), and an unknown field is 400.
        async function checkOrder(path, key, field, valueOf, query = {}) {
            const asc = (await get(path, { ...query, order_by: field, limit: 100 }))[key].map(valueOf);
            const desc = (await get(path, { ...query, order_by: `-${field}`, limit: 100 }))[key].map(valueOf);
            const up = [...asc].sort(cmp);
            assert.deepEqual(asc, up, `${path}?order_by=${field} is not ascending: ${JSON.stringify(asc)}`);
            assert.deepEqual(desc, [...up].reverse(), `${path}?order_by=-${field} is not descending: ${JSON.stringify(desc)}`);
            await get(path, { ...query, order_by: 'no_such_field_xyz' }, 400);
        }

        async function cliOk(args) {
            const r = await s.cli(args);
            assert.equal(r.code, 0, `gust ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
            return r.stdout;
        }

        // A finished run made with the CLI, with a run id we choose.
        async function cliRun(dagId, runId, conf) {
            const args = ['dags', 'trigger', dagId, '--run-id', runId, '--wait', '--output', 'json'];
            if (conf) args.push('--conf', JSON.stringify(conf));
            // the DAG processor stores the DAG within a second or two of the start
            let r;
            await waitFor(async () => {
                r = await s.cli(args, { timeoutMs: 180000 });
                return r.code === 0 || !/unknown|not found|no dag/i.test(r.stderr);
            }, 30000, 500);
            return r;
        }

        before(async () => {
            s = await startGust({ mode, dags: DAGS });
            await cliOk(['variables', 'set', 'contract_var', 'v1', '--description', 'a variable']);
            await cliOk(['variables', 'set', 'contract_var_2', '{"a": 1}']);
            await cliOk(['connections', 'add', 'contract_conn', '--conn-type', 'http', '--conn-host', 'example.invalid',
                '--conn-login', 'me', '--conn-password', 'secret-pw', '--conn-port', '8443', '--conn-description', 'a connection']);
            await cliOk(['connections', 'add', 'contract_conn_uri', '--conn-uri', 'postgresql://u:p@db.invalid:5432/x']);
            await cliOk(['pools', 'set', 'contract_pool', '3', 'a pool']);
            const ok = await cliRun('contract_chain', 'contract_run_ok', { k: 'v' });
            assert.equal(ok.code, 0, `contract_chain run: ${ok.stderr}${ok.stdout}`);
            const bad = await cliRun('contract_fails', 'contract_run_failed');
            assert.notEqual(bad.code, 0, 'contract_fails must fail');
        });

        after(async () => { if (s) await s.stop(); });

        test('GET /health answers 200 without a token', async () => {
            const res = await api(s, 'GET', '/health', { as: null });
            assert.equal(res.status, 200, res.text);
        });

        test('GET /api/v2/monitor/health is HealthInfoResponse, the store healthy', async () => {
            const body = await get('/api/v2/monitor/health', undefined, 200, { as: null });
            assert.equal(body.metadatabase.status, 'healthy');
            // a scheduler runs in both modes: its heartbeat (the job table) makes it healthy
            assert.equal(body.scheduler.status, 'healthy', JSON.stringify(body));
            const age = Date.now() - Date.parse(body.scheduler.latest_scheduler_heartbeat);
            assert.ok(age >= -2000 && age < 30000, `heartbeat ${body.scheduler.latest_scheduler_heartbeat} is recent`);
        });

        test('GET /api/v2/version is VersionInfo', async () => {
            const body = await get('/api/v2/version', undefined, 200, { as: null });
            assert.match(body.version, /\d/);
        });

        test('GET /api/v2/dags lists every DAG, pages and sorts', async () => {
            const all = await waitFor(async () => {
                const b = await get('/api/v2/dags', { limit: 100 });
                return DAG_IDS.every((d) => b.dags.some((x) => x.dag_id === d)) && b;
            }, 30000, 300);
            assert.equal(all.total_entries, DAG_IDS.length, `dags: ${all.dags.map((d) => d.dag_id)}`);
            assert.ok(!all.dags.some((d) => d.dag_id === 'contract_broken'), 'a DAG that failed to load is not listed');
            const chain = all.dags.find((d) => d.dag_id === 'contract_chain');
            assert.equal(chain.is_paused, false);
            assert.deepEqual(chain.tags.map((t) => t.name).sort(), ['chain', 'contract']);
            assert.ok(chain.fileloc.endsWith('contract.yml'), chain.fileloc);
            assert.equal(chain.description, 'three tasks in a row');
            assert.deepEqual(chain.owners, ['qa']);
            await checkPaging('/api/v2/dags', 'dags', (d) => d.dag_id);
            await checkOrder('/api/v2/dags', 'dags', 'dag_id', (d) => d.dag_id);
            // default order: dag_id ascending
            const dflt = (await get('/api/v2/dags', { limit: 100 })).dags.map((d) => d.dag_id);
            assert.deepEqual(dflt, [...dflt].sort(cmp));
        });

        test('GET /api/v2/dags filters: tags, dag_id_pattern, paused', async () => {
            const tagged = await get('/api/v2/dags', { tags: 'chain' });
            assert.deepEqual(tagged.dags.map((d) => d.dag_id), ['contract_chain']);
            assert.equal(tagged.total_entries, 1);
            const any = await get('/api/v2/dags', { tags: ['chain', 'daily'], tags_match_mode: 'any' });
            assert.deepEqual(any.dags.map((d) => d.dag_id), ['contract_chain', 'contract_daily']);
            const pat = await get('/api/v2/dags', { dag_id_pattern: 'page_0' });
            assert.equal(pat.total_entries, 7);
            const paused = await get('/api/v2/dags', { paused: true });
            assert.equal(paused.total_entries, 0);
            const paged = await get('/api/v2/dags', { dag_id_pattern: 'page_0', limit: 3, offset: 5 });
            assert.equal(paged.total_entries, 7);
            assert.deepEqual(paged.dags.map((d) => d.dag_id), ['contract_page_06', 'contract_page_07']);
        });

        test('GET /api/v2/dags/{dag_id} and /details', async () => {
            const d = await get('/api/v2/dags/contract_chain');
            assert.equal(d.dag_id, 'contract_chain');
            const det = await get('/api/v2/dags/contract_chain/details');
            assert.equal(det.dag_id, 'contract_chain');
            assert.equal(det.doc_md, '# chain\nextract, transform, load');
            const daily = await get('/api/v2/dags/contract_daily/details');
            assert.equal(daily.catchup, false);
            assert.ok(daily.start_date.startsWith('2024-01-01T00:00:00'), daily.start_date);
            await get('/api/v2/dags/no_such_dag', undefined, 404);
            await get('/api/v2/dags/no_such_dag/details', undefined, 404);
        });

        test('GET /api/v2/dags/{dag_id}/tasks and /tasks/{task_id}', async () => {
            const t = await get('/api/v2/dags/contract_chain/tasks');
            assert.equal(t.total_entries, 3);
            assert.deepEqual(t.tasks.map((x) => x.task_id), ['extract', 'load', 'transform'], 'default order: task_id');
            const ex = t.tasks.find((x) => x.task_id === 'extract');
            assert.deepEqual(ex.downstream_task_ids, ['transform']);
            assert.equal(ex.owner, 'qa');
            assert.equal(ex.retries, 1);
            const desc = await get('/api/v2/dags/contract_chain/tasks', { order_by: '-task_id' });
            assert.deepEqual(desc.tasks.map((x) => x.task_id), ['transform', 'load', 'extract']);
            const one = await get('/api/v2/dags/contract_chain/tasks/load');
            assert.equal(one.task_id, 'load');
            assert.deepEqual(one.downstream_task_ids, []);
            await get('/api/v2/dags/contract_chain/tasks/no_such_task', undefined, 404);
            await get('/api/v2/dags/no_such_dag/tasks', undefined, 404);
        });

        test('GET /api/v2/dagSources/{dag_id} gives the file', async () => {
            const src = await get('/api/v2/dagSources/contract_chain');
            assert.equal(src.dag_id, 'contract_chain');
            assert.ok(src.content.includes('contract_chain:') && src.content.includes('extract-says-'), src.content.slice(0, 200));
            const text = await api(s, 'GET', '/api/v2/dagSources/contract_chain', { headers: { Accept: 'text/plain' } });
            assertResponse(text, 200);
            assert.ok(text.text.includes('contract_chain:'), 'Accept: text/plain gives the source as text');
            await get('/api/v2/dagSources/no_such_dag', undefined, 404);
        });

        test('GET /api/v2/dags/{dag_id}/dagRuns: runs, filters, pages, order', async () => {
            const runs = await get('/api/v2/dags/contract_chain/dagRuns');
            const ok = runs.dag_runs.find((r) => r.dag_run_id === 'contract_run_ok');
            assert.ok(ok, `contract_run_ok not listed: ${runs.dag_runs.map((r) => r.dag_run_id)}`);
            assert.equal(ok.state, 'success');
            assert.equal(ok.run_type, 'manual');
            assert.deepEqual(ok.conf, { k: 'v' });
            assert.ok(ok.start_date && ok.end_date && ok.end_date >= ok.start_date);
            const one = await get('/api/v2/dags/contract_chain/dagRuns/contract_run_ok');
            assert.equal(one.dag_run_id, 'contract_run_ok');
            const failed = await get('/api/v2/dags/contract_fails/dagRuns/contract_run_failed');
            assert.equal(failed.state, 'failed');
            await get('/api/v2/dags/contract_chain/dagRuns/no_such_run', undefined, 404);
            await get('/api/v2/dags/no_such_dag/dagRuns', undefined, 404);
            // every DAG's runs at once
            const all = await get('/api/v2/dags/~/dagRuns', { limit: 100 });
            for (const id of ['contract_run_ok', 'contract_run_failed']) {
                assert.ok(all.dag_runs.some((r) => r.dag_run_id === id), `~/dagRuns lacks ${id}`);
            }
            const st = await get('/api/v2/dags/~/dagRuns', { state: 'failed' });
            assert.ok(st.dag_runs.length >= 1 && st.dag_runs.every((r) => r.state === 'failed'), JSON.stringify(st.dag_runs.map((r) => r.state)));
            await checkPaging('/api/v2/dags/~/dagRuns', 'dag_runs', (r) => `${r.dag_id}/${r.dag_run_id}`);
            await checkOrder('/api/v2/dags/~/dagRuns', 'dag_runs', 'dag_run_id', (r) => r.dag_run_id);
            await checkOrder('/api/v2/dags/~/dagRuns', 'dag_runs', 'start_date', (r) => r.start_date);
        });

        test('GET task instances of a run: list, one, tries, logs, pages, order', async () => {
            const base = '/api/v2/dags/contract_chain/dagRuns/contract_run_ok/taskInstances';
            const tis = await get(base);
            assert.equal(tis.total_entries, 3);
            for (const ti of tis.task_instances) {
                assert.equal(ti.state, 'success', `${ti.task_id}: ${ti.state}`);
                assert.equal(ti.dag_run_id, 'contract_run_ok');
                assert.equal(ti.try_number, 1);
                assert.equal(ti.map_index, -1);
            }
            await checkPaging(base, 'task_instances', (t) => t.task_id, { order_by: 'start_date' });
            await checkOrder(base, 'task_instances', 'start_date', (t) => t.start_date);
            const one = await get(`${base}/extract`);
            assert.equal(one.task_id, 'extract');
            assert.equal(one.operator, 'BashOperator');
            await get(`${base}/no_such_task`, undefined, 404);
            const tries = await get(`${base}/extract/tries`);
            assert.equal(tries.total_entries, 1);
            await get(`${base}/extract/tries/1`);
            const log = await get(`${base}/extract/logs/1`, { full_content: true });
            assert.ok(JSON.stringify(log.content).includes('extract-says-hello'), `the log lacks the task's output: ${JSON.stringify(log).slice(0, 400)}`);
            // a failed task
            const boom = await get('/api/v2/dags/contract_fails/dagRuns/contract_run_failed/taskInstances/boom');
            assert.equal(boom.state, 'failed');
            const afterTi = await get('/api/v2/dags/contract_fails/dagRuns/contract_run_failed/taskInstances/after');
            assert.equal(afterTi.state, 'upstream_failed');
            // across runs and DAGs
            const every = await get('/api/v2/dags/~/dagRuns/~/taskInstances', { limit: 100 });
            assert.ok(every.total_entries >= 5, `~/~/taskInstances total ${every.total_entries}`);
            const failedOnes = await get('/api/v2/dags/~/dagRuns/~/taskInstances', { state: 'failed' });
            assert.ok(failedOnes.task_instances.some((t) => t.task_id === 'boom'));
            assert.ok(failedOnes.task_instances.every((t) => t.state === 'failed'));
        });

        test('GET /api/v2/variables (+ one), pages and order', async () => {
            const all = await get('/api/v2/variables');
            const v = all.variables.find((x) => x.key === 'contract_var');
            assert.ok(v, `variables: ${all.variables.map((x) => x.key)}`);
            assert.equal(v.value, 'v1');
            assert.equal(v.description, 'a variable');
            const one = await get('/api/v2/variables/contract_var_2');
            assert.equal(one.value, '{"a": 1}');
            await get('/api/v2/variables/no_such_var', undefined, 404);
            await checkPaging('/api/v2/variables', 'variables', (x) => x.key);
            await checkOrder('/api/v2/variables', 'variables', 'key', (x) => x.key);
        });

        test('GET /api/v2/connections (+ one), password never shown', async () => {
            const all = await get('/api/v2/connections');
            const c = all.connections.find((x) => x.connection_id === 'contract_conn');
            assert.ok(c, `connections: ${all.connections.map((x) => x.connection_id)}`);
            assert.equal(c.conn_type, 'http');
            assert.equal(c.host, 'example.invalid');
            assert.equal(c.port, 8443);
            assert.ok(!JSON.stringify(all).includes('secret-pw'), 'a connection password appears in the list');
            const one = await get('/api/v2/connections/contract_conn_uri');
            assert.equal(one.host, 'db.invalid');
            assert.equal(one.schema, 'x');
            await get('/api/v2/connections/no_such_conn', undefined, 404);
            await checkPaging('/api/v2/connections', 'connections', (x) => x.connection_id);
            await checkOrder('/api/v2/connections', 'connections', 'connection_id', (x) => x.connection_id);
        });

        test('GET /api/v2/pools (+ one), default_pool included', async () => {
            const all = await get('/api/v2/pools');
            const names = all.pools.map((p) => p.name);
            assert.ok(names.includes('default_pool') && names.includes('contract_pool'), `pools: ${names}`);
            const one = await get('/api/v2/pools/contract_pool');
            assert.equal(one.slots, 3);
            assert.equal(one.description, 'a pool');
            assert.equal(one.open_slots, 3);
            await get('/api/v2/pools/no_such_pool', undefined, 404);
            await checkPaging('/api/v2/pools', 'pools', (p) => p.name);
            await checkOrder('/api/v2/pools', 'pools', 'name', (p) => p.name);
        });

        test('GET /api/v2/importErrors names the broken file', async () => {
            const all = await waitFor(async () => {
                const b = await get('/api/v2/importErrors');
                return b.import_errors.some((e) => e.filename.endsWith('broken.yml')) && b;
            }, 20000, 300);
            const e = all.import_errors.find((x) => x.filename.endsWith('broken.yml'));
            assert.match(e.stack_trace, /no_such_task/);
            const one = await get(`/api/v2/importErrors/${e.import_error_id}`);
            assert.equal(one.import_error_id, e.import_error_id);
            await get('/api/v2/importErrors/987654321', undefined, 404);
            await checkPaging('/api/v2/importErrors', 'import_errors', (x) => x.import_error_id);
        });

        test('GET /api/v2/eventLogs (+ one), pages and order', async () => {
            const all = await get('/api/v2/eventLogs', { limit: 100 });
            assert.ok(all.total_entries >= 1, 'the logins of this test are in the event log');
            const first = all.event_logs[0];
            const one = await get(`/api/v2/eventLogs/${first.event_log_id}`);
            assert.equal(one.event_log_id, first.event_log_id);
            await get('/api/v2/eventLogs/987654321', undefined, 404);
            await checkPaging('/api/v2/eventLogs', 'event_logs', (x) => x.event_log_id);
            await checkOrder('/api/v2/eventLogs', 'event_logs', 'when', (x) => x.when);
        });

        test('GET /api/v2/assets (+ one, + events)', async () => {
            const all = await get('/api/v2/assets');
            const a = all.assets.find((x) => x.uri === 's3://contract/loaded');
            assert.ok(a, `assets: ${all.assets.map((x) => x.uri)}`);
            const one = await get(`/api/v2/assets/${a.id}`);
            assert.equal(one.uri, 's3://contract/loaded');
            assert.ok(one.scheduled_dags.some((d) => d.dag_id === 'contract_on_asset'), JSON.stringify(one.scheduled_dags));
            assert.ok(one.producing_tasks.some((t) => t.dag_id === 'contract_chain' && t.task_id === 'load'), JSON.stringify(one.producing_tasks));
            await get('/api/v2/assets/987654321', undefined, 404);
            const ev = await get('/api/v2/assets/events', { asset_id: a.id });
            assert.ok(ev.asset_events.some((e) => e.source_dag_id === 'contract_chain' && e.source_run_id === 'contract_run_ok'),
                `the chain run's asset event: ${JSON.stringify(ev).slice(0, 400)}`);
            await checkPaging('/api/v2/assets', 'assets', (x) => x.id);
        });

        test('GET /api/v2/dagStats counts runs by state', async () => {
            const st = await get('/api/v2/dagStats', { dag_ids: ['contract_chain', 'contract_fails'] });
            const count = (dag, state) => st.dags.find((d) => d.dag_id === dag)?.stats.find((x) => x.state === state)?.count;
            assert.ok(count('contract_chain', 'success') >= 1, JSON.stringify(st));
            assert.ok(count('contract_fails', 'failed') >= 1, JSON.stringify(st));
        });

        test('GET /api/v2/dagTags, pages and order', async () => {
            const all = await get('/api/v2/dagTags');
            for (const t of ['chain', 'contract', 'daily', 'page', 'p0', 'p1', 'p2']) assert.ok(all.tags.includes(t), `tags: ${all.tags}`);
            assert.deepEqual(all.tags, [...all.tags].sort(cmp), 'default order: name');
            const desc = await get('/api/v2/dagTags', { order_by: '-name' });
            assert.deepEqual(desc.tags, [...all.tags].reverse());
            const pat = await get('/api/v2/dagTags', { tag_name_pattern: 'p' });
            assert.ok(pat.tags.includes('page') && !pat.tags.includes('chain'), `tag_name_pattern=p: ${pat.tags}`);
            await checkPaging('/api/v2/dagTags', 'tags', (x) => x);
        });

        test('every body seen names no field the spec does not define', () => {
            assert.ok(seen.length > 0, 'no 2xx body was seen');
            const problems = [];
            const done = new Set();
            for (const res of seen) {
                try {
                    const ct = res.headers.get('content-type') || '';
                    if (!/json/i.test(ct)) continue;
                    validateResponse(res.method, res.path, res.status, res.json, { strict: true, contentType: ct });
                } catch (e) {
                    const first = e.message.split('\n').slice(0, 4).join('\n');
                    if (!done.has(first)) { done.add(first); problems.push(first); }
                }
            }
            assert.equal(problems.length, 0, problems.join('\n\n'));
        });
    });
}

contractSuite('standalone');
contractSuite('api');
