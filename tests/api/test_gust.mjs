// gust's own endpoints (not in Airflow's contract): the live workers (GET /api/v2/gust/workers) and
// the named global rate limits (GET/PUT/DELETE /api/v2/gust/ratelimits[/{name}]). In standalone they
// come from the process's own registry (source "local"); in the distributed deployment from Redis
// (source "redis"), checked against the Redis keys themselves; with Redis unreachable the API says
// 503 and names the server instead of answering an empty list. And the UI's compact grid
// (GET /api/v2/gust/dags/{dag_id}/grid), checked cell by cell against the Airflow endpoints' full
// runs and task instances, on both deployments.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, enc, freePort, servicesAvailable, sleep, startGust, triggerAndWait, validateResponse, waitFor } from './lib.mjs';

// Bodies of gust's endpoints are not in the spec: they are checked here, field by field.
function checkWorker(w) {
    assert.equal(typeof w.worker_id, 'string');
    assert.ok(w.worker_id.length > 0);
    assert.equal(typeof w.hostname, 'string');
    assert.ok(Number.isInteger(w.pid) && w.pid > 0, `pid ${w.pid}`);
    assert.ok(Array.isArray(w.queues) && w.queues.every((q) => typeof q === 'string' && q.length > 0));
    assert.ok(Number.isInteger(w.concurrency) && w.concurrency > 0);
    assert.ok(Array.isArray(w.running) && w.running.every((x) => typeof x === 'string'));
    assert.equal(typeof w.version, 'string');
    assert.match(w.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.match(w.last_heartbeat, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok(Date.now() - Date.parse(w.last_heartbeat) < 60000, `stale heartbeat ${w.last_heartbeat}`);
    assert.deepEqual(Object.keys(w).sort(),
        ['concurrency', 'hostname', 'last_heartbeat', 'pid', 'queues', 'running', 'started_at', 'version', 'worker_id']);
}

function checkLimit(l) {
    assert.deepEqual(Object.keys(l).sort(), ['burst', 'name', 'per_second', 'rate']);
    assert.equal(typeof l.name, 'string');
    assert.equal(typeof l.rate, 'string');
    assert.equal(typeof l.per_second, 'number');
    assert.ok(Number.isInteger(l.burst) && l.burst >= 1);
}

// An error answer in Airflow's shape (the spec's HTTPExceptionResponse / HTTPValidationError).
function checkError(res, status) {
    assert.equal(res.status, status, `${res.method} ${res.path}: expected ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
    validateResponse('GET', '/api/v2/version', status, res.json);
    return res.json;
}

async function ok(s, method, p, o = {}, status = 200) {
    const res = await api(s, method, p, o);
    assert.equal(res.status, status, `${method} ${p}: expected ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
    return res.json;
}

// The rate-limit round trip both deployments must pass; redisGet(name) reads the stored
// definition straight from Redis (undefined: not checked).
async function limitRoundTrip(s, source, redisGet) {
    const name = 'gust_test.api-limit:1';
    const empty = await ok(s, 'GET', '/api/v2/gust/ratelimits', { as: 'Viewer' });
    assert.equal(empty.source, source);
    assert.ok(!empty.ratelimits.some((l) => l.name === name));
    // Viewer and User may not set limits; Op may
    checkError(await api(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Viewer', body: { limit: '10/m' } }), 403);
    checkError(await api(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'User', body: { limit: '10/m' } }), 403);
    const made = await ok(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Op', body: { limit: ' 10/m:5 ' } }, 201);
    checkLimit(made);
    assert.deepEqual(made, { name, rate: '10/m:5', per_second: 10 / 60, burst: 5 });
    if (redisGet) assert.equal(redisGet(name), '10/m:5');
    const replaced = await ok(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Op', body: { limit: '2/s' } }, 200);
    assert.deepEqual(replaced, { name, rate: '2/s', per_second: 2, burst: 1 });
    const list = await ok(s, 'GET', '/api/v2/gust/ratelimits', { as: 'Viewer' });
    const mine = list.ratelimits.find((l) => l.name === name);
    assert.ok(mine, JSON.stringify(list));
    checkLimit(mine);
    assert.equal(mine.rate, '2/s');
    assert.equal(list.total_entries, list.ratelimits.length);
    assert.deepEqual(await ok(s, 'GET', `/api/v2/gust/ratelimits/${name}`, { as: 'Viewer' }), replaced);
    if (redisGet) assert.equal(redisGet(name), '2/s');
    // bad bodies and names: 422 naming the field, nothing stored
    const bad = checkError(await api(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Op', body: { limit: 'ten/m' } }), 422);
    assert.deepEqual(bad.detail[0].loc, ['body', 'limit']);
    assert.match(bad.detail[0].msg, /ten\/m/);
    checkError(await api(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Op', body: { limit: 10 } }), 422);
    checkError(await api(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Op', body: {} }), 422);
    checkError(await api(s, 'PUT', `/api/v2/gust/ratelimits/${name}`, { as: 'Op', body: { limit: '1/s', extra: 1 } }), 422);
    const badName = checkError(await api(s, 'PUT', '/api/v2/gust/ratelimits/bad%20name', { as: 'Op', body: { limit: '1/s' } }), 422);
    assert.deepEqual(badName.detail[0].loc, ['path', 'name']);
    assert.equal((await ok(s, 'GET', `/api/v2/gust/ratelimits/${name}`, { as: 'Viewer' })).rate, '2/s');
    // delete: 204, then 404; Viewer may not
    checkError(await api(s, 'DELETE', `/api/v2/gust/ratelimits/${name}`, { as: 'Viewer' }), 403);
    await ok(s, 'DELETE', `/api/v2/gust/ratelimits/${name}`, { as: 'Op' }, 204);
    if (redisGet) assert.equal(redisGet(name), '');
    checkError(await api(s, 'DELETE', `/api/v2/gust/ratelimits/${name}`, { as: 'Op' }), 404);
    checkError(await api(s, 'GET', `/api/v2/gust/ratelimits/${name}`, { as: 'Viewer' }), 404);
    assert.ok(!(await ok(s, 'GET', '/api/v2/gust/ratelimits', { as: 'Viewer' })).ratelimits.some((l) => l.name === name));
    // the changes are in the event log under the Op user
    const ev = await ok(s, 'GET', '/api/v2/eventLogs', { as: 'Viewer', query: { included_events: ['api.set_ratelimit', 'api.delete_ratelimit'] } });
    assert.deepEqual(ev.event_logs.map((e) => e.event), ['api.set_ratelimit', 'api.set_ratelimit', 'api.delete_ratelimit']);
    assert.ok(ev.event_logs.every((e) => e.owner === `api:${s.user('Op').username}`));
}

// ---- the grid ------------------------------------------------------------------------------------

// A DAG whose file order (zeta, alpha, mid) is not its id order, and whose middle task fails until
// a file exists: its runs differ cell by cell.
function gridDags(dir) {
    return {
        'grid_dag.yml': gridDagText(dir, false),
    };
}

function gridDagText(dir, late) {
    return `
grid_dag:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: zeta
      operator: bash
      bash_command: "echo z"
    - task_id: alpha
      operator: bash
      retries: 0
      bash_command: "if [ -f '${dir}/alpha_ok' ]; then echo ok; else echo not yet; exit 3; fi"
      dependencies: [zeta]
    - task_id: mid
      operator: bash
      bash_command: "echo m"
      dependencies: [alpha]
${late ? `    - task_id: late
      operator: bash
      bash_command: "echo late"
` : ''}`;
}

const GRID_RUN_KEYS = ['dag_run_id', 'end_date', 'logical_date', 'run_after', 'run_type', 'start_date', 'state'];

// The grid's body, shape checked; every cell compared with the full task instance of the Airflow
// endpoint, and every run with the full DAGRunResponse.
async function checkGrid(s, g, expectTasks) {
    assert.deepEqual(Object.keys(g).sort(), ['dag_runs', 'states', 'task_ids', 'total_entries', 'try_numbers']);
    assert.deepEqual(g.task_ids, expectTasks);
    assert.ok(Number.isInteger(g.total_entries));
    const ids = g.dag_runs.map((r) => r.dag_run_id);
    assert.deepEqual(Object.keys(g.states).sort(), [...ids].sort());
    assert.deepEqual(Object.keys(g.try_numbers).sort(), [...ids].sort());
    for (let i = 1; i < g.dag_runs.length; i++) {
        assert.ok(Date.parse(g.dag_runs[i - 1].run_after) >= Date.parse(g.dag_runs[i].run_after), 'newest run first');
    }
    for (const run of g.dag_runs) {
        assert.deepEqual(Object.keys(run).sort(), GRID_RUN_KEYS);
        const full = await ok(s, 'GET', `/api/v2/dags/grid_dag/dagRuns/${enc(run.dag_run_id)}`, { as: 'Viewer' });
        for (const k of GRID_RUN_KEYS) assert.deepEqual(run[k], full[k], `run ${run.dag_run_id}: ${k}`);
        const tis = await ok(s, 'GET', `/api/v2/dags/grid_dag/dagRuns/${enc(run.dag_run_id)}/taskInstances`, { as: 'Viewer' });
        const byTask = new Map(tis.task_instances.map((t) => [t.task_id, t]));
        const states = g.states[run.dag_run_id], tries = g.try_numbers[run.dag_run_id];
        assert.equal(states.length, g.task_ids.length);
        assert.equal(tries.length, g.task_ids.length);
        g.task_ids.forEach((task, j) => {
            const ti = byTask.get(task);
            if (!ti) {
                assert.equal(tries[j], null, `${run.dag_run_id}/${task}: no instance, try_numbers null`);
                assert.equal(states[j], null, `${run.dag_run_id}/${task}: no instance, state null`);
                return;
            }
            assert.equal(states[j], ti.state ?? null, `${run.dag_run_id}/${task}: state`);
            assert.equal(tries[j], ti.try_number, `${run.dag_run_id}/${task}: try_number`);
        });
    }
}

async function gridChecks(s, dir) {
    // three finished runs: the first fails at alpha (mid upstream_failed), the others succeed
    const first = await triggerAndWait(s, 'grid_dag');
    assert.equal(first.state, 'failed');
    fs.writeFileSync(path.join(dir, 'alpha_ok'), '');
    const second = await triggerAndWait(s, 'grid_dag');
    const third = await triggerAndWait(s, 'grid_dag');
    assert.equal(third.state, 'success');
    const newestFirst = [third, second, first].map((r) => r.dag_run_id);
    const p = '/api/v2/gust/dags/grid_dag/grid';

    // default page: every run, newest first, tasks in the file's order
    const all = await ok(s, 'GET', p, { as: 'Viewer' });
    assert.equal(all.total_entries, 3);
    assert.deepEqual(all.dag_runs.map((r) => r.dag_run_id), newestFirst);
    await checkGrid(s, all, ['zeta', 'alpha', 'mid']);
    assert.deepEqual(all.states[first.dag_run_id], ['success', 'failed', 'upstream_failed']);
    assert.deepEqual(all.states[third.dag_run_id], ['success', 'success', 'success']);
    assert.deepEqual(all.try_numbers[third.dag_run_id], [1, 1, 1]);
    // the same order as the Airflow list by -run_after
    const runs = await ok(s, 'GET', '/api/v2/dags/grid_dag/dagRuns', { as: 'Viewer', query: { order_by: '-run_after' } });
    assert.deepEqual(all.dag_runs.map((r) => r.dag_run_id), runs.dag_runs.map((r) => r.dag_run_id));

    // paging
    const page1 = await ok(s, 'GET', p, { as: 'Viewer', query: { limit: 2 } });
    assert.deepEqual(page1.dag_runs.map((r) => r.dag_run_id), newestFirst.slice(0, 2));
    assert.equal(page1.total_entries, 3);
    await checkGrid(s, page1, ['zeta', 'alpha', 'mid']);
    const page2 = await ok(s, 'GET', p, { as: 'Viewer', query: { limit: 2, offset: 2 } });
    assert.deepEqual(page2.dag_runs.map((r) => r.dag_run_id), newestFirst.slice(2));
    assert.deepEqual(page2.states[first.dag_run_id], all.states[first.dag_run_id]);
    const past = await ok(s, 'GET', p, { as: 'Viewer', query: { offset: 10 } });
    assert.deepEqual(past, { dag_runs: [], task_ids: ['zeta', 'alpha', 'mid'], states: {}, try_numbers: {}, total_entries: 3 });
    const none = await ok(s, 'GET', p, { as: 'Viewer', query: { limit: 0 } });
    assert.deepEqual(none.dag_runs, []);
    assert.equal(none.total_entries, 3);
    // a limit over 365 is clamped, not refused; a bad one is a 422 naming it
    assert.equal((await ok(s, 'GET', p, { as: 'Viewer', query: { limit: 5000 } })).dag_runs.length, 3);
    for (const [k, v] of [['limit', -1], ['limit', 'ten'], ['offset', -3]]) {
        const err = checkError(await api(s, 'GET', p, { as: 'Viewer', query: { [k]: v } }), 422);
        assert.deepEqual(err.detail[0].loc, ['query', k]);
    }

    // a task added to the file later: a column of nulls in the runs that never had it
    s.writeDag('grid_dag.yml', gridDagText(dir, true));
    const grown = await waitFor(async () => {
        const g = await ok(s, 'GET', p, { as: 'Viewer' });
        return g.task_ids.includes('late') && g;
    }, 60000, 300);
    await checkGrid(s, grown, ['zeta', 'alpha', 'mid', 'late']);
    for (const id of newestFirst) {
        assert.equal(grown.states[id][3], null);
        assert.equal(grown.try_numbers[id][3], null);
    }

    // unknown DAG: 404; no credentials: 401
    const missing = checkError(await api(s, 'GET', '/api/v2/gust/dags/no_such_dag/grid', { as: 'Viewer' }), 404);
    assert.match(missing.detail, /no_such_dag/);
    checkError(await api(s, 'GET', p, { as: null }), 401);
}

describe('gust endpoints (standalone)', { timeout: 300000 }, () => {
    let s;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-grid-'));
    before(async () => {
        s = await startGust({ mode: 'standalone', config: { 'worker.concurrency': '3' }, dags: gridDags(dir) });
    });
    after(async () => {
        if (s) await s.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test('GET /api/v2/gust/dags/{dag_id}/grid: runs, task ids in file order, states aligned, paging, 404, 401', async () => {
        await gridChecks(s, dir);
    });

    test('GET /api/v2/gust/workers lists the in-process worker pool', async () => {
        const body = await waitFor(async () => {
            const b = await ok(s, 'GET', '/api/v2/gust/workers', { as: 'Viewer' });
            return b.workers.length > 0 && b;
        }, 20000, 200);
        assert.equal(body.source, 'local');
        assert.equal(body.total_entries, body.workers.length);
        assert.equal(body.workers.length, 1);
        const w = body.workers[0];
        checkWorker(w);
        assert.equal(w.concurrency, 3);
        assert.deepEqual(w.queues, ['*']);
        checkError(await api(s, 'GET', '/api/v2/gust/workers', { as: null }), 401);
    });

    test('rate limits: set, list, get, delete in the process registry', async () => {
        await limitRoundTrip(s, 'local');
    });
});

const skipApi = servicesAvailable() ? false
    : 'the test servers are not running (bash tests/services.sh start; eval "$(bash tests/services.sh env)")';

describe('gust endpoints (distributed)', { timeout: 300000, skip: skipApi }, () => {
    let s;
    const extra = [];    // API daemons this suite starts itself
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-grid-'));
    before(async () => { s = await startGust({ mode: 'api', dags: gridDags(dir) }); });
    after(async () => {
        for (const p of extra) if (p.exitCode === null) p.kill('SIGKILL');
        if (s) await s.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test('GET /api/v2/gust/dags/{dag_id}/grid on PostgreSQL: the same answers', async () => {
        await gridChecks(s, dir);
    });

    const redisPort = () => process.env.GUST_TEST_REDIS_PORT || new URL(process.env.GUST_TEST_REDIS_URL).port;
    const redisGet = (name) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', redisPort(), '-n', '6', '--raw', 'GET',
        `${s.redisPrefix}rldef:${name}`], { encoding: 'utf8' }).trim();

    test('GET /api/v2/gust/workers lists the running worker from Redis', async () => {
        const body = await waitFor(async () => {
            const b = await ok(s, 'GET', '/api/v2/gust/workers', { as: 'Viewer' });
            return b.workers.some((w) => w.queues.includes(s.queue)) && b;
        }, 30000, 300);
        assert.equal(body.source, 'redis');
        const w = body.workers.find((x) => x.queues.includes(s.queue));
        checkWorker(w);
        assert.equal(w.concurrency, 4);
        assert.match(w.hostname, /^w_/);
        // the key the worker beats is the one listed
        const keys = execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', redisPort(), '-n', '6', '--scan', '--pattern',
            `${s.redisPrefix}worker:*`], { encoding: 'utf8' }).trim().split('\n');
        assert.ok(keys.includes(`${s.redisPrefix}worker:${w.worker_id}`), `keys: ${keys}`);
    });

    test('rate limits: set, list, get, delete round trip against Redis', async () => {
        await limitRoundTrip(s, 'redis', redisGet);
    });

    test('Redis unreachable: 503 naming the server, not an empty list', async () => {
        // a second API on the same store, its redis.url pointing at a port nobody listens on
        const port = await freePort();
        const dead = await freePort();
        const logFile = path.join(s.tmp, 'api-dead-redis.log');
        const fd = fs.openSync(logFile, 'a');
        const child = spawn(s.bin, [...s.flags, `--api.port=${port}`, `--redis.url=redis://127.0.0.1:${dead}/6`, 'api'],
            { env: s.env, stdio: ['ignore', fd, fd] });
        fs.closeSync(fd);
        extra.push(child);
        const s2 = { url: `http://127.0.0.1:${port}` };
        const u = s.user('Op');
        const headers = { Authorization: `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}` };
        await waitFor(async () => {
            try { return (await fetch(`${s2.url}/health`)).status === 200; } catch { return false; }
        }, 30000, 200);
        for (const [method, p, body] of [
            ['GET', '/api/v2/gust/workers'],
            ['GET', '/api/v2/gust/ratelimits'],
            ['PUT', '/api/v2/gust/ratelimits/x', { limit: '1/s' }],
            ['DELETE', '/api/v2/gust/ratelimits/x'],
        ]) {
            const res = await api(s2, method, p, { as: null, headers, body });
            const err = checkError(res, 503);
            assert.match(err.detail, new RegExp(`127\\.0\\.0\\.1:${dead}`), `${method} ${p}: ${err.detail}`);
        }
        // the rest of the API is unaffected
        assert.equal((await api(s2, 'GET', '/api/v2/variables', { as: null, headers })).status, 200);
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.on('exit', r)), sleep(15000)]);
        assert.equal(child.exitCode, 0, `the second API did not stop cleanly:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
        const log = fs.readFileSync(logFile, 'utf8');
        assert.ok(!/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(log), log.slice(-3000));
    });
});
