// Task instances on the REST API (api/routes_tis.c): lists and their filters, order and paging
// (one run, "~" across runs, the POST .../list batch), one instance, tries after a retry, logs
// followed with continuation tokens while the task runs, XComs, dependencies, marking states
// (PATCH, dry run and for real, racing the worker that runs the try), clearTaskInstances, 404s
// and roles. Every body is validated against Airflow's v2 spec. Runs are made with the CLI
// (`gust dags trigger`), so these tests lean on nothing but the task-instance routes; they run
// in standalone (SQLite) and, when the test servers are up, in the distributed deployment
// (PostgreSQL, RabbitMQ, Redis).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, assertResponse, enc, servicesAvailable, sleep, startGust, validate, waitFor } from './lib.mjs';

const FINISHED = new Set(['success', 'failed', 'skipped', 'upstream_failed', 'removed']);

function dagFiles(dir) {
    return {
        'tis_chain.yml': `
tis_chain:
  schedule: null
  start_date: 2024-01-01
  dag_display_name: "Chain of three"
  tasks:
    - task_id: a
      operator: bash
      bash_command: "echo a"
    - task_id: b
      operator: bash
      bash_command: "echo b"
      dependencies: [a]
    - task_id: c
      operator: bash
      task_display_name: "Step C"
      bash_command: "echo c"
      dependencies: [b]
`,
        'tis_fan.yml': `
tis_fan:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: start
      operator: empty
    - task_id: f1
      operator: bash
      bash_command: "echo f1"
      dependencies: [start]
    - task_id: f2
      operator: bash
      bash_command: "echo f2"
      dependencies: [start]
    - task_id: f3
      operator: bash
      bash_command: "echo f3"
      dependencies: [start]
    - task_id: f4
      operator: bash
      bash_command: "echo f4"
      dependencies: [start]
    - task_id: join
      operator: empty
      dependencies: [f1, f2, f3, f4]
`,
        'tis_retry.yml': `
tis_retry:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: flaky
      operator: bash
      retries: 1
      retry_delay: 1s
      bash_command: "if [ -f '${dir}/flaky' ]; then echo second try works; else touch '${dir}/flaky'; echo first try fails; exit 3; fi"
`,
        'tis_fail.yml': `
tis_fail:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: gate
      operator: bash
      retries: 0
      bash_command: "if [ -f '${dir}/gate_open' ]; then echo open; else echo closed; exit 4; fi"
    - task_id: after_gate
      operator: bash
      bash_command: "echo after"
      dependencies: [gate]
`,
        'tis_xcom.yml': `
tis_xcom:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: push
      operator: bash
      bash_command: >-
        echo '{"answer": 42, "nested": {"a": [1, 2], "s": "x"}}' > "$GUST_XCOM_FILE"; echo final line
`,
        'tis_slowlog.yml': `
tis_slowlog:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: talk
      operator: bash
      bash_command: "for i in $(seq 1 30); do echo line $i; sleep 0.1; done"
`,
        'tis_wait.yml': `
tis_wait:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: slow
      operator: bash
      bash_command: "sleep 300"
    - task_id: waiter
      operator: bash
      bash_command: "echo waited"
      dependencies: [slow]
    - task_id: side
      operator: bash
      bash_command: "echo side"
`,
    };
}

const base = (dag, run) => `/api/v2/dags/${enc(dag)}/dagRuns/${enc(run)}/taskInstances`;

// A run made with the CLI (no dependency on the dagRuns routes); retried while the DAG
// processor has not stored the DAG yet.
async function trigger(s, dagId, runId, logicalDate) {
    const args = ['dags', 'trigger', dagId, '--run-id', runId];
    if (logicalDate) args.push('--logical-date', logicalDate);
    let last;
    await waitFor(async () => {
        last = await s.cli(args);
        return last.code === 0;
    }, 30000, 250).catch((e) => { throw new Error(`gust dags trigger ${dagId}: ${last && last.stderr} (${e.message})`); });
    return runId;
}

async function listTis(s, dag, run, query = {}, as = 'Viewer') {
    const r = await api(s, 'GET', base(dag, run), { as, query });
    const doc = assertResponse(r);
    validate('TaskInstanceCollectionResponse', doc, { strict: true });
    return doc;
}

async function getTi(s, dag, run, task, as = 'Viewer') {
    const doc = assertResponse(await api(s, 'GET', `${base(dag, run)}/${enc(task)}`, { as }));
    validate('TaskInstanceResponse', doc, { strict: true });
    return doc;
}

