// DAG runs on the REST API (api/routes_runs.c): trigger, list and its filters, the batch list,
// get, patch (mark success / failed / queued, note), delete, clear, wait (NDJSON stream) and the
// asset events that triggered a run. Each body is validated against Airflow's v2 spec; the
// effects are checked where they land (task instance states through the CLI, rows in the store,
// XCom values a task pushed). Runs in standalone (SQLite) and, when the test servers are up, in
// the distributed deployment (PostgreSQL, RabbitMQ, Redis).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, assertResponse, enc, servicesAvailable, startGust, validate, waitFor } from './lib.mjs';

const RUNS = '/api/v2/dags';

function dagFiles(marker) {
    return {
        'runs_conf.yml': `
runs_conf:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: echo_conf
      operator: bash
      bash_command: "echo msg={{ dag_run.conf.msg }}"
`,
        'runs_other.yml': `
runs_other:
  schedule: null
  start_date: 2024-01-01
  dag_display_name: "Other runs"
  tasks:
    - task_id: hello
      operator: bash
      bash_command: "echo other"
`,
        'runs_slow.yml': `
runs_slow:
  schedule: null
  start_date: 2024-01-01
  max_active_runs: 16
  tasks:
    - task_id: quick
      operator: bash
      bash_command: "echo quick"
    - task_id: long
      operator: bash
      bash_command: "sleep 300"
    - task_id: after_long
      operator: bash
      bash_command: "echo after"
      dependencies: [long]
`,
        'runs_flaky.yml': `
runs_flaky:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: flaky
      operator: bash
      retries: 0
      bash_command: "if [ -f '${marker}' ]; then echo second; else touch '${marker}'; exit 1; fi"
    - task_id: down
      operator: bash
      bash_command: "echo down"
      dependencies: [flaky]
`,
        'runs_paused.yml': `
runs_paused:
  schedule: null
  start_date: 2024-01-01
  is_paused_upon_creation: true
  tasks:
    - task_id: hello
      operator: bash
      bash_command: "echo paused"
`,
        'runs_producer.yml': `
runs_producer:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: make
      operator: bash
      bash_command: "echo made"
      outlets: ["test://runs/asset"]
`,
        'runs_consumer.yml': `
runs_consumer:
  schedule: ["test://runs/asset"]
  start_date: 2024-01-01
  tasks:
    - task_id: use
      operator: bash
      bash_command: "echo used"
`,
    };
}

// Run SQL on the server's store and return the first column of the first row.
function storeScalar(s, sql) {
    if (s.mode === 'api') {
        const u = new URL(process.env.GUST_TEST_PG_URL);
        u.pathname = `/${s.db}`;
        return execFileSync('psql', ['-qAtX', u.toString(), '-c', sql], { encoding: 'utf8' }).trim();
    }
    return execFileSync('sqlite3', [path.join(s.home, 'gust.db'), sql], { encoding: 'utf8' }).trim();
}

// Timestamps are compared as instants (gust always writes microseconds).
const sameTime = (got, want) => assert.equal(Date.parse(got), Date.parse(want), `${got} is not ${want}`);

const q = (v) => `'${String(v).replaceAll("'", "''")}'`;

// Trigger, retrying 404 while the DAG processor has not stored the DAG yet.
async function trigger(s, dagId, body, { as = 'Admin', status = 200 } = {}) {
    const r = await waitFor(async () => {
        const x = await api(s, 'POST', `${RUNS}/${enc(dagId)}/dagRuns`, { as, body });
        return x.status === 404 && status !== 404 ? false : x;
    }, 30000, 200);
    return assertResponse(r, status);
}

async function getRun(s, dagId, runId, as = 'Viewer') {
    return assertResponse(await api(s, 'GET', `${RUNS}/${enc(dagId)}/dagRuns/${enc(runId)}`, { as }));
}

async function runFinished(s, dagId, runId, timeoutMs = 60000) {
    return waitFor(async () => {
        const r = await getRun(s, dagId, runId);
        return r.state === 'success' || r.state === 'failed' ? r : false;
    }, timeoutMs, 150);
}

