// DAG resources on the REST API (api/routes_dags.c, store/dagquery.c): the DAG list and its
// filters, order and paging; one DAG, its details, tasks, source and versions; dagStats,
// dagTags, importErrors, dagWarnings; pausing (one and in bulk) and what it does to the
// scheduler; deleting a DAG's metadata; and gust's POST /api/v2/gust/dags/validate. Every body
// is validated against Airflow's v2 spec (strictly where gust builds the whole object). Runs in
// standalone (SQLite) and, when the test servers are up, in the distributed deployment
// (PostgreSQL, RabbitMQ, Redis), so every query is checked on both engines.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, assertResponse, enc, servicesAvailable, sleep, startGust, validate, waitFor } from './lib.mjs';

const ETL = `
etl_sales:
  description: "Sales ETL"
  dag_display_name: "Sales ETL pipeline"
  doc_md: "# Sales"
  schedule: "@daily"
  start_date: 2024-01-01
  catchup: false
  dagrun_timeout: 1h30m
  max_consecutive_failed_dag_runs: 3
  tags: [etl, sales]
  params: {region: eu}
  default_args:
    owner: alice
    retries: 2
    retry_delay: 1m
  tasks:
    - task_id: extract
      operator: bash
      bash_command: "echo extract"
    - task_id: load
      operator: bash
      bash_command: "echo load {{ params.region }}"
      dependencies: [extract]
      max_active_tis_per_dag: 2
      execution_timeout: 10m
etl_marketing:
  schedule: null
  tags: [etl, marketing]
  default_args: {owner: bob}
  tasks:
    - task_id: only
      operator: empty
`;

const REPORTS = `
report_daily:
  schedule: "0 6 * * *"
  start_date: 2024-01-01
  tags: [reports]
  default_args: {owner: carol}
  tasks:
    - task_id: build
      operator: bash
      bash_command: "echo report"
report_weekly:
  schedule: "0 6 * * 1"
  start_date: 2024-01-01
  is_paused_upon_creation: true
  tags: [reports, weekly]
  default_args: {owner: carol}
  tasks:
    - task_id: build
      operator: bash
      bash_command: "echo weekly"
`;

// A DAG that runs every 2 seconds: what pausing must stop.
const TICKER = `
ticker:
  schedule: 2
  start_date: 2024-01-01
  catchup: false
  tags: [fast]
  tasks:
    - task_id: tick
      operator: bash
      bash_command: "true"
`;

// ids that tell a LIKE wildcard from a literal underscore
const MISC = `
ab_c:
  schedule: null
  tasks:
    - {task_id: t, operator: empty}
abxc:
  schedule: null
  tasks:
    - {task_id: t, operator: empty}
`;

// one good DAG beside a broken one: the file has an import error, the good DAG loads
const BROKEN = `
good_in_broken:
  schedule: null
  tasks:
    - {task_id: t, operator: empty}
bad_in_broken:
  schedule: null
  tasks:
    - task_id: t
      operator: bash
      bash_comand: "echo typo"
`;

const DAG_IDS = ['ab_c', 'abxc', 'etl_marketing', 'etl_sales', 'good_in_broken', 'report_daily', 'report_weekly', 'ticker'];

const GOOD_DOC = `validated_dag:
  schedule: null
  tasks:
    - task_id: a
      operator: bash
      bash_command: "echo a"
    - task_id: b
      operator: bash
      bash_command: "echo b"
      dependencies: [a]
`;
// line 5 misspells bash_command
const BAD_DOC = `validated_bad:
  schedule: null
  tasks:
    - task_id: a
      bash_comand: "echo a"
      operator: bash
`;

function storeExec(s, sql) {
    if (s.mode === 'api') {
        const u = new URL(process.env.GUST_TEST_PG_URL);
        u.pathname = `/${s.db}`;
        return execFileSync('psql', ['-qAtX', u.toString(), '-c', sql], { encoding: 'utf8' }).trim();
    }
    return execFileSync('sqlite3', [path.join(s.home, 'gust.db'), sql], { encoding: 'utf8' }).trim();
}

const modes = [['standalone', true], ['api', servicesAvailable()]];