async function runDone(s, dag, run, timeoutMs = 90000) {
    return waitFor(async () => {
        const doc = await listTis(s, dag, run);
        return doc.total_entries > 0 && doc.task_instances.every((t) => FINISHED.has(t.state)) ? doc : false;
    }, timeoutMs, 200);
}

async function tiState(s, dag, run, task, pred, timeoutMs = 60000) {
    return waitFor(async () => {
        const t = await getTi(s, dag, run, task);
        return pred(t.state) ? t : false;
    }, timeoutMs, 100);
}

const byTask = (doc) => Object.fromEntries(doc.task_instances.map((t) => [t.task_id, t]));

const modes = [['standalone', true], ['api', servicesAvailable()]];

for (const [mode, available] of modes) {
    describe(`task instances (${mode})`, { skip: available ? false : 'GUST_TEST_* servers not set (bash tests/services.sh start)' }, () => {
        let s;
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gust-tis-${mode}-`));

        before(async () => {
            s = await startGust({ mode, dags: dagFiles(dir) });
        });
        after(async () => {
            fs.rmSync(dir, { recursive: true, force: true });
            if (s) await s.stop();
        });

        test('one instance: every field of TaskInstanceResponse, display names, version', async () => {
            await trigger(s, 'tis_chain', 'chain_1');
            await runDone(s, 'tis_chain', 'chain_1');
            const c = await getTi(s, 'tis_chain', 'chain_1', 'c');
            assert.match(c.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
            assert.equal(c.task_id, 'c');
            assert.equal(c.dag_id, 'tis_chain');
            assert.equal(c.dag_run_id, 'chain_1');
            assert.equal(c.map_index, -1);
            assert.equal(c.state, 'success');
            assert.equal(c.try_number, 1);
            assert.equal(c.max_tries, 0);
            assert.equal(c.task_display_name, 'Step C');
            assert.equal(c.dag_display_name, 'Chain of three');
            assert.equal(c.operator, 'BashOperator');
            assert.equal(c.operator_name, 'BashOperator');
            assert.equal(c.pool, 'default_pool');
            assert.equal(c.pool_slots, 1);
            assert.equal(c.queue, mode === 'api' ? c.queue : 'default');
            assert.equal(typeof c.duration, 'number');
            assert.ok(c.duration >= 0 && c.duration < 60, `duration ${c.duration}`);
            assert.ok(c.start_date && c.end_date && c.queued_when && c.scheduled_when && c.run_after && c.logical_date);
            assert.ok(Date.parse(c.end_date) >= Date.parse(c.start_date));
            assert.equal(typeof c.hostname, 'string');
            assert.equal(c.executor, null);
            assert.equal(c.executor_config, '{}');
            assert.deepEqual(c.rendered_fields, {});
            assert.equal(c.dag_version.version_number, 1);
            assert.equal(c.dag_version.dag_id, 'tis_chain');
            assert.equal(c.dag_version.dag_display_name, 'Chain of three');
            // the mapped form of the same route, with map_index -1
            const same = assertResponse(await api(s, 'GET', `${base('tis_chain', 'chain_1')}/c/-1`, { as: 'Viewer' }));
            assert.equal(same.id, c.id);
            // upstream finished before downstream started
            const all = byTask(await listTis(s, 'tis_chain', 'chain_1'));
            assert.ok(Date.parse(all.a.end_date) <= Date.parse(all.b.start_date));
            assert.ok(Date.parse(all.b.end_date) <= Date.parse(all.c.start_date));
            // extra links: none, and listMapped: gust maps no tasks
            const links = assertResponse(await api(s, 'GET', `${base('tis_chain', 'chain_1')}/c/links`, { as: 'Viewer' }));
            assert.deepEqual(links, { extra_links: {}, total_entries: 0 });
            const mapped = assertResponse(await api(s, 'GET', `${base('tis_chain', 'chain_1')}/c/listMapped`, { as: 'Viewer' }));
            assert.deepEqual(mapped, { task_instances: [], total_entries: 0 });
        });

        test('lists: filters, order, paging, "~" across runs, the batch form', async () => {
            await trigger(s, 'tis_fan', 'fan_1', '2024-02-01T00:00:00Z');
            await trigger(s, 'tis_fan', 'fan_2', '2024-02-02T00:00:00Z');
            await runDone(s, 'tis_fan', 'fan_1');
            await runDone(s, 'tis_fan', 'fan_2');

            let doc = await listTis(s, 'tis_fan', 'fan_1');
            assert.equal(doc.total_entries, 6);
            assert.deepEqual(doc.task_instances.map((t) => t.task_id).sort(), ['f1', 'f2', 'f3', 'f4', 'join', 'start']);
            const ops = byTask(doc);
            assert.equal(ops.start.operator, 'EmptyOperator');
            assert.equal(ops.f1.operator, 'BashOperator');

            // paging: limit/offset walk the same order without overlap
            const seen = [];
            for (let off = 0; off < 6; off += 4) {
                const page = await listTis(s, 'tis_fan', 'fan_1', { limit: 4, offset: off, order_by: 'task_id' });
                assert.equal(page.total_entries, 6);
                seen.push(...page.task_instances.map((t) => t.task_id));
            }
            assert.deepEqual(seen, ['f1', 'f2', 'f3', 'f4', 'join', 'start']);
            doc = await listTis(s, 'tis_fan', 'fan_1', { order_by: '-task_id', limit: 2 });
            assert.deepEqual(doc.task_instances.map((t) => t.task_id), ['start', 'join']);
            doc = await listTis(s, 'tis_fan', 'fan_1', { order_by: ['operator', '-task_id'] });
            assert.deepEqual(doc.task_instances.map((t) => t.task_id), ['f4', 'f3', 'f2', 'f1', 'start', 'join']);
            doc = await listTis(s, 'tis_fan', 'fan_1', { order_by: 'start_date' });
            assert.equal(doc.task_instances[0].task_id, 'start');
            assert.equal(doc.task_instances[5].task_id, 'join');
            let r = await api(s, 'GET', base('tis_fan', 'fan_1'), { as: 'Viewer', query: { order_by: 'bogus' } });
            assertResponse(r, 400);
            assert.match(r.json.detail, /bogus/);

            // filters
            doc = await listTis(s, 'tis_fan', 'fan_1', { task_id: 'f2' });
            assert.deepEqual(doc.task_instances.map((t) => t.task_id), ['f2']);
            doc = await listTis(s, 'tis_fan', 'fan_1', { state: ['success'] });
            assert.equal(doc.total_entries, 6);
            doc = await listTis(s, 'tis_fan', 'fan_1', { state: ['failed', 'no_status'] });
            assert.equal(doc.total_entries, 0);
            doc = await listTis(s, 'tis_fan', 'fan_1', { operator: 'EmptyOperator' });
            assert.deepEqual(doc.task_instances.map((t) => t.task_id).sort(), ['join', 'start']);
            doc = await listTis(s, 'tis_fan', 'fan_1', { operator: ['bash'], try_number: [1], map_index: [-1] });
            assert.equal(doc.total_entries, 4);
            doc = await listTis(s, 'tis_fan', 'fan_1', { pool: 'default_pool', duration_gte: 0 });
            assert.equal(doc.total_entries, 6);
            doc = await listTis(s, 'tis_fan', 'fan_1', { duration_gt: 3600 });
            assert.equal(doc.total_entries, 0);
            doc = await listTis(s, 'tis_fan', 'fan_1', { executor: 'CeleryExecutor' });
            assert.equal(doc.total_entries, 0);
            doc = await listTis(s, 'tis_fan', 'fan_1', { task_display_name_pattern: 'f1 | JOIN' });
            assert.deepEqual(doc.task_instances.map((t) => t.task_id).sort(), ['f1', 'join']);
            const started = byTask(await listTis(s, 'tis_fan', 'fan_1')).f1.start_date;
            doc = await listTis(s, 'tis_fan', 'fan_1', { start_date_gte: started, start_date_lte: started });
            assert.ok(doc.task_instances.some((t) => t.task_id === 'f1'));
            r = await api(s, 'GET', base('tis_fan', 'fan_1'), { as: 'Viewer', query: { state: 'sleeping' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', base('tis_fan', 'fan_1'), { as: 'Viewer', query: { start_date_gte: 'yesterday' } });
            assertResponse(r, 422);
            r = await api(s, 'GET', base('tis_fan', 'fan_1'), { as: 'Viewer', query: { try_number: 'x' } });
            assertResponse(r, 422);

            // "~": every run of a DAG, every DAG, with patterns (% and _ are wildcards, \ escapes)
            doc = await listTis(s, 'tis_fan', '~');
            assert.equal(doc.total_entries, 12);
            doc = await listTis(s, 'tis_fan', '~', { logical_date_gte: '2024-02-02T00:00:00Z', task_id: 'join' });
            assert.deepEqual(doc.task_instances.map((t) => t.dag_run_id), ['fan_2']);
            doc = await listTis(s, '~', '~', { dag_id_pattern: 'tis\\_fan', limit: 100 });
            assert.equal(doc.total_entries, 12);
            doc = await listTis(s, '~', '~', { dag_id_pattern: 'TIS%FA', run_id_pattern: 'fan\\_2', order_by: '-run_after' });
            assert.equal(doc.total_entries, 6);
            assert.ok(doc.task_instances.every((t) => t.dag_run_id === 'fan_2'));
            doc = await listTis(s, '~', 'fan_1');
            assert.equal(doc.total_entries, 6);
            // odd patterns are text, never a server error, on both engines
            doc = await listTis(s, '~', '~', { dag_id_pattern: '\\' });
            assert.equal(doc.total_entries, 0);
            doc = await listTis(s, '~', '~', { dag_id_pattern: "%' OR 1=1 --|", run_id_pattern: '_' });
            assert.ok(doc.total_entries >= 12);
            doc = await listTis(s, '~', '~', { dag_id_pattern: "x' OR '1'='1" });
            assert.equal(doc.total_entries, 0);

            // past/future reach the other runs by logical date (dry runs: nothing changes)
            r = await api(s, 'PATCH', `${base('tis_fan', 'fan_2')}/f1/dry_run`, { as: 'User', body: { new_state: 'failed', include_past: true } });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => `${t.dag_run_id}/${t.task_id}`), ['fan_1/f1', 'fan_2/f1']);
            r = await api(s, 'PATCH', `${base('tis_fan', 'fan_1')}/start/dry_run`,
                { as: 'User', body: { new_state: 'skipped', include_future: true, include_downstream: true } });
            doc = assertResponse(r);
            assert.equal(doc.total_entries, 0, 'success cannot become skipped');
            r = await api(s, 'PATCH', `${base('tis_fan', 'fan_1')}/join/dry_run`,
                { as: 'User', body: { new_state: 'failed', include_future: true, include_upstream: true } });
            doc = assertResponse(r);
            assert.equal(doc.total_entries, 12);
            r = await api(s, 'PATCH', `${base('tis_fan', 'fan_1')}/join/dry_run`, { as: 'User', body: { note: 'only a note' } });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.note]), [['join', null]]);
            r = await api(s, 'POST', '/api/v2/dags/tis_fan/clearTaskInstances',
                { as: 'User', body: { only_failed: false, start_date: '2024-02-02T00:00:00Z', task_ids: ['f1', 'f2'] } });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => `${t.dag_run_id}/${t.task_id}`), ['fan_2/f1', 'fan_2/f2']);
            r = await api(s, 'POST', '/api/v2/dags/tis_fan/clearTaskInstances',
                { as: 'User', body: { only_failed: false, end_date: '2024-02-01T12:00:00Z', task_ids: ['start'], include_downstream: true } });
            doc = assertResponse(r);
            assert.equal(doc.total_entries, 6);
            assert.ok(doc.task_instances.every((t) => t.dag_run_id === 'fan_1' && t.state === 'success'));
            assert.equal((await listTis(s, 'tis_fan', '~', { state: 'success' })).total_entries, 12);

            // the batch form
            r = await api(s, 'POST', `${base('~', '~')}/list`, {
                as: 'Viewer',
                body: { dag_ids: ['tis_fan'], dag_run_ids: ['fan_2'], task_ids: ['f1', 'f3', 'join'], state: ['success', null], order_by: '-task_id', page_limit: 2 },
            });
            doc = assertResponse(r);
            validate('TaskInstanceCollectionResponse', doc, { strict: true });
            assert.equal(doc.total_entries, 3);
            assert.deepEqual(doc.task_instances.map((t) => t.task_id), ['join', 'f3']);
            r = await api(s, 'POST', `${base('~', '~')}/list`, { as: 'Viewer', body: { dag_ids: ['tis_fan'], page_offset: 10 } });
            doc = assertResponse(r);
            assert.equal(doc.total_entries, 12);
            assert.equal(doc.task_instances.length, 2);
            r = await api(s, 'POST', `${base('~', '~')}/list`, { as: 'Viewer', body: { no_such_field: 1 } });
            assertResponse(r, 422);
            r = await api(s, 'POST', `${base('~', '~')}/list`, { as: 'Viewer', body: { state: ['bogus'] } });
            assertResponse(r, 422);

            // 404s of the list
            r = await api(s, 'GET', base('no_such_dag', '~'), { as: 'Viewer' });
            assertResponse(r, 404);
            assert.match(r.json.detail, /no_such_dag/);
            r = await api(s, 'GET', base('tis_fan', 'no_such_run'), { as: 'Viewer' });
            assertResponse(r, 404);
            assert.match(r.json.detail, /no_such_run/);
        });

        test('tries after a retry: two tries, each with its own log', async () => {
            await trigger(s, 'tis_retry', 'retry_1');
            await runDone(s, 'tis_retry', 'retry_1');
            const ti = await getTi(s, 'tis_retry', 'retry_1', 'flaky');
            assert.equal(ti.state, 'success');
            assert.equal(ti.try_number, 2);
            assert.equal(ti.max_tries, 1);
            const tries = assertResponse(await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/tries`, { as: 'Viewer' }));
            validate('TaskInstanceHistoryCollectionResponse', tries, { strict: true });
            assert.equal(tries.total_entries, 2);
            assert.deepEqual(tries.task_instances.map((t) => [t.try_number, t.state]), [[1, 'up_for_retry'], [2, 'success']]);
            const one = assertResponse(await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/tries/1`, { as: 'Viewer' }));
            validate('TaskInstanceHistoryResponse', one, { strict: true });
            assert.equal(one.state, 'up_for_retry');
            assert.ok(one.start_date && one.end_date);
            const mapped = assertResponse(await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/-1/tries/2`, { as: 'Viewer' }));
            assert.equal(mapped.state, 'success');
            let r = await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/tries/7`, { as: 'Viewer' });
            assertResponse(r, 404);

            const log1 = assertResponse(await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/logs/1`, { as: 'Viewer' }));
            validate('TaskInstancesLogResponse', log1, { strict: true });
            const events1 = log1.content.map((m) => m.event);
            assert.ok(events1.includes('first try fails'), events1.join('\n'));
            assert.ok(!events1.includes('second try works'));
            for (const m of log1.content) validate('StructuredLogMessage', m);
            assert.ok(log1.content.every((m) => typeof m.timestamp === 'string'));
            const log2 = assertResponse(await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/logs/2`, { as: 'Viewer' }));
            assert.ok(log2.content.map((m) => m.event).includes('second try works'));
            // text/plain: the raw log, the token in a header
            r = await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/logs/2`, { as: 'Viewer', headers: { Accept: 'text/plain' } });
            assert.equal(r.status, 200);
            assert.match(r.headers.get('content-type'), /^text\/plain/);
            assert.match(r.text, /\] second try works\n/);
            assert.ok(r.headers.get('x-continuation-token'));
            // a try that does not exist
            r = await api(s, 'GET', `${base('tis_retry', 'retry_1')}/flaky/logs/9`, { as: 'Viewer' });
            assertResponse(r, 404);
        });

        test('log tailing: a client following a running task with continuation tokens sees lines 1..30 once, in order', async () => {
            await trigger(s, 'tis_slowlog', 'talk_1');
            await tiState(s, 'tis_slowlog', 'talk_1', 'talk', (st) => st === 'running' || FINISHED.has(st));
            const url = `${base('tis_slowlog', 'talk_1')}/talk/logs/1`;
            const got = [];
            let token;
            let sawWhileRunning = false;
            let polls = 0;
            let finished = false;
            for (;;) {
                const r = await api(s, 'GET', url, { as: 'Viewer', query: token ? { token } : {} });
                const doc = assertResponse(r);
                polls++;
                assert.equal(typeof doc.continuation_token, 'string');
                token = doc.continuation_token;
                const lines = doc.content.map((m) => m.event).filter((e) => /^line \d+$/.test(e));
                got.push(...lines);
                const st = (await getTi(s, 'tis_slowlog', 'talk_1', 'talk')).state;
                if (lines.length && st === 'running') sawWhileRunning = true;
                // the worker stores the last lines before it records the end: once the state is
                // final, one more read (with the token) gets the rest, then nothing new arrives
                if (finished && doc.content.length === 0) break;
                if (FINISHED.has(st)) finished = true;
                assert.ok(polls < 2000, 'the log never ended');
                await sleep(70);
            }
            const want = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
            assert.deepEqual(got, want);
            assert.ok(sawWhileRunning, 'no line was read while the task was running');
            assert.ok(polls > 3);
            // the whole log at once agrees
            const full = assertResponse(await api(s, 'GET', url, { as: 'Viewer', query: { full_content: true } }));
            assert.deepEqual(full.content.map((m) => m.event).filter((e) => /^line \d+$/.test(e)), want);
            // a token that was tampered with, or made for another log, is refused
            const [payload, sig] = token.split('.');
            const forged = Buffer.from(JSON.stringify({ end_of_log: false, log_pos: 0 })).toString('base64url');
            const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
            for (const bad of [`${forged}.${sig}`, `${payload}.${flipped}`, 'garbage', `${payload}`]) {
                const r = await api(s, 'GET', url, { as: 'Viewer', query: { token: bad } });
                assertResponse(r, 400);
                assert.match(r.json.detail, /Bad Signature/);
            }
            await trigger(s, 'tis_chain', 'chain_tok');
            await runDone(s, 'tis_chain', 'chain_tok');
            const r = await api(s, 'GET', `${base('tis_chain', 'chain_tok')}/a/logs/1`, { as: 'Viewer', query: { token } });
            assertResponse(r, 400);
        });

        test('XComs: list, get (native and stringified), create, update, delete, "~"', async () => {
            await trigger(s, 'tis_xcom', 'xcom_1');
            await runDone(s, 'tis_xcom', 'xcom_1');
            const xb = `${base('tis_xcom', 'xcom_1')}/push/xcomEntries`;
            let doc = assertResponse(await api(s, 'GET', xb, { as: 'Viewer' }));
            validate('XComCollectionResponse', doc, { strict: true });
            assert.deepEqual(doc.xcom_entries.map((x) => x.key), ['answer', 'nested', 'return_value']);
            assert.equal(doc.total_entries, 3);
            assert.ok(doc.xcom_entries.every((x) => x.run_id === 'xcom_1' && x.task_id === 'push' && x.map_index === -1));
            doc = assertResponse(await api(s, 'GET', xb, { as: 'Viewer', query: { xcom_key: 'nested' } }));
            assert.equal(doc.total_entries, 1);
            doc = assertResponse(await api(s, 'GET', xb, { as: 'Viewer', query: { limit: 1, offset: 1 } }));
            assert.deepEqual(doc.xcom_entries.map((x) => x.key), ['nested']);
            assert.equal(doc.total_entries, 3);

            let x = assertResponse(await api(s, 'GET', `${xb}/answer`, { as: 'Viewer' }));
            validate('XComResponseNative', x, { strict: true });
            assert.equal(x.value, 42);
            x = assertResponse(await api(s, 'GET', `${xb}/nested`, { as: 'Viewer', query: { deserialize: true } }));
            assert.deepEqual(x.value, { a: [1, 2], s: 'x' });
            x = assertResponse(await api(s, 'GET', `${xb}/nested`, { as: 'Viewer', query: { stringify: true } }));
            validate('XComResponseString', x, { strict: true });
            assert.deepEqual(JSON.parse(x.value), { a: [1, 2], s: 'x' });
            x = assertResponse(await api(s, 'GET', `${xb}/return_value`, { as: 'Viewer' }));
            assert.equal(x.value, 'final line');
            let r = await api(s, 'GET', `${xb}/no_such_key`, { as: 'Viewer' });
            assertResponse(r, 404);
            assert.match(r.json.detail, /no_such_key/);

            // create (User), 409 on a second create, update, delete
            r = await api(s, 'POST', xb, { as: 'User', body: { key: 'made', value: { list: [1, 'two'], n: null } } });
            x = assertResponse(r, 201);
            validate('XComResponseNative', x, { strict: true });
            assert.deepEqual(x.value, { list: [1, 'two'], n: null });
            r = await api(s, 'POST', xb, { as: 'User', body: { key: 'made', value: 1 } });
            assertResponse(r, 409);
            r = await api(s, 'POST', xb, { as: 'Viewer', body: { key: 'nope', value: 1 } });
            assertResponse(r, 403);
            r = await api(s, 'POST', xb, { as: 'User', body: { key: 'k' } });
            assertResponse(r, 422);
            r = await api(s, 'POST', `${base('tis_xcom', 'xcom_1')}/no_task/xcomEntries`, { as: 'User', body: { key: 'k', value: 1 } });
            assertResponse(r, 404);
            r = await api(s, 'PATCH', `${xb}/made`, { as: 'User', body: { value: 'changed' } });
            x = assertResponse(r);
            assert.equal(x.value, 'changed');
            x = assertResponse(await api(s, 'GET', `${xb}/made`, { as: 'Viewer' }));
            assert.equal(x.value, 'changed');
            r = await api(s, 'PATCH', `${xb}/absent`, { as: 'User', body: { value: 1 } });
            assertResponse(r, 404);
            r = await api(s, 'DELETE', `${xb}/made`, { as: 'User' });
            assert.equal(r.status, 204, r.text);
            r = await api(s, 'DELETE', `${xb}/made`, { as: 'User' });
            assertResponse(r, 404);

            // across every DAG, run and task
            doc = assertResponse(await api(s, 'GET', `${base('~', '~')}/~/xcomEntries`, { as: 'Viewer', query: { xcom_key: 'answer' } }));
            validate('XComCollectionResponse', doc, { strict: true });
            assert.ok(doc.xcom_entries.some((e) => e.dag_id === 'tis_xcom' && e.run_id === 'xcom_1'));
            doc = assertResponse(await api(s, 'GET', `${base('~', '~')}/~/xcomEntries`,
                { as: 'Viewer', query: { dag_display_name_pattern: 'tis\\_xc', xcom_key_pattern: 'NEST' } }));
            assert.deepEqual(doc.xcom_entries.map((e) => e.key), ['nested']);
        });

        test('dependencies, PATCH state (dry run, then racing the worker), roles', async () => {
            await trigger(s, 'tis_wait', 'wait_1');
            await tiState(s, 'tis_wait', 'wait_1', 'slow', (st) => st === 'running');
            const b = base('tis_wait', 'wait_1');

            // the waiting task says why it waits: its upstream
            let deps = assertResponse(await api(s, 'GET', `${b}/waiter/dependencies`, { as: 'Viewer' }));
            validate('TaskDependencyCollectionResponse', deps, { strict: true });
            const rule = deps.dependencies.find((d) => d.name === 'Trigger Rule');
            assert.ok(rule, JSON.stringify(deps));
            assert.match(rule.reason, /all_success/);
            assert.match(rule.reason, /'slow'/);
            deps = assertResponse(await api(s, 'GET', `${b}/slow/dependencies`, { as: 'Viewer' }));
            assert.deepEqual(deps.dependencies, [{ name: 'Task Instance State', reason: "Task is in the 'running' state." }]);

            // the Viewer may not change states
            let r = await api(s, 'PATCH', `${b}/slow`, { as: 'Viewer', body: { new_state: 'success' } });
            assertResponse(r, 403);
            r = await api(s, 'PATCH', `${b}/slow`, { as: 'User', body: { new_state: 'running' } });
            assertResponse(r, 422);
            r = await api(s, 'PATCH', `${b}/slow`, { as: 'User', body: { new_state: 'success', bogus: 1 } });
            assertResponse(r, 422);

            // dry run: what would change, and nothing changes
            r = await api(s, 'PATCH', `${b}/slow/dry_run`, { as: 'User', body: { new_state: 'success', include_downstream: true } });
            let doc = assertResponse(r);
            validate('TaskInstanceCollectionResponse', doc, { strict: true });
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.state]).sort(), [['slow', 'running'], ['waiter', null]]);
            assert.equal((await getTi(s, 'tis_wait', 'wait_1', 'slow')).state, 'running');

            // for real, while the worker runs the try: the mark wins, the worker's finish is refused
            // (the try is ended), and the run goes on from there
            r = await api(s, 'PATCH', `${b}/slow`, { as: 'User', body: { new_state: 'success', note: 'done by hand' } });
            doc = assertResponse(r);
            validate('TaskInstanceCollectionResponse', doc, { strict: true });
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.state, t.note]), [['slow', 'success', 'done by hand']]);
            const fin = await runDone(s, 'tis_wait', 'wait_1', 60000);
            const st = byTask(fin);
            assert.equal(st.slow.state, 'success');
            assert.equal(st.waiter.state, 'success');
            assert.ok(Date.parse(st.slow.end_date) - Date.parse(st.slow.start_date) < 250000, 'slow ran its full 300 s?');
            // again: already in that state
            r = await api(s, 'PATCH', `${b}/slow`, { as: 'User', body: { new_state: 'success' } });
            assertResponse(r, 409);
            // the note alone
            r = await api(s, 'PATCH', `${b}/side`, { as: 'User', body: { note: 'just a note' }, query: { update_mask: 'note' } });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.state, t.note]), [['side', 'success', 'just a note']]);
            // mark failed with its downstream
            r = await api(s, 'PATCH', `${b}/slow`, { as: 'User', body: { new_state: 'failed', include_downstream: true } });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.state]).sort(), [['slow', 'failed'], ['waiter', 'failed']]);
            assert.equal((await getTi(s, 'tis_wait', 'wait_1', 'side')).state, 'success');

            // 404s of single-instance routes
            for (const p of [`${b}/nope`, `${b}/nope/tries`, `${b}/nope/dependencies`, `${b}/nope/logs/1`, `${b}/slow/5`,
                `${base('tis_wait', 'no_run')}/slow`, `${base('no_dag', 'wait_1')}/slow`]) {
                r = await api(s, 'GET', p, { as: 'Viewer' });
                assertResponse(r, 404);
            }
            r = await api(s, 'GET', `${b}/slow/notanumber`, { as: 'Viewer' });
            assertResponse(r, 422);
            r = await api(s, 'PATCH', `${b}/nope`, { as: 'User', body: { new_state: 'success' } });
            assertResponse(r, 404);
            // no token at all
            r = await api(s, 'GET', b, { as: null });
            assert.equal(r.status, 401);
        });

        test('clearTaskInstances: a failed task re-runs, with its downstream', async () => {
            await trigger(s, 'tis_fail', 'fail_1');
            let fin = await runDone(s, 'tis_fail', 'fail_1');
            let st = byTask(fin);
            assert.equal(st.gate.state, 'failed');
            assert.equal(st.after_gate.state, 'upstream_failed');
            const cb = '/api/v2/dags/tis_fail/clearTaskInstances';

            // the default is a dry run of the failed instances
            let r = await api(s, 'POST', cb, { as: 'User', body: { dag_run_id: 'fail_1' } });
            let doc = assertResponse(r);
            validate('TaskInstanceCollectionResponse', doc, { strict: true });
            assert.deepEqual(doc.task_instances.map((t) => [t.task_id, t.state]).sort(), [['after_gate', 'upstream_failed'], ['gate', 'failed']]);
            assert.equal((await getTi(s, 'tis_fail', 'fail_1', 'gate')).state, 'failed');
            r = await api(s, 'POST', cb, { as: 'User', body: { dag_run_id: 'fail_1', task_ids: ['gate'], only_failed: true } });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => t.task_id), ['gate']);
            r = await api(s, 'POST', cb, { as: 'Viewer', body: { dag_run_id: 'fail_1' } });
            assertResponse(r, 403);
            r = await api(s, 'POST', cb, { as: 'User', body: { dag_run_id: 'no_run' } });
            assertResponse(r, 404);
            r = await api(s, 'POST', '/api/v2/dags/no_dag/clearTaskInstances', { as: 'User', body: {} });
            assertResponse(r, 404);
            r = await api(s, 'POST', cb, { as: 'User', body: { dry_run: 'yes' } });
            assertResponse(r, 422);

            // open the gate and clear for real: gate and its downstream run again
            fs.writeFileSync(path.join(dir, 'gate_open'), '');
            r = await api(s, 'POST', cb, {
                as: 'User', body: { dry_run: false, dag_run_id: 'fail_1', task_ids: ['gate'], include_downstream: true },
            });
            doc = assertResponse(r);
            assert.deepEqual(doc.task_instances.map((t) => t.task_id).sort(), ['after_gate', 'gate']);
            assert.ok(doc.task_instances.every((t) => t.state === null || t.state === 'scheduled' || t.state === 'queued' ||
                t.state === 'running' || t.state === 'success'), JSON.stringify(doc.task_instances.map((t) => t.state)));
            fin = await waitFor(async () => {
                const d = await listTis(s, 'tis_fail', 'fail_1');
                return d.task_instances.every((t) => t.state === 'success') ? d : false;
            }, 60000, 200);
            st = byTask(fin);
            assert.equal(st.gate.try_number, 2);
            const tries = assertResponse(await api(s, 'GET', `${base('tis_fail', 'fail_1')}/gate/tries`, { as: 'Viewer' }));
            assert.deepEqual(tries.task_instances.map((t) => [t.try_number, t.state]), [[1, 'failed'], [2, 'success']]);
            // nothing failed any more: nothing to clear
            r = await api(s, 'POST', cb, { as: 'User', body: { dry_run: false, dag_run_id: 'fail_1' } });
            doc = assertResponse(r);
            assert.equal(doc.total_entries, 0);
        });
    });
}