async function tiStates(s, dagId, runId) {
    const r = await s.cli(['tasks', 'states', dagId, runId, '--output', 'json']);
    assert.ok(r.stdout.trim().startsWith('{'), `gust tasks states ${dagId} ${runId}: ${r.stderr}${r.stdout}`);
    const doc = JSON.parse(r.stdout);
    return Object.fromEntries(doc.tasks.map((t) => [t.task_id, t.state]));
}

async function tiStatesUntil(s, dagId, runId, pred, timeoutMs = 30000) {
    return waitFor(async () => {
        const st = await tiStates(s, dagId, runId);
        return pred(st) ? st : false;
    }, timeoutMs, 150);
}

// The wait stream, read line by line as it arrives.
async function openWait(s, dagId, runId, query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) for (const x of [].concat(v)) qs.append(k, String(x));
    const res = await fetch(`${s.url}${RUNS}/${enc(dagId)}/dagRuns/${enc(runId)}/wait?${qs}`, {
        headers: { Authorization: `Bearer ${await s.token('Viewer')}` },
        signal: AbortSignal.timeout(90000),
    });
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const lines = [];
    let ended = false;
    return {
        res,
        lines,
        // the next complete line (parsed), or null at the end of the stream
        async next() {
            for (;;) {
                const nl = buf.indexOf('\n');
                if (nl >= 0) {
                    const line = buf.slice(0, nl);
                    buf = buf.slice(nl + 1);
                    const doc = JSON.parse(line);
                    lines.push({ at: Date.now(), doc });
                    return doc;
                }
                if (ended) {
                    assert.equal(buf, '', `the stream ended inside a line: ${buf}`);
                    return null;
                }
                const { value, done } = await reader.read();
                if (done) ended = true;
                else buf += dec.decode(value, { stream: true });
            }
        },
        async rest() {
            const out = [];
            for (let d = await this.next(); d !== null; d = await this.next()) out.push(d);
            return out;
        },
    };
}

const modes = [['standalone', true], ['api', servicesAvailable()]];