for (const [mode, available] of modes) {
    describe(`DAG resources (${mode})`, { skip: available ? false : 'GUST_TEST_* servers not set (bash tests/services.sh start)' }, () => {
        let s;
        const get = async (p, query, status = 200, as = 'Viewer') => assertResponse(await api(s, 'GET', p, { query, as }), status);
        const ids = (b) => b.dags.map((d) => d.dag_id);

        before(async () => {
            s = await startGust({
                mode,
                dags: { 'etl.yml': ETL, 'reports.yml': REPORTS, 'ticker.yml': TICKER, 'misc.yml': MISC, 'broken.yml': BROKEN },
            });
            // the DAG processor stores the DAGs and the scheduler computes next runs shortly after the start
            await waitFor(async () => {
                const r = await api(s, 'GET', '/api/v2/dags', { query: { limit: 100 } });
                return r.status === 200 && r.json.total_entries === DAG_IDS.length &&
                    r.json.dags.find((d) => d.dag_id === 'etl_sales')?.next_dagrun_run_after;
            }, 60000, 200);
        });
        after(async () => { if (s) await s.stop(); });

        test('GET /dags: every DAG with the fields Airflow has, strictly valid', async () => {
            const b = await get('/api/v2/dags', { limit: 100 });
            assert.deepEqual(ids(b), DAG_IDS);
            assert.equal(b.total_entries, DAG_IDS.length);
            for (const d of b.dags) validate('DAGResponse', d, { strict: true, what: d.dag_id });
            const e = b.dags.find((d) => d.dag_id === 'etl_sales');
            assert.equal(e.dag_display_name, 'Sales ETL pipeline');
            assert.equal(e.description, 'Sales ETL');
            assert.deepEqual(e.owners, ['alice']);
            assert.deepEqual(e.tags.map((t) => t.name).sort(), ['etl', 'sales']);
            assert.deepEqual(e.tags[0], { name: e.tags[0].name, dag_id: 'etl_sales', dag_display_name: 'Sales ETL pipeline' });
            assert.equal(e.is_paused, false);
            assert.equal(e.is_stale, false);
            assert.equal(e.has_task_concurrency_limits, true);
            assert.equal(e.max_consecutive_failed_dag_runs, 3);
            assert.equal(e.max_active_runs, 16, 'the setting core.max_active_runs_per_dag when the DAG sets none');
            assert.equal(e.timetable_summary, '@daily');
            assert.equal(e.relative_fileloc, 'etl.yml');
            assert.ok(e.fileloc.endsWith('/etl.yml'), e.fileloc);
            assert.equal(e.bundle_name, null);
            assert.equal(Buffer.from(e.file_token, 'base64url').toString(), 'etl_sales');
            assert.ok(e.next_dagrun_run_after, 'when the next run may be created is known');
            assert.ok(e.last_parsed_time);
            assert.equal(e.has_import_errors, false);
            const m = b.dags.find((d) => d.dag_id === 'etl_marketing');
            assert.equal(m.dag_display_name, 'etl_marketing', 'the dag_id when the DAG sets no display name');
            assert.equal(m.has_task_concurrency_limits, false);
            assert.equal(m.timetable_description, 'Never, external triggers only');
            assert.equal(m.next_dagrun_logical_date, null);
            assert.equal(b.dags.find((d) => d.dag_id === 'good_in_broken').has_import_errors, true,
                'a DAG whose file has an import error says so');
            assert.equal(b.dags.find((d) => d.dag_id === 'report_weekly').is_paused, true, 'is_paused_upon_creation');
        });

        test('GET /dags filters: tags (any/all), owners, patterns, paused, import errors', async () => {
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: 'etl' })), ['etl_marketing', 'etl_sales']);
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: ['sales', 'weekly'] })), ['etl_sales', 'report_weekly']);
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: ['sales', 'weekly'], tags_match_mode: 'any' })),
                ['etl_sales', 'report_weekly']);
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: ['etl', 'sales'], tags_match_mode: 'all' })), ['etl_sales']);
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: ['reports', 'weekly'], tags_match_mode: 'all' })), ['report_weekly']);
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: 'eTL' })), [], 'tags match exactly');
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: 'et' })), [], 'a tag is a whole element');
            assert.deepEqual(ids(await get('/api/v2/dags', { owners: 'carol' })), ['report_daily', 'report_weekly']);
            assert.deepEqual(ids(await get('/api/v2/dags', { owners: ['alice', 'bob'] })), ['etl_marketing', 'etl_sales']);
            assert.deepEqual(ids(await get('/api/v2/dags', { owners: '%' })), [], 'owners are literal, % is no wildcard');
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_id_pattern: 'report' })), ['report_daily', 'report_weekly']);
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_id_pattern: 'REPORT_D' })), ['report_daily'], 'case-insensitive');
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_id_pattern: 'etl_sales | ticker' })), ['etl_sales', 'ticker']);
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_id_pattern: 'b_c' })), ['ab_c', 'abxc'], '_ is a wildcard');
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_id_pattern: 'b\\_c' })), ['ab_c'], '\\_ is a literal _');
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_id_pattern: 'a%c' })), ['ab_c', 'abxc']);
            assert.equal((await get('/api/v2/dags', { dag_id_pattern: '~' })).total_entries, DAG_IDS.length, '~ is everything');
            assert.equal((await get('/api/v2/dags', { dag_id_pattern: 'x\\' })).total_entries, 0, 'a trailing backslash is no error');
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_display_name_pattern: 'pipeline' })), ['etl_sales']);
            assert.deepEqual(ids(await get('/api/v2/dags', { paused: true })), ['report_weekly']);
            assert.equal((await get('/api/v2/dags', { paused: false })).total_entries, DAG_IDS.length - 1);
            assert.deepEqual(ids(await get('/api/v2/dags', { has_import_errors: true })), ['good_in_broken']);
            assert.deepEqual(ids(await get('/api/v2/dags', { is_favorite: true })), []);
            assert.deepEqual(ids(await get('/api/v2/dags', { tags: 'etl', dag_id_pattern: 'sales', owners: 'alice' })), ['etl_sales']);
        });

        test('GET /dags: last run filters and order use the latest started run', async () => {
            const r = await s.cli(['dags', 'trigger', 'ab_c', '--wait']);
            assert.equal(r.code, 0, r.stderr);
            // the ticker runs every 2 s too, so its last state varies: assertions name ab_c
            const has = (b, id) => ids(b).includes(id);
            const ok = await get('/api/v2/dags', { last_dag_run_state: 'success', limit: 100 });
            assert.ok(has(ok, 'ab_c') && !has(ok, 'abxc'), JSON.stringify(ids(ok)));
            assert.ok(!has(await get('/api/v2/dags', { last_dag_run_state: 'failed' }), 'ab_c'));
            assert.ok(has(await get('/api/v2/dags', { dag_run_state: ['failed', 'success'] }), 'ab_c'));
            assert.ok(!has(await get('/api/v2/dags', { dag_run_state: 'failed' }), 'ab_c'));
            const since = await get('/api/v2/dags', { dag_run_start_date_gte: '2020-01-01T00:00:00Z', limit: 100 });
            assert.ok(has(since, 'ab_c') && !has(since, 'abxc'));
            assert.ok(!has(await get('/api/v2/dags', { dag_run_end_date_lte: '2020-01-01T00:00:00Z' }), 'ab_c'));
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_run_start_date_lt: '2020-01-01T00:00:00Z' })), []);
            // DAGs that have runs (the scheduled ones ran their latest interval at the start,
            // ab_c was just triggered) first, then the rest: NULLs last in both directions
            const withRuns = ['ab_c', 'etl_sales', 'report_daily', 'ticker'];
            for (const order of ['-last_run_start_date', 'last_run_start_date', 'state', '-state']) {
                const got = ids(await get('/api/v2/dags', { order_by: order, limit: 100 }));
                assert.deepEqual(got.slice(0, 4).sort(), withRuns, order);
                assert.deepEqual(got.slice(4), ['abxc', 'good_in_broken', 'report_weekly', 'etl_marketing'].sort(), order);
            }
            const newest = ids(await get('/api/v2/dags', { order_by: '-last_run_start_date' }))[0];
            assert.ok(['ab_c', 'ticker'].includes(newest), newest);
            const oldest = ids(await get('/api/v2/dags', { order_by: 'last_run_start_date' }))[0];
            assert.ok(['etl_sales', 'report_daily'].includes(oldest), oldest);
        });

        test('GET /dags order_by asc/desc, paging and total_entries', async () => {
            assert.deepEqual(ids(await get('/api/v2/dags', { order_by: '-dag_id', limit: 100 })), [...DAG_IDS].reverse());
            assert.deepEqual(ids(await get('/api/v2/dags', { order_by: 'dag_id', limit: 100 })), DAG_IDS);
            const byName = ids(await get('/api/v2/dags', { order_by: 'dag_display_name', limit: 100 }));
            // "Sales ETL pipeline" sorts before the lower-case ids (bytewise)
            assert.equal(byName[0], 'etl_sales');
            const next = await get('/api/v2/dags', { order_by: 'next_dagrun', limit: 100 });
            assert.equal(next.dags.at(-1).next_dagrun_run_after, null, 'DAGs without a next run come last');
            assert.ok(next.dags[0].next_dagrun_run_after, 'DAGs with a next run come first');
            const p1 = await get('/api/v2/dags', { limit: 3, offset: 0 });
            const p2 = await get('/api/v2/dags', { limit: 3, offset: 3 });
            const p3 = await get('/api/v2/dags', { limit: 3, offset: 6 });
            assert.deepEqual([...ids(p1), ...ids(p2), ...ids(p3)], DAG_IDS);
            for (const p of [p1, p2, p3]) assert.equal(p.total_entries, DAG_IDS.length);
            const past = await get('/api/v2/dags', { limit: 3, offset: 100 });
            assert.deepEqual(past.dags, []);
            assert.equal(past.total_entries, DAG_IDS.length, 'a page past the end still counts');
            const none = await get('/api/v2/dags', { limit: 0 });
            assert.deepEqual(none.dags, []);
            assert.equal(none.total_entries, DAG_IDS.length);
        });

        test('GET /dags rejects bad arguments with 400/422, never 5xx', async () => {
            await get('/api/v2/dags', { order_by: 'fileloc' }, 400);
            await get('/api/v2/dags', { tags_match_mode: 'some' }, 422);
            await get('/api/v2/dags', { paused: 'maybe' }, 422);
            await get('/api/v2/dags', { last_dag_run_state: 'done' }, 422);
            await get('/api/v2/dags', { dag_run_state: 'done' }, 422);
            await get('/api/v2/dags', { dag_run_start_date_gte: 'yesterday' }, 422);
            await get('/api/v2/dags', { limit: -1 }, 422);
            await get('/api/v2/dags', { offset: 'x' }, 422);
            const bad = await api(s, 'GET', '/api/v2/dags?dag_id_pattern=%FF%FE', { as: 'Viewer' });
            assert.equal(bad.status, 422, bad.text);
            const badTag = await api(s, 'GET', '/api/v2/dags?tags=%C3', { as: 'Viewer' });
            assert.equal(badTag.status, 422, badTag.text);
            const quote = await get('/api/v2/dags', { tags: '"],["etl', dag_id_pattern: "'; DROP TABLE dag; --" });
            assert.deepEqual(quote.dags, []);
            assert.equal((await get('/api/v2/dags')).total_entries, DAG_IDS.length);
            const anon = await api(s, 'GET', '/api/v2/dags', { as: null });
            assert.equal(anon.status, 401);
        });

        test('GET /dags/{dag_id} and /details', async () => {
            const d = await get(`/api/v2/dags/etl_sales`);
            validate('DAGResponse', d, { strict: true });
            assert.equal(d.dag_id, 'etl_sales');
            const det = await get(`/api/v2/dags/etl_sales/details`);
            validate('DAGDetailsResponse', det, { strict: true });
            assert.equal(det.catchup, false);
            assert.equal(det.dag_run_timeout, 'PT1H30M');
            assert.equal(det.doc_md, '# Sales');
            assert.equal(Date.parse(det.start_date), Date.parse('2024-01-01T00:00:00Z'));
            assert.equal(det.timezone, 'UTC');
            assert.equal(det.concurrency, det.max_active_tasks);
            assert.deepEqual(det.params.region.value, 'eu');
            assert.equal(det.params.region.__class, 'airflow.sdk.definitions.param.Param');
            assert.equal(det.latest_dag_version.version_number, 1);
            assert.equal(det.latest_dag_version.dag_id, 'etl_sales');
            assert.equal(det.is_paused_upon_creation, null);
            assert.equal(det.active_runs_count, 0);
            const w = await get('/api/v2/dags/report_weekly/details');
            assert.equal(w.is_paused_upon_creation, true);
            const nf = await get('/api/v2/dags/no_such_dag', undefined, 404);
            assert.equal(nf.detail, 'The Dag with ID: `no_such_dag` was not found');
            await get('/api/v2/dags/no_such_dag/details', undefined, 404);
            await get('/api/v2/dags/bad_in_broken', undefined, 404);
            const r = await api(s, 'GET', '/api/v2/dags/%FF', { as: 'Viewer' });
            assert.equal(r.status, 404, r.text);
        });

        test('GET /dags/{dag_id}/tasks and /tasks/{task_id}', async () => {
            const b = await get('/api/v2/dags/etl_sales/tasks');
            assert.equal(b.total_entries, 2);
            for (const t of b.tasks) validate('TaskResponse', t, { strict: true, what: t.task_id });
            assert.deepEqual(b.tasks.map((t) => t.task_id), ['extract', 'load']);
            const [extract, load] = b.tasks;
            assert.deepEqual(extract.downstream_task_ids, ['load']);
            assert.deepEqual(load.downstream_task_ids, []);
            assert.equal(load.operator_name, 'BashOperator');
            assert.deepEqual(load.class_ref, { module_path: 'airflow.operators.bash', class_name: 'BashOperator' });
            assert.equal(load.retries, 2);
            assert.deepEqual(load.retry_delay, { __type: 'TimeDelta', days: 0, seconds: 60, microseconds: 0 });
            assert.deepEqual(load.execution_timeout, { __type: 'TimeDelta', days: 0, seconds: 600, microseconds: 0 });
            assert.equal(extract.execution_timeout, null);
            assert.equal(load.owner, 'alice');
            assert.equal(load.trigger_rule, 'all_success');
            assert.equal(load.pool, 'default_pool');
            assert.equal(load.is_mapped, false);
            assert.deepEqual(load.extra_links, []);
            assert.ok(load.template_fields.includes('bash_command'), JSON.stringify(load.template_fields));
            assert.equal(load.params.region.value, 'eu');
            assert.equal(Date.parse(load.start_date), Date.parse('2024-01-01T00:00:00Z'));
            const desc = await get('/api/v2/dags/etl_sales/tasks', { order_by: '-task_id' });
            assert.deepEqual(desc.tasks.map((t) => t.task_id), ['load', 'extract']);
            await get('/api/v2/dags/etl_sales/tasks', { order_by: 'nope' }, 400);
            const one = await get('/api/v2/dags/etl_sales/tasks/load');
            validate('TaskResponse', one, { strict: true });
            assert.equal(one.task_id, 'load');
            const nf = await get('/api/v2/dags/etl_sales/tasks/nope', undefined, 404);
            assert.equal(nf.detail, 'Task with id nope not found');
            await get('/api/v2/dags/no_such_dag/tasks', undefined, 404);
        });

        test('GET /dagSources/{dag_id}: the file, as JSON or text; never a file outside the DAG folder', async () => {
            const text = fs.readFileSync(path.join(s.dagsDir, 'etl.yml'), 'utf8');
            const src = await get('/api/v2/dagSources/etl_sales');
            validate('DAGSourceResponse', src, { strict: true });
            assert.equal(src.content, text);
            assert.equal(src.version_number, 1);
            assert.equal(src.dag_display_name, 'Sales ETL pipeline');
            const plain = await api(s, 'GET', '/api/v2/dagSources/etl_sales', { as: 'Viewer', headers: { Accept: 'text/plain' } });
            assert.equal(plain.status, 200);
            assert.match(plain.headers.get('content-type'), /^text\/plain/);
            assert.equal(plain.text, text);
            const xml = await api(s, 'GET', '/api/v2/dagSources/etl_sales', { as: 'Viewer', headers: { Accept: 'application/xml' } });
            assert.equal(xml.status, 406);
            assert.equal((await get('/api/v2/dagSources/etl_sales', { version_number: 1 })).content, text);
            await get('/api/v2/dagSources/etl_sales', { version_number: 99 }, 404);
            await get('/api/v2/dagSources/no_such_dag', undefined, 404);

            // a row pointing outside the DAG folder (or through it with ..) is never read
            const q = (v) => `'${v.replaceAll("'", "''")}'`;
            for (const bad of ['/etc/passwd', `${s.dagsDir}/../home/../../../../etc/passwd`, s.dagsDir]) {
                storeExec(s, `UPDATE dag SET fileloc = ${q(bad)} WHERE dag_id = 'abxc'`);
                const b = await get('/api/v2/dagSources/abxc');
                assert.equal(b.content, null, `fileloc ${bad} must not be served`);
            }
            // a symlink in the folder to a file outside it is not followed either (a hidden name:
            // the DAG processor does not read it, so the row keeps the fileloc set here)
            const outside = path.join(s.home, 'outside.yml');
            fs.writeFileSync(outside, 'secret: not a DAG file\n');
            fs.symlinkSync(outside, path.join(s.dagsDir, '.link.yml'));
            storeExec(s, `UPDATE dag SET fileloc = ${q(path.join(s.dagsDir, '.link.yml'))} WHERE dag_id = 'abxc'`);
            assert.equal((await get('/api/v2/dagSources/abxc')).content, null);
            fs.rmSync(path.join(s.dagsDir, '.link.yml'));
            storeExec(s, `UPDATE dag SET fileloc = ${q(path.join(s.dagsDir, 'misc.yml'))} WHERE dag_id = 'abxc'`);
            assert.equal((await get('/api/v2/dagSources/abxc')).content, MISC);
        });

        test('GET /dagStats: runs per state, all four states listed', async () => {
            const b = await get('/api/v2/dagStats');
            validate('DagStatsCollectionResponse', b, { strict: true });
            const t = b.dags.find((d) => d.dag_id === 'ticker');
            assert.ok(t, JSON.stringify(b));
            assert.deepEqual(t.stats.map((x) => x.state), ['queued', 'running', 'success', 'failed']);
            assert.ok(t.stats.find((x) => x.state === 'success').count >= 1);
            assert.equal(b.total_entries, b.dags.length);
            assert.ok(!b.dags.some((d) => d.dag_id === 'abxc'), 'DAGs without runs are not listed');
            const only = await get('/api/v2/dagStats', { dag_ids: ['ticker', 'abxc'] });
            assert.deepEqual(only.dags.map((d) => d.dag_id), ['ticker']);
            assert.deepEqual((await get('/api/v2/dagStats', { dag_ids: 'abxc' })).dags, []);
        });

        test('GET /dagTags: names, pattern, order, paging', async () => {
            const all = await get('/api/v2/dagTags');
            validate('DAGTagCollectionResponse', all, { strict: true });
            assert.deepEqual(all.tags, ['etl', 'fast', 'marketing', 'reports', 'sales', 'weekly']);
            assert.equal(all.total_entries, 6);
            assert.deepEqual((await get('/api/v2/dagTags', { order_by: '-name' })).tags,
                ['weekly', 'sales', 'reports', 'marketing', 'fast', 'etl']);
            assert.deepEqual((await get('/api/v2/dagTags', { tag_name_pattern: 'MA|fa' })).tags, ['fast', 'marketing']);
            const page = await get('/api/v2/dagTags', { limit: 2, offset: 1 });
            assert.deepEqual(page.tags, ['fast', 'marketing']);
            assert.equal(page.total_entries, 6);
            const past = await get('/api/v2/dagTags', { limit: 2, offset: 10 });
            assert.deepEqual(past.tags, []);
            assert.equal(past.total_entries, 6);
            await get('/api/v2/dagTags', { order_by: 'dag_id' }, 400);
        });

        test('GET /importErrors and /importErrors/{id}', async () => {
            const b = await get('/api/v2/importErrors');
            validate('ImportErrorCollectionResponse', b, { strict: true });
            assert.equal(b.total_entries, 1);
            const e = b.import_errors[0];
            assert.equal(e.filename, 'broken.yml');
            assert.equal(e.bundle_name, null);
            assert.match(e.stack_trace, /broken\.yml:\d+: bad_in_broken: .*bash_comand/);
            const one = await get(`/api/v2/importErrors/${e.import_error_id}`);
            validate('ImportErrorResponse', one, { strict: true });
            assert.deepEqual(one, e);
            assert.equal((await get('/api/v2/importErrors', { filename_pattern: 'nothing' })).total_entries, 0);
            assert.equal((await get('/api/v2/importErrors', { filename_pattern: 'BROKEN' })).total_entries, 1);
            for (const o of ['id', '-timestamp', 'filename', 'import_error_id']) await get('/api/v2/importErrors', { order_by: o });
            await get('/api/v2/importErrors', { order_by: 'message' }, 400);
            const nf = await get('/api/v2/importErrors/999999', undefined, 404);
            assert.equal(nf.detail, 'The ImportError with import_error_id: `999999` was not found');
            await get('/api/v2/importErrors/abc', undefined, 422);
        });

        test('GET /dagWarnings: gust has none', async () => {
            const b = await get('/api/v2/dagWarnings');
            validate('DAGWarningCollectionResponse', b, { strict: true });
            assert.deepEqual(b, { dag_warnings: [], total_entries: 0 });
            await get('/api/v2/dagWarnings', { warning_type: 'bogus' }, 422);
        });

        test('GET /dags/{dag_id}/dagVersions: one per change of the file', async () => {
            const b = await get('/api/v2/dags/etl_marketing/dagVersions');
            validate('DAGVersionCollectionResponse', b, { strict: true });
            assert.equal(b.total_entries, 1);
            const v1 = b.dag_versions[0];
            assert.equal(v1.version_number, 1);
            assert.equal(v1.bundle_name, null);
            const all = await get('/api/v2/dags/~/dagVersions', { limit: 100 });
            assert.equal(all.total_entries, DAG_IDS.length);
            const one = await get('/api/v2/dags/etl_marketing/dagVersions/1');
            validate('DagVersionResponse', one, { strict: true });
            assert.deepEqual(one, v1);
            await get('/api/v2/dags/etl_marketing/dagVersions/2', undefined, 404);
            await get('/api/v2/dags/etl_marketing/dagVersions/x', undefined, 422);
            await get('/api/v2/dags/no_such_dag/dagVersions', undefined, 404);

            // change the file: a second version, the source follows the newest
            const changed = ETL.replace('operator: empty', 'operator: empty\n      retries: 1');
            s.writeDag('etl.yml', changed);
            const two = await waitFor(async () => {
                const x = await get('/api/v2/dags/etl_marketing/dagVersions', { order_by: '-version_number' });
                return x.total_entries === 2 && x;
            }, 30000, 200);
            assert.deepEqual(two.dag_versions.map((v) => v.version_number), [2, 1]);
            assert.equal((await get('/api/v2/dags/etl_marketing/dagVersions', { version_number: 2 })).total_entries, 1);
            assert.equal((await get('/api/v2/dags/etl_marketing/details')).latest_dag_version.version_number, 2);
            const src = await get('/api/v2/dagSources/etl_marketing');
            assert.equal(src.version_number, 2);
            assert.equal(src.content, changed);
            const old = await get('/api/v2/dagSources/etl_marketing', { version_number: 1 });
            assert.equal(old.version_number, 1);
            assert.equal(old.content, null, 'the text of an older version is not kept');
            const task = await get('/api/v2/dags/etl_marketing/tasks/only');
            assert.equal(task.retries, 1);
        });

        test('PATCH /dags/{dag_id}: pause stops the scheduler, unpause resumes it; roles and bad bodies', async () => {
            const viewer = await api(s, 'PATCH', '/api/v2/dags/ticker', { as: 'Viewer', body: { is_paused: true } });
            assert.equal(viewer.status, 403);
            const d = assertResponse(await api(s, 'PATCH', '/api/v2/dags/ticker', { as: 'User', body: { is_paused: true } }));
            validate('DAGResponse', d, { strict: true });
            assert.equal(d.is_paused, true);
            assert.ok(ids(await get('/api/v2/dags', { paused: true })).includes('ticker'));
            const runs = async () => (await get('/api/v2/dagStats', { dag_ids: 'ticker' })).dags[0].stats.reduce((a, x) => a + x.count, 0);
            await sleep(2500); // a run being created as the pause landed may still appear
            const before = await runs();
            await sleep(5000);
            assert.equal(await runs(), before, 'no run is created while the DAG is paused');

            const un = assertResponse(await api(s, 'PATCH', '/api/v2/dags/ticker', {
                as: 'User', body: { is_paused: false }, query: { update_mask: 'is_paused' },
            }));
            assert.equal(un.is_paused, false);
            await waitFor(async () => (await runs()) > before, 30000, 300);

            const bad = async (body, status, query) => assertResponse(await api(s, 'PATCH', '/api/v2/dags/ticker', { as: 'User', body, query }), status);
            await bad({ is_paused: 'yes' }, 422);
            await bad({}, 422);
            await bad({ is_paused: true, description: 'x' }, 422);
            await bad([true], 422);
            await bad('{"is_paused": tru', 422);
            await bad({ is_paused: true }, 400, { update_mask: 'description' });
            const nf = assertResponse(await api(s, 'PATCH', '/api/v2/dags/no_such_dag', { as: 'User', body: { is_paused: true } }), 404);
            assert.equal(nf.detail, 'Dag with id: no_such_dag was not found');
            assert.equal((await get('/api/v2/dags/ticker')).is_paused, false);
            // both changes are in the event log, with who made them
            assert.equal(storeExec(s, "SELECT COUNT(*) FROM event_log WHERE event = 'api.patch_dag' AND dag_id = 'ticker' " +
                `AND owner = 'api:${s.user('User').username}'`), '2');
        });

        test('PATCH /dags: pause the DAGs a filter selects', async () => {
            const b = assertResponse(await api(s, 'PATCH', '/api/v2/dags', {
                as: 'User', body: { is_paused: true }, query: { dag_id_pattern: 'report' },
            }));
            validate('DAGCollectionResponse', b);
            assert.deepEqual(ids(b), ['report_daily', 'report_weekly']);
            assert.ok(b.dags.every((d) => d.is_paused === true));
            assert.equal(b.total_entries, 2);
            assert.equal((await get('/api/v2/dags/report_daily')).is_paused, true);
            const u = assertResponse(await api(s, 'PATCH', '/api/v2/dags', {
                as: 'User', body: { is_paused: false }, query: { tags: 'reports', owners: 'carol', limit: 1 },
            }));
            assert.deepEqual(ids(u), ['report_daily'], 'limit bounds what is patched');
            assert.equal(u.total_entries, 2);
            assert.equal((await get('/api/v2/dags/report_daily')).is_paused, false);
            assert.equal((await get('/api/v2/dags/report_weekly')).is_paused, true);
            const v = await api(s, 'PATCH', '/api/v2/dags', { as: 'Viewer', body: { is_paused: true }, query: { dag_id_pattern: 'x' } });
            assert.equal(v.status, 403);
        });

        test('DELETE /dags/{dag_id}: the metadata goes (Op and above), running tasks refuse it', async () => {
            const r = await s.cli(['dags', 'trigger', 'etl_marketing', '--wait']);
            assert.equal(r.code, 0, r.stderr);
            assert.ok((await get('/api/v2/dagStats', { dag_ids: 'etl_marketing' })).dags.length === 1);
            const user = await api(s, 'DELETE', '/api/v2/dags/etl_marketing', { as: 'User' });
            assert.equal(user.status, 403);
            const del = await api(s, 'DELETE', '/api/v2/dags/etl_marketing', { as: 'Op' });
            // Airflow answers 204 (its generated spec says 200)
            assert.equal(del.status, 204, del.text);
            await get('/api/v2/dags/etl_marketing', undefined, 404);
            assert.deepEqual((await get('/api/v2/dagStats', { dag_ids: 'etl_marketing' })).dags, []);
            assert.equal(storeExec(s, "SELECT COUNT(*) FROM task_instance WHERE dag_id = 'etl_marketing'"), '0');
            assert.equal(storeExec(s, "SELECT COUNT(*) FROM dag_version WHERE dag_id = 'etl_marketing'"), '0');
            assert.equal(storeExec(s, "SELECT COUNT(*) FROM event_log WHERE event = 'api.delete_dag' AND dag_id = 'etl_marketing'"), '1');
            const again = assertResponse(await api(s, 'DELETE', '/api/v2/dags/etl_marketing', { as: 'Op' }), 404);
            assert.equal(again.detail, 'Dag with id: etl_marketing was not found');
            assert.ok(!ids(await get('/api/v2/dags', { limit: 100 })).includes('etl_marketing'));

            // a running task instance makes the delete a 409 and changes nothing
            storeExec(s, "UPDATE task_instance SET state = 'running' WHERE id = (SELECT id FROM task_instance WHERE dag_id = 'ticker' LIMIT 1)");
            const busy = assertResponse(await api(s, 'DELETE', '/api/v2/dags/ticker', { as: 'Op' }), 409);
            assert.equal(busy.detail, "Task instances of dag with id: 'ticker' are still running");
            await get('/api/v2/dags/ticker');
        });

        test('POST /gust/dags/validate: good and bad documents, nothing stored', async () => {
            const ok = assertValidate(await api(s, 'POST', '/api/v2/gust/dags/validate', {
                as: 'Viewer', body: GOOD_DOC, headers: { 'Content-Type': 'application/yaml' },
            }));
            assert.deepEqual(ok, { valid: true, dags: [{ dag_id: 'validated_dag', tasks: 2 }], errors: [], warnings: [] });
            const bad = assertValidate(await api(s, 'POST', '/api/v2/gust/dags/validate', {
                as: 'Viewer', body: BAD_DOC, headers: { 'Content-Type': 'application/yaml' },
            }));
            assert.equal(bad.valid, false);
            assert.deepEqual(bad.dags, []);
            const typo = bad.errors.find((e) => /bash_comand/.test(e.message));
            assert.ok(typo, JSON.stringify(bad.errors));
            assert.equal(typo.line, 5);
            assert.equal(typo.dag_id, 'validated_bad');
            assert.equal(typo.file, 'dag.yml');
            assert.match(typo.message, /did you mean 'bash_command'/);
            // the JSON wrapper names the file (its base name only)
            const wrapped = assertValidate(await api(s, 'POST', '/api/v2/gust/dags/validate', {
                as: 'Viewer', body: { filename: '/etc/x/mine.yaml', content: BAD_DOC },
            }));
            assert.ok(wrapped.errors.every((e) => e.file === 'mine.yaml'), JSON.stringify(wrapped.errors));
            assert.ok(wrapped.errors.some((e) => e.line === 5));
            // a JSON DAG document
            const jsonDoc = { json_dag: { schedule: null, tasks: [{ task_id: 'x', operator: 'empty' }] } };
            const j = assertValidate(await api(s, 'POST', '/api/v2/gust/dags/validate', { as: 'Viewer', body: jsonDoc }));
            assert.deepEqual(j.dags, [{ dag_id: 'json_dag', tasks: 1 }]);
            // a YAML syntax error is an error with a line, not a failure of the request
            const syn = assertValidate(await api(s, 'POST', '/api/v2/gust/dags/validate', {
                as: 'Viewer', body: 'a:\n  b: [1, 2\n', headers: { 'Content-Type': 'application/yaml' },
            }));
            assert.equal(syn.valid, false);
            assert.ok(syn.errors[0].line >= 1);
            // a reference to another file is refused, never read: the server's files stay its own
            const ref = assertValidate(await api(s, 'POST', '/api/v2/gust/dags/validate', {
                as: 'Viewer', headers: { 'Content-Type': 'application/yaml' },
                body: 'ref_dag:\n  schedule:\n    datasets: "a"\n    file: /etc/passwd\n  tasks:\n    - {task_id: x, operator: empty}\n',
            }));
            assert.equal(ref.valid, false);
            assert.ok(ref.errors.some((e) => /is not read when a DAG is validated from text/.test(e.message)), JSON.stringify(ref.errors));
            assert.ok(!JSON.stringify(ref).includes('root:'), 'no content of /etc/passwd in the answer');
            const empty = await api(s, 'POST', '/api/v2/gust/dags/validate', { as: 'Viewer', body: '', headers: { 'Content-Type': 'application/yaml' } });
            assert.equal(empty.status, 422);
            const notString = await api(s, 'POST', '/api/v2/gust/dags/validate', { as: 'Viewer', body: { content: 5 } });
            assert.equal(notString.status, 422);
            assert.equal((await api(s, 'POST', '/api/v2/gust/dags/validate', { as: null, body: GOOD_DOC })).status, 401);
            // nothing was stored
            await get('/api/v2/dags/validated_dag', undefined, 404);
            await get('/api/v2/dags/json_dag', undefined, 404);
        });

        // The list reads no serialised DAG: what it shows from one is copied onto the dag row at
        // every sync, and must follow the file both ways (set, then unset).
        test('GET /dags: display name, schedule kind, failure limit, task limits live on the dag row and follow the file', async () => {
            const row = (id) => storeExec(s, 'SELECT display_name, schedule_kind, max_consecutive_failed_dag_runs, ' +
                `has_task_concurrency_limits FROM dag WHERE dag_id = '${id}'`);
            assert.equal(row('etl_sales'), 'Sales ETL pipeline|cron|3|1');
            assert.equal(row('report_daily'), '|cron|0|0');
            const before = (await get('/api/v2/dags', { dag_id_pattern: 'report_daily' })).dags[0];
            assert.equal(before.dag_display_name, 'report_daily');
            assert.equal(before.has_task_concurrency_limits, false);

            const changed = REPORTS.replace('report_daily:\n  schedule: "0 6 * * *"',
                'report_daily:\n  dag_display_name: "Daily numbers"\n  max_consecutive_failed_dag_runs: 5\n  schedule: null\n' +
                '  description: "say \\"hi\\" \\\\ tab\\t nl\\n ctl\\x01 ü ✓"')
                .replace('bash_command: "echo report"', 'bash_command: "echo report"\n      max_active_tis_per_dag: 1');
            assert.notEqual(changed, REPORTS);
            s.writeDag('reports.yml', changed);
            const after = await waitFor(async () => {
                const d = (await get('/api/v2/dags', { dag_id_pattern: 'report_daily' })).dags[0];
                return d.dag_display_name === 'Daily numbers' && d;
            }, 30000, 200);
            assert.equal(row('report_daily'), 'Daily numbers|none|5|1');
            assert.equal(after.max_consecutive_failed_dag_runs, 5);
            assert.equal(after.has_task_concurrency_limits, true);
            assert.equal(after.timetable_description, 'Never, external triggers only');
            // written as JSON text by gust, not by cJSON: escaping checked on a nasty string
            assert.equal(after.description, 'say "hi" \\ tab\t nl\n ctl\x01 ü ✓');
            assert.ok(after.tags.every((t) => t.dag_display_name === 'Daily numbers'));
            validate('DAGResponse', after, { strict: true });
            // the one-DAG answers and the details (which parse the version) say the same
            assert.deepEqual(await get('/api/v2/dags/report_daily'), after);
            const details = await get('/api/v2/dags/report_daily/details');
            for (const k of Object.keys(after)) assert.deepEqual(details[k], after[k], k);
            // filter and order by the display name use the row's
            assert.deepEqual(ids(await get('/api/v2/dags', { dag_display_name_pattern: 'numbers' })), ['report_daily']);
            const byName = (await get('/api/v2/dags', { order_by: 'dag_display_name', limit: 100 })).dags.map((d) => d.dag_display_name);
            assert.ok(byName.includes('Daily numbers'));
            assert.deepEqual(byName, [...byName].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0)));
            const stats = await get('/api/v2/dagStats', { dag_ids: 'report_daily' });
            for (const d of stats.dags) assert.equal(d.dag_display_name, 'Daily numbers');

            // back to the old file: the copied fields are cleared, not left behind
            s.writeDag('reports.yml', REPORTS);
            await waitFor(async () => (await get('/api/v2/dags', { dag_id_pattern: 'report_daily' })).dags[0].dag_display_name === 'report_daily', 30000, 200);
            assert.equal(row('report_daily'), '|cron|0|0');
        });
    });
}

function assertValidate(res) {
    assert.equal(res.status, 200, res.text);
    const b = res.json;
    assert.equal(typeof b.valid, 'boolean');
    assert.ok(Array.isArray(b.dags) && Array.isArray(b.errors) && Array.isArray(b.warnings), res.text);
    for (const e of b.errors) {
        assert.equal(typeof e.line, 'number');
        assert.equal(typeof e.message, 'string');
        assert.ok(e.dag_id === null || typeof e.dag_id === 'string');
    }
    return b;
}