for (const [mode, available] of modes) {
    describe(`dag runs (${mode})`, { skip: available ? false : 'GUST_TEST_* servers not set (bash tests/services.sh start)' }, () => {
        let s;
        const marker = path.join(os.tmpdir(), `gust-runs-flaky-${process.pid}-${mode}`);

        before(async () => {
            fs.rmSync(marker, { force: true });
            s = await startGust({ mode, dags: dagFiles(marker) });
        });
        after(async () => {
            fs.rmSync(marker, { force: true });
            if (s) await s.stop();
        });

        test('trigger with conf: the task sees it, the run succeeds, wait returns its XCom', async () => {
            const run = await trigger(s, 'runs_conf', { conf: { msg: 'hello' }, note: 'from the test', logical_date: null });
            validate('DAGRunResponse', run, { strict: true });
            assert.equal(run.dag_id, 'runs_conf');
            assert.equal(run.run_type, 'manual');
            assert.equal(run.triggered_by, 'rest_api');
            assert.equal(run.triggering_user_name, s.user('Admin').username);
            assert.ok(['queued', 'running'].includes(run.state), run.state); // the scheduler may be quick
            assert.deepEqual(run.conf, { msg: 'hello' });
            assert.equal(run.note, 'from the test');
            assert.equal(run.logical_date, null);
            assert.equal(run.data_interval_start, null);
            assert.match(run.dag_run_id, /^manual__\d{4}-\d\d-\d\dT/);
            assert.equal(run.dag_versions.length, 1);
            assert.equal(run.dag_versions[0].version_number, 1);
            assert.equal(run.dag_versions[0].dag_id, 'runs_conf');
            assert.equal(run.dag_display_name, 'runs_conf');
            assert.ok(run.queued_at && run.run_after);

            const done = await runFinished(s, 'runs_conf', run.dag_run_id);
            assert.equal(done.state, 'success');
            assert.ok(done.start_date && done.end_date);
            assert.equal(typeof done.duration, 'number');
            assert.ok(done.duration >= 0);

            // wait on a finished run: one line, with the task's return value
            const r = await api(s, 'GET', `${RUNS}/runs_conf/dagRuns/${enc(run.dag_run_id)}/wait`,
                { as: 'Viewer', query: { interval: 1, result: ['echo_conf', 'no_such_task'] } });
            assert.equal(r.status, 200, r.text);
            assert.match(r.headers.get('content-type'), /application\/x-ndjson/);
            const lines = r.text.trimEnd().split('\n').map((l) => JSON.parse(l));
            assert.deepEqual(lines, [{ state: 'success', results: { echo_conf: 'msg=hello' } }]);
        });

        test('trigger with a logical date and a run id; 409 on duplicates; 404; validation', async () => {
            const body = { dag_run_id: 'api_run_1', logical_date: '2024-03-01T00:00:00Z', conf: {} };
            const run = await trigger(s, 'runs_other', body);
            validate('DAGRunResponse', run, { strict: true });
            assert.equal(run.dag_run_id, 'api_run_1');
            sameTime(run.logical_date, '2024-03-01T00:00:00Z');
            sameTime(run.data_interval_start, '2024-03-01T00:00:00Z');
            sameTime(run.data_interval_end, '2024-03-01T00:00:00Z');
            sameTime(run.run_after, '2024-03-01T00:00:00Z');
            assert.equal(run.dag_display_name, 'Other runs');
            assert.equal(run.dag_versions[0].dag_display_name, 'Other runs');

            let r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`, { body: { dag_run_id: 'api_run_1' } });
            assertResponse(r, 409);
            assert.match(r.json.detail, /api_run_1/);
            r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`,
                { body: { dag_run_id: 'api_run_2', logical_date: '2024-03-01T00:00:00+00:00' } });
            assertResponse(r, 409);
            assert.match(r.json.detail, /logical_date/);

            r = await api(s, 'POST', `${RUNS}/no_such_dag/dagRuns`, { body: {} });
            assertResponse(r, 404);
            assert.match(r.json.detail, /no_such_dag/);

            for (const [bad, field] of [
                [{ conf: [1, 2] }, 'conf'],
                [{ conf: 'text' }, 'conf'],
                [{ confx: {} }, 'confx'],
                [{ logical_date: 'yesterday' }, 'logical_date'],
                [{ logical_date: 5 }, 'logical_date'],
                [{ data_interval_start: '2024-01-01T00:00:00Z' }, 'data_interval_end'],
                [{ dag_run_id: 7 }, 'dag_run_id'],
                [{ note: {} }, 'note'],
            ]) {
                r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`, { body: bad });
                assertResponse(r, 422);
                assert.deepEqual(r.json.detail[0].loc, ['body', field], JSON.stringify(bad));
            }
            r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`, { body: '{"conf": ' });
            assertResponse(r, 422);
            r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`, { body: '[]' });
            assertResponse(r, 422);
            r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`, { body: { dag_run_id: 'has space/slash' } });
            assertResponse(r, 400);

            // data interval given explicitly: the run is due at its end
            const ran = await trigger(s, 'runs_other', {
                dag_run_id: 'api_run_interval', logical_date: '2024-04-01T00:00:00Z',
                data_interval_start: '2024-03-31T00:00:00Z', data_interval_end: '2024-04-01T00:00:00Z',
            });
            sameTime(ran.data_interval_start, '2024-03-31T00:00:00Z');
            sameTime(ran.run_after, '2024-04-01T00:00:00Z');
        });

        test('a paused DAG can be triggered; its tasks wait until the DAG is unpaused', async () => {
            await trigger(s, 'runs_paused', { dag_run_id: 'while_paused' });
            await new Promise((res) => setTimeout(res, 2500));
            // gust's scheduler may start the run, but queues none of its tasks while paused
            assert.ok(['queued', 'running'].includes((await getRun(s, 'runs_paused', 'while_paused')).state));
            const st = await tiStates(s, 'runs_paused', 'while_paused');
            assert.ok([null, 'scheduled'].includes(st.hello), `hello is ${st.hello} while its DAG is paused`);
            const u = await s.cli(['dags', 'unpause', 'runs_paused']);
            assert.equal(u.code, 0, u.stderr);
            assert.equal((await runFinished(s, 'runs_paused', 'while_paused')).state, 'success');
        });

        test('roles: Viewer reads but cannot trigger, patch, clear or delete; User can', async () => {
            let r = await api(s, 'POST', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', body: {} });
            assertResponse(r, 403);
            r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer' });
            assertResponse(r, 200);
            const run = await trigger(s, 'runs_other', { dag_run_id: 'by_user' }, { as: 'User' });
            assert.equal(run.triggered_by, 'rest_api');
            // the API records who triggered it, and the list filters on it
            assert.equal(run.triggering_user_name, s.user('User').username);
            const mine = assertResponse(await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, {
                as: 'Viewer', query: { triggering_user_name_pattern: s.user('User').username } }));
            assert.deepEqual(mine.dag_runs.map((x) => x.dag_run_id), ['by_user']);
            const p = `${RUNS}/runs_other/dagRuns/by_user`;
            assertResponse(await api(s, 'PATCH', p, { as: 'Viewer', body: { note: 'x' } }), 403);
            assertResponse(await api(s, 'POST', `${p}/clear`, { as: 'Viewer', body: {} }), 403);
            assertResponse(await api(s, 'DELETE', p, { as: 'Viewer' }), 403);
            assertResponse(await api(s, 'GET', p, { as: null }), 401);
            assertResponse(await api(s, 'PATCH', p, { as: 'User', body: { note: 'by a user' } }), 200);
            assertResponse(await api(s, 'POST', `${RUNS}/~/dagRuns/list`, { as: 'Viewer', body: {} }), 200);
        });

        test('list: filters, order, paging, across DAGs with ~, and the batch list', async () => {
            for (const [id, date] of [['list_a', '2023-01-01T00:00:00Z'], ['list_b', '2023-02-01T00:00:00Z'],
                ['list_c', '2023-03-01T00:00:00Z']]) {
                await trigger(s, 'runs_other', { dag_run_id: id, logical_date: date, conf: { which: id } });
            }
            await trigger(s, 'runs_conf', { dag_run_id: 'list_conf', logical_date: '2023-02-15T00:00:00Z', conf: { msg: '50%_off' } });
            const list = async (dag, query, as = 'Viewer') =>
                assertResponse(await api(s, 'GET', `${RUNS}/${enc(dag)}/dagRuns`, { as, query }));

            let doc = await list('runs_other', { run_id_pattern: 'list_' });
            validate('DAGRunCollectionResponse', doc, { strict: true });
            assert.equal(doc.total_entries, 3);
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_a', 'list_b', 'list_c']);

            doc = await list('runs_other', { run_id_pattern: 'list_', order_by: '-logical_date' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_c', 'list_b', 'list_a']);
            doc = await list('runs_other', { run_id_pattern: 'list_', order_by: '-logical_date', limit: 1, offset: 1 });
            assert.equal(doc.total_entries, 3);
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_b']);
            doc = await list('runs_other', { run_id_pattern: 'list_', limit: 0 });
            assert.equal(doc.total_entries, 3);
            assert.deepEqual(doc.dag_runs, []);

            doc = await list('runs_other', { logical_date_gte: '2023-01-15T00:00:00Z', logical_date_lt: '2023-03-01T00:00:00Z' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_b']);
            doc = await list('runs_other', { logical_date_lte: '2023-02-01T00:00:00Z', run_id_pattern: 'list_' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_a', 'list_b']);
            doc = await list('runs_other', { run_after_gt: '2023-02-01T00:00:00Z', run_after_lte: '2023-03-01T00:00:00Z' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_c']);

            // across DAGs
            doc = await list('~', { run_id_pattern: 'list_' });
            assert.equal(doc.total_entries, 4);
            assert.deepEqual(new Set(doc.dag_runs.map((x) => x.dag_id)), new Set(['runs_other', 'runs_conf']));
            doc = await list('~', { run_id_pattern: 'list_a | list_conf', order_by: 'dag_id' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_conf', 'list_a']);
            doc = await list('~', { run_id_pattern: 'list_', dag_id_pattern: 'RUNS_CO%' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_conf']);
            // % and _ in conf_contains are the characters themselves, not wildcards
            doc = await list('~', { conf_contains: '50%_off' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_conf']);
            doc = await list('~', { conf_contains: '50%%off' });
            assert.equal(doc.total_entries, 0);
            doc = await list('~', { conf_contains: 'list_b' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_b']);
            doc = await list('~', { run_type: 'scheduled', run_id_pattern: 'list_' });
            assert.equal(doc.total_entries, 0);
            doc = await list('~', { run_type: ['scheduled', 'manual'], run_id_pattern: 'list_' });
            assert.equal(doc.total_entries, 4);
            doc = await list('~', { dag_version: 1, run_id_pattern: 'list_' });
            assert.equal(doc.total_entries, 4);
            doc = await list('~', { dag_version: 2, run_id_pattern: 'list_' });
            assert.equal(doc.total_entries, 0);
            doc = await list('~', { triggering_user_name_pattern: 'nobody-triggered-these', run_id_pattern: 'list_' });
            assert.equal(doc.total_entries, 0);

            // state: wait for the three to finish, then filter
            for (const id of ['list_a', 'list_b', 'list_c']) await runFinished(s, 'runs_other', id);
            doc = await list('runs_other', { run_id_pattern: 'list_', state: ['success'] });
            assert.equal(doc.total_entries, 3);
            doc = await list('runs_other', { run_id_pattern: 'list_', state: ['queued', 'running'] });
            assert.equal(doc.total_entries, 0);
            doc = await list('runs_other', { run_id_pattern: 'list_', end_date_gte: '2000-01-01T00:00:00Z', duration_gte: 0 });
            assert.equal(doc.total_entries, 3);
            doc = await list('runs_other', { run_id_pattern: 'list_', duration_lt: 0 });
            assert.equal(doc.total_entries, 0);
            doc = await list('runs_other', { run_id_pattern: 'list_', order_by: '-updated_at' });
            assert.equal(doc.total_entries, 3);
            doc = await list('runs_other', { run_id_pattern: 'list_', order_by: 'duration' });
            assert.equal(doc.total_entries, 3);

            // errors
            let r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', query: { order_by: 'bogus' } });
            assertResponse(r, 400);
            r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', query: { state: 'bogus' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', query: { run_type: 'bogus' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', query: { logical_date_gte: 'soon' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', query: { duration_gte: 'long' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns`, { as: 'Viewer', query: { limit: -1 } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/no_such_dag/dagRuns`, { as: 'Viewer' });
            assertResponse(r, 404);

            // the batch list
            const batch = async (body, status = 200) =>
                assertResponse(await api(s, 'POST', `${RUNS}/~/dagRuns/list`, { as: 'Viewer', body }), status);
            doc = await batch({ dag_ids: ['runs_other', 'runs_conf'], order_by: '-logical_date', page_limit: 2,
                logical_date_gte: '2023-01-01T00:00:00Z', logical_date_lte: '2023-12-31T00:00:00Z' });
            validate('DAGRunCollectionResponse', doc, { strict: true });
            assert.equal(doc.total_entries, 4);
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_c', 'list_conf']);
            doc = await batch({ dag_ids: ['runs_other'], states: ['success', null], page_offset: 1, page_limit: 1,
                logical_date_gte: '2023-01-01T00:00:00Z', logical_date_lte: '2023-12-31T00:00:00Z', order_by: 'logical_date' });
            assert.equal(doc.total_entries, 3);
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_b']);
            doc = await batch({ dag_ids: [] });
            assert.equal(doc.total_entries, 0);
            doc = await batch({ conf_contains: 'list_c' });
            assert.deepEqual(doc.dag_runs.map((x) => x.dag_run_id), ['list_c']);
            await batch({ dag_ids: 'runs_other' }, 422);
            await batch({ states: ['bogus'] }, 422);
            await batch({ page_limit: -1 }, 422);
            await batch({ page_limit: 1.5 }, 422);
            await batch({ unknown: 1 }, 422);
            await batch({ order_by: 'bogus' }, 400);
            await batch({ start_date_gte: 'nope' }, 422);
            assertResponse(await api(s, 'POST', `${RUNS}/runs_other/dagRuns/list`, { as: 'Viewer', body: {} }), 422);
        });

        test('get: 404 in Airflow\'s words', async () => {
            const r = await api(s, 'GET', `${RUNS}/runs_other/dagRuns/nope`, { as: 'Viewer' });
            assertResponse(r, 404);
            assert.equal(r.json.detail, 'The DagRun with dag_id: `runs_other` and run_id: `nope` was not found');
        });

        test('patch: mark failed (running → failed, pending → skipped) and success, notes, update_mask', async () => {
            // mark failed while `long` runs and `quick` has succeeded
            const a = await trigger(s, 'runs_slow', { dag_run_id: 'slow_fail' });
            await tiStatesUntil(s, 'runs_slow', a.dag_run_id, (st) => st.long === 'running' && st.quick === 'success');
            let r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_fail`, { as: 'User', body: { state: 'failed' } });
            let run = assertResponse(r, 200);
            validate('DAGRunResponse', run, { strict: true });
            assert.equal(run.state, 'failed');
            assert.ok(run.end_date);
            let st = await tiStates(s, 'runs_slow', 'slow_fail');
            assert.deepEqual(st, { after_long: 'skipped', long: 'failed', quick: 'success' });

            // mark success while `long` runs: every instance not yet success becomes success
            await trigger(s, 'runs_slow', { dag_run_id: 'slow_ok' });
            await tiStatesUntil(s, 'runs_slow', 'slow_ok', (x) => x.long === 'running');
            // a running run cannot be queued again (the store only re-queues finished runs)
            r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_ok`, { as: 'User', body: { state: 'queued' } });
            assertResponse(r, 400);
            assert.match(r.json.detail, /is running; it cannot become queued/);
            r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_ok`, { as: 'User', body: { state: 'success', note: 'done by hand' } });
            run = assertResponse(r, 200);
            assert.equal(run.state, 'success');
            assert.equal(run.note, 'done by hand');
            st = await tiStates(s, 'runs_slow', 'slow_ok');
            assert.deepEqual(st, { after_long: 'success', long: 'success', quick: 'success' });
            // the scheduler leaves it so
            await new Promise((res) => setTimeout(res, 1500));
            assert.equal((await getRun(s, 'runs_slow', 'slow_ok')).state, 'success');

            // update_mask: only the note changes
            r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_ok`,
                { as: 'User', body: { state: 'failed', note: 'masked' }, query: { update_mask: 'note' } });
            run = assertResponse(r, 200);
            assert.equal(run.state, 'success');
            assert.equal(run.note, 'masked');
            r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_ok`, { as: 'User', body: { note: null } });
            assert.equal(assertResponse(r, 200).note, null);

            // queued again from failed
            r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_fail`, { as: 'User', body: { state: 'queued' } });
            assertResponse(r, 200);
            // the scheduler may have moved it on already: the journal says it was queued again
            const queued = storeScalar(s, `SELECT COUNT(*) FROM state_event WHERE kind = 'run' AND run_id = ${q('slow_fail')} AND state = 'queued'`);
            assert.equal(Number(queued), 2);

            // errors
            for (const [body, field] of [[{ state: 'running' }, 'state'], [{ state: 'bogus' }, 'state'],
                [{ stat: 'failed' }, 'stat'], [{ note: 'x'.repeat(1001) }, 'note'], [{ note: 3 }, 'note']]) {
                r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_ok`, { as: 'User', body });
                assertResponse(r, 422);
                assert.deepEqual(r.json.detail[0].loc, ['body', field]);
            }
            r = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/nope`, { as: 'User', body: { state: 'failed' } });
            assertResponse(r, 404);
            assert.equal(r.json.detail, 'The DagRun with dag_id: `runs_slow` and run_id: `nope` was not found');
        });

        test('delete: the run, its task instances, XComs and logs are gone', async () => {
            const run = await trigger(s, 'runs_conf', { dag_run_id: 'to_delete', conf: { msg: 'bye' } });
            await runFinished(s, 'runs_conf', run.dag_run_id);
            const count = (table) => Number(storeScalar(s, `SELECT COUNT(*) FROM ${table} WHERE run_id = ${q('to_delete')}`));
            assert.equal(count('task_instance'), 1);
            assert.equal(count('xcom'), 1);
            assert.ok(Number(storeScalar(s, `SELECT COUNT(*) FROM task_log WHERE ti_id IN (SELECT id FROM task_instance WHERE run_id = ${q('to_delete')})`)) > 0);
            const tiId = storeScalar(s, `SELECT id FROM task_instance WHERE run_id = ${q('to_delete')}`);

            let r = await api(s, 'DELETE', `${RUNS}/runs_conf/dagRuns/to_delete`, { as: 'User' });
            assertResponse(r, 204);
            assert.equal(r.text, '');
            for (const t of ['dag_run', 'task_instance', 'xcom', 'task_instance_history']) assert.equal(count(t), 0, t);
            assert.equal(Number(storeScalar(s, `SELECT COUNT(*) FROM task_log WHERE ti_id = ${q(tiId)}`)), 0);
            assertResponse(await api(s, 'GET', `${RUNS}/runs_conf/dagRuns/to_delete`, { as: 'Viewer' }), 404);
            assertResponse(await api(s, 'DELETE', `${RUNS}/runs_conf/dagRuns/to_delete`, { as: 'User' }), 404);
            // the id is free again
            await trigger(s, 'runs_conf', { dag_run_id: 'to_delete', conf: { msg: 'again' } });
        });

        test('clear: dry run lists what would be cleared; a real clear runs it again', async () => {
            const run = await trigger(s, 'runs_flaky', { dag_run_id: 'flaky_1' });
            const first = await runFinished(s, 'runs_flaky', run.dag_run_id);
            assert.equal(first.state, 'failed');
            assert.deepEqual(await tiStates(s, 'runs_flaky', 'flaky_1'), { down: 'upstream_failed', flaky: 'failed' });
            const p = `${RUNS}/runs_flaky/dagRuns/flaky_1/clear`;

            // the default is a dry run
            let r = await api(s, 'POST', p, { as: 'User', body: {} });
            let doc = assertResponse(r, 200);
            validate('TaskInstanceCollectionResponse', doc, { strict: true });
            assert.equal(doc.total_entries, 2);
            r = await api(s, 'POST', p, { as: 'User', body: { dry_run: true, only_failed: true } });
            doc = assertResponse(r, 200);
            validate('TaskInstanceCollectionResponse', doc, { strict: true });
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.state]).sort(),
                [['down', 'upstream_failed'], ['flaky', 'failed']]);
            const ti = doc.task_instances.find((t) => t.task_id === 'flaky');
            assert.equal(ti.dag_run_id, 'flaky_1');
            assert.equal(ti.try_number, 1);
            assert.equal(ti.operator, 'BashOperator');
            // a dry run changes nothing
            assert.equal((await getRun(s, 'runs_flaky', 'flaky_1')).state, 'failed');

            r = await api(s, 'POST', p, { as: 'User', body: { dry_run: 'yes' } });
            assertResponse(r, 422);
            r = await api(s, 'POST', p, { as: 'User', body: { dry_run: false, everything: true } });
            assertResponse(r, 422);
            assertResponse(await api(s, 'POST', `${RUNS}/runs_flaky/dagRuns/nope/clear`, { as: 'User', body: {} }), 404);

            r = await api(s, 'POST', p, { as: 'User', body: { dry_run: false, only_failed: true } });
            const cleared = assertResponse(r, 200);
            validate('DAGRunResponse', cleared, { strict: true });
            assert.ok(['queued', 'running', 'success'].includes(cleared.state), cleared.state);
            const again = await runFinished(s, 'runs_flaky', 'flaky_1');
            assert.equal(again.state, 'success');
            const st = await tiStates(s, 'runs_flaky', 'flaky_1');
            assert.deepEqual(st, { down: 'success', flaky: 'success' });

            // nothing left failed: only_failed clears nothing and the run stays as it is
            r = await api(s, 'POST', p, { as: 'User', body: { dry_run: true, only_failed: true } });
            assert.equal(assertResponse(r, 200).total_entries, 0);
        });

        test('wait: one line per interval while the run goes on, the final state last', async () => {
            await trigger(s, 'runs_slow', { dag_run_id: 'slow_wait' });
            await tiStatesUntil(s, 'runs_slow', 'slow_wait', (x) => x.long === 'running');
            const w = await openWait(s, 'runs_slow', 'slow_wait', { interval: 0.5, result: 'quick' });
            assert.equal(w.res.status, 200);
            assert.match(w.res.headers.get('content-type'), /application\/x-ndjson/);
            assert.deepEqual(await w.next(), { state: 'running' });
            assert.deepEqual(await w.next(), { state: 'running' });
            assert.deepEqual(await w.next(), { state: 'running' });
            const gap = w.lines[2].at - w.lines[1].at;
            assert.ok(gap >= 300 && gap < 3000, `lines ${gap} ms apart for interval 0.5 s`);
            const patched = await api(s, 'PATCH', `${RUNS}/runs_slow/dagRuns/slow_wait`, { as: 'User', body: { state: 'success' } });
            assertResponse(patched, 200);
            const rest = await w.rest();
            assert.ok(rest.length >= 1);
            for (const l of rest.slice(0, -1)) assert.deepEqual(l, { state: 'running' });
            assert.deepEqual(rest.at(-1), { state: 'success', results: { quick: 'quick' } });

            let r = await api(s, 'GET', `${RUNS}/runs_slow/dagRuns/slow_wait/wait`, { as: 'Viewer' });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_slow/dagRuns/slow_wait/wait`, { as: 'Viewer', query: { interval: 0 } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_slow/dagRuns/slow_wait/wait`, { as: 'Viewer', query: { interval: 'x' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', `${RUNS}/runs_slow/dagRuns/nope/wait`, { as: 'Viewer', query: { interval: 1 } });
            assertResponse(r, 404);
            // a finished run without `result`: just its state
            r = await api(s, 'GET', `${RUNS}/runs_slow/dagRuns/slow_wait/wait`, { as: 'Viewer', query: { interval: 5 } });
            assert.equal(r.text, '{"state":"success"}\n');
        });

        test('upstreamAssetEvents: the event that triggered an asset run; none for a manual run', async () => {
            const prod = await trigger(s, 'runs_producer', { dag_run_id: 'produce_1' });
            assert.equal((await runFinished(s, 'runs_producer', prod.dag_run_id)).state, 'success');
            const consumer = await waitFor(async () => {
                const d = assertResponse(await api(s, 'GET', `${RUNS}/runs_consumer/dagRuns`,
                    { as: 'Viewer', query: { run_type: 'asset_triggered' } }));
                return d.dag_runs[0];
            }, 30000, 200);
            assert.equal(consumer.triggered_by, 'asset');
            const r = await api(s, 'GET', `${RUNS}/runs_consumer/dagRuns/${enc(consumer.dag_run_id)}/upstreamAssetEvents`, { as: 'Viewer' });
            const doc = assertResponse(r, 200);
            validate('AssetEventCollectionResponse', doc, { strict: true });
            assert.equal(doc.total_entries, 1);
            const ev = doc.asset_events[0];
            assert.equal(ev.uri, 'test://runs/asset');
            assert.equal(ev.source_dag_id, 'runs_producer');
            assert.equal(ev.source_run_id, 'produce_1');
            assert.equal(ev.source_task_id, 'make');
            assert.equal(ev.created_dagruns[0].run_id, consumer.dag_run_id);

            const m = await api(s, 'GET', `${RUNS}/runs_producer/dagRuns/produce_1/upstreamAssetEvents`, { as: 'Viewer' });
            assert.deepEqual(assertResponse(m, 200), { asset_events: [], total_entries: 0 });
            assertResponse(await api(s, 'GET', `${RUNS}/runs_producer/dagRuns/nope/upstreamAssetEvents`, { as: 'Viewer' }), 404);
        });

        test('the audit trail names the API user', async () => {
            const owner = storeScalar(s, `SELECT owner FROM event_log WHERE event = 'api.trigger_dag_run' AND run_id = ${q('by_user')}`);
            assert.equal(owner, `api:${s.user('User').username}`);
            const ev = storeScalar(s, `SELECT COUNT(*) FROM event_log WHERE event = 'api.delete_dag_run' AND run_id = ${q('to_delete')}`);
            assert.equal(Number(ev), 1);
        });
    });
}
