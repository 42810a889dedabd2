// Variables, connections, pools, the event log and assets through the REST API, against Airflow's
// REST API v2 contract (tests/api/v2.yaml): create/read/update/delete of each, bodies validated
// against the spec's schemas, 404/409/422/400 in Airflow's shapes, paging, order and filters,
// roles (Op writes variables/connections/pools, User posts asset events, Viewer only reads),
// secrets (a connection's password never appears in any answer and is encrypted in the store;
// secret-looking variables are masked), pool slot counts while a task holds slots, the event log
// naming the API user of a mutation, and an asset event made through the API starting the DAG
// scheduled on that asset. Once on `gust standalone` (SQLite) and once on the distributed
// deployment (`gust api` + scheduler + worker on PostgreSQL, RabbitMQ and Redis).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, assertResponse, enc, servicesAvailable, startGust, validate, waitFor } from './lib.mjs';

const DAGS = {
    'kv.yml': `
kv_pool_sleeper:
  schedule: None
  tasks:
    - task_id: hold
      operator: bash
      bash_command: "sleep 8"
      pool: kv_busy_pool
      pool_slots: 2
kv_producer:
  schedule: None
  tasks:
    - task_id: make
      operator: bash
      bash_command: "echo made"
      outlets: ["s3://kv-test/made"]
    - task_id: read
      operator: bash
      bash_command: "echo read"
      inlets: ["s3://kv-test/made"]
      dependencies: [make]
kv_consumer:
  schedule: ["s3://kv-test/made"]
  tasks:
    - task_id: use
      operator: bash
      bash_command: "echo used"
kv_needs_two:
  schedule: ["s3://kv-test/left", "s3://kv-test/right"]
  tasks:
    - task_id: both
      operator: bash
      bash_command: "echo both"
kv_conn_check:
  schedule: None
  tasks:
    - task_id: check
      operator: bash
      bash_command: "test '{{ conn.kv_conn.password }}' = 's3cr3t-pw-XYZ' && test '{{ conn.kv_conn.host }}' = 'db2.invalid'"
`,
};

const SECRET_PW = 's3cr3t-pw-XYZ';
const SECRET_TOKEN = 'tok-ABC-123';
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function kvSuite(mode) {
    const skip = mode === 'api' && !servicesAvailable()
        ? 'the test servers are not running (bash tests/services.sh start; eval "$(bash tests/services.sh env)")' : false;
    describe(`kv (${mode})`, { timeout: 600000, skip }, () => {
        let s;
        const texts = [];   // every answer's text, checked for secrets at the end

        async function call(method, p, o = {}, status = 200) {
            const res = await api(s, method, p, o);
            texts.push(res.text);
            return assertResponse(res, status);
        }
        const get = (p, query, status = 200, as = 'Viewer') => call('GET', p, { query, as }, status);

        // The raw value of a column of the store, read without gust.
        function rawQuery(sql) {
            if (mode === 'api') {
                const u = new URL(process.env.GUST_TEST_PG_URL);
                u.pathname = `/${s.db}`;
                return execFileSync('psql', ['-qAtX', u.toString(), '-c', sql], { encoding: 'utf8' }).trim();
            }
            const db = findDb(s.home);
            assert.ok(db, `no SQLite database under ${s.home}`);
            return execFileSync('sqlite3', [db, sql], { encoding: 'utf8' }).trim();
        }

        async function cliOk(args, timeoutMs) {
            const r = await s.cli(args, { timeoutMs });
            assert.equal(r.code, 0, `gust ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
            return r.stdout;
        }

        async function runsOf(dagId) {
            const r = await s.cli(['dags', 'list-runs', dagId, '--output', 'json']);
            if (r.code !== 0) return [];
            const j = JSON.parse(r.stdout);
            return Array.isArray(j) ? j : (j.runs || j.dag_runs || []);
        }

        before(async () => {
            s = await startGust({ mode, dags: DAGS });
            // the DAG processor stores the DAGs (and their asset references) within a second or two
            await waitFor(async () => (await runsOf('kv_consumer')) && rawQuery(
                "SELECT COUNT(*) FROM dag WHERE dag_id IN ('kv_pool_sleeper','kv_producer','kv_consumer','kv_needs_two','kv_conn_check')") === '5',
            30000, 300);
        });

        after(async () => { if (s) await s.stop(); });

        // ---- variables ----------------------------------------------------------------------

        test('variables: create, read, update with update_mask, delete', async () => {
            const made = await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_var', value: 'one', description: 'first' } }, 201);
            validate('VariableResponse', made, { strict: true });
            assert.deepEqual(made, { key: 'kv_var', value: 'one', description: 'first', is_encrypted: false, team_name: null });
            const got = await get('/api/v2/variables/kv_var');
            assert.equal(got.value, 'one');
            // only the value changes: the description in the body is not in the mask
            const p1 = await call('PATCH', '/api/v2/variables/kv_var', {
                as: 'Op', query: { update_mask: 'value' }, body: { key: 'kv_var', value: 'two', description: 'ignored' },
            });
            assert.equal(p1.value, 'two');
            assert.equal(p1.description, 'first');
            // without a mask every field sent changes; a description of null clears it
            const p2 = await call('PATCH', '/api/v2/variables/kv_var', { as: 'Op', body: { key: 'kv_var', value: 'three', description: null } });
            assert.equal(p2.value, 'three');
            assert.equal(p2.description, null);
            // a non-string JSON value is stored as its JSON text
            const num = await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_num', value: { a: [1, 2] } } }, 201);
            assert.equal(num.value, '{"a":[1,2]}');
            assert.equal((await cliOk(['variables', 'get', 'kv_num'])).trim(), '{"a":[1,2]}');
            await call('DELETE', '/api/v2/variables/kv_var', { as: 'Op' }, 204);
            await get('/api/v2/variables/kv_var', undefined, 404);
            const gone = await api(s, 'DELETE', '/api/v2/variables/kv_var', { as: 'Op' });
            assertResponse(gone, 404);
            assert.equal(gone.json.detail, 'The Variable with key: `kv_var` was not found');
        });

        test('variables: 409 on a duplicate, 422 on bad bodies, 400 on a key mismatch', async () => {
            await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_dup', value: 'x' } }, 201);
            const dup = await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_dup', value: 'y' } }, 409);
            assert.match(dup.detail, /kv_dup.*already exists/);
            assert.equal((await get('/api/v2/variables/kv_dup')).value, 'x', 'a refused create changes nothing');
            for (const [body, field] of [
                [{ value: 'v' }, 'key'],
                [{ key: 'k' }, 'value'],
                [{ key: 7, value: 'v' }, 'key'],
                [{ key: 'k', value: 'v', colour: 'red' }, 'colour'],
                [{ key: 'k'.repeat(251), value: 'v' }, 'key'],
            ]) {
                const bad = await call('POST', '/api/v2/variables', { as: 'Op', body }, 422);
                assert.deepEqual(bad.detail[0].loc, ['body', field], JSON.stringify(bad));
            }
            await call('POST', '/api/v2/variables', { as: 'Op', body: '{"key": "broken', raw: true }, 422);
            await call('POST', '/api/v2/variables', { as: 'Op', body: [1, 2] }, 422);
            const mism = await call('PATCH', '/api/v2/variables/kv_dup', { as: 'Op', body: { key: 'other', value: 'v' } }, 400);
            assert.match(mism.detail, /doesn't match/);
            await call('PATCH', '/api/v2/variables/kv_dup', { as: 'Op', query: { update_mask: 'colour' }, body: { key: 'kv_dup', value: 'v' } }, 400);
            await call('PATCH', '/api/v2/variables/kv_missing', { as: 'Op', body: { key: 'kv_missing', value: 'v' } }, 404);
        });

        test('variables: secret-looking keys are masked, stored in clear for tasks', async () => {
            const pw = await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_db_PASSWORD', value: 'hunter2-secret' } }, 201);
            assert.equal(pw.value, '***');
            assert.equal((await get('/api/v2/variables/kv_db_PASSWORD')).value, '***');
            const list = await get('/api/v2/variables', { variable_key_pattern: 'kv_db_' });
            assert.deepEqual(list.variables.map((v) => v.value), ['***']);
            // a JSON object: its secret-looking top-level keys are masked, the rest shown
            await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_cfg', value: '{"api_key": "k-999", "region": "eu"}' } }, 201);
            const cfg = JSON.parse((await get('/api/v2/variables/kv_cfg')).value);
            assert.deepEqual(cfg, { api_key: '***', region: 'eu' });
            // the store keeps the value itself (tasks read it)
            assert.equal((await cliOk(['variables', 'get', 'kv_db_PASSWORD'])).trim(), 'hunter2-secret');
            for (const t of texts) assert.ok(!t.includes('hunter2-secret') && !t.includes('k-999'), `a masked value leaked: ${t.slice(0, 300)}`);
        });

        test('variables: list with pattern, paging, order', async () => {
            for (let i = 0; i < 5; i++) {
                await call('POST', '/api/v2/variables', { as: 'Op', body: { key: `kv_page_${i}`, value: `v${i}`, description: `d${4 - i}` } }, 201);
            }
            await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_pageXno', value: 'x', description: 'zz' } }, 201);
            const all = await get('/api/v2/variables', { variable_key_pattern: 'kv_page_', limit: 100 });
            // '_' is a LIKE wildcard, as the spec says: kv_pageXno matches kv_page_ too
            // bytewise order: 'X' (0x58) sorts before '_' (0x5f)
            assert.deepEqual(all.variables.map((v) => v.key), ['kv_pageXno', 'kv_page_0', 'kv_page_1', 'kv_page_2', 'kv_page_3', 'kv_page_4']);
            assert.equal(all.total_entries, 6);
            const two = await get('/api/v2/variables', { variable_key_pattern: 'kv_page_', limit: 2, offset: 2 });
            assert.deepEqual(two.variables.map((v) => v.key), ['kv_page_1', 'kv_page_2']);
            assert.equal(two.total_entries, 6);
            const desc = await get('/api/v2/variables', { variable_key_pattern: 'kv_page_', order_by: '-key' });
            assert.deepEqual(desc.variables.map((v) => v.key), [...all.variables.map((v) => v.key)].reverse());
            const byDesc = await get('/api/v2/variables', { variable_key_pattern: 'kv_page_%', order_by: 'description', limit: 5 });
            assert.deepEqual(byDesc.variables.map((v) => v.description), ['d0', 'd1', 'd2', 'd3', 'd4']);
            // alternatives with |, case-insensitive, spaces trimmed
            const alt = await get('/api/v2/variables', { variable_key_pattern: 'KV_PAGE_1 | kv_page_3' });
            assert.deepEqual(alt.variables.map((v) => v.key), ['kv_page_1', 'kv_page_3']);
            // a backslash is literal (never a malformed pattern); invalid text matches nothing
            assert.equal((await get('/api/v2/variables', { variable_key_pattern: 'kv\\' })).total_entries, 0);
            assert.equal((await get('/api/v2/variables', { variable_key_pattern: '%' })).total_entries >= 6, true);
            assert.equal((await get('/api/v2/variables?variable_key_pattern=%FF%FE')).total_entries, 0);
            await get('/api/v2/variables', { order_by: 'nope' }, 400);
            await get('/api/v2/variables', { limit: -1 }, 422);
            await get('/api/v2/variables', { limit: 'many' }, 422);
        });

        test('variables: bulk create/update/delete with fail, skip and overwrite', async () => {
            await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_b1', value: 'old' } }, 201);
            const r1 = await call('PATCH', '/api/v2/variables', {
                as: 'Op', body: {
                    actions: [
                        { action: 'create', entities: [{ key: 'kv_b1', value: 'new' }, { key: 'kv_b2', value: 'b2' }] },
                        { action: 'create', action_on_existence: 'skip', entities: [{ key: 'kv_b1', value: 'skipped' }, { key: 'kv_b3', value: 'b3' }] },
                        { action: 'update', entities: [{ key: 'kv_nope', value: 'x' }] },
                        { action: 'delete', action_on_non_existence: 'skip', entities: ['kv_b3', 'kv_nope'] },
                    ],
                },
            });
            validate('BulkResponse', r1, { strict: true });
            // the first create fails as a whole (kv_b1 exists), the second skips kv_b1 and makes kv_b3
            assert.equal(r1.create.errors.length, 1);
            assert.equal(r1.create.errors[0].status_code, 409);
            assert.match(r1.create.errors[0].error, /kv_b1/);
            assert.deepEqual(r1.create.success, ['kv_b3']);
            assert.equal(r1.update.errors[0].status_code, 404);
            assert.deepEqual(r1.delete.success, ['kv_b3']);
            await get('/api/v2/variables/kv_b2', undefined, 404);
            assert.equal((await get('/api/v2/variables/kv_b1')).value, 'old');
            const r2 = await call('PATCH', '/api/v2/variables', {
                as: 'Op', body: {
                    actions: [
                        { action: 'create', action_on_existence: 'overwrite', entities: [{ key: 'kv_b1', value: 'over' }] },
                        { action: 'update', update_mask: ['description'], entities: [{ key: 'kv_b1', value: 'not this', description: 'desc' }] },
                    ],
                },
            });
            assert.deepEqual(r2.create.success, ['kv_b1']);
            assert.deepEqual(r2.update.success, ['kv_b1']);
            assert.equal(r2.delete, null);
            const b1 = await get('/api/v2/variables/kv_b1');
            assert.equal(b1.value, 'over');
            assert.equal(b1.description, 'desc');
            await call('PATCH', '/api/v2/variables', { as: 'Op', body: { actions: [{ action: 'rename', entities: [] }] } }, 422);
            await call('PATCH', '/api/v2/variables', { as: 'Op', body: { actions: [{ action: 'create', entities: [{ key: 'x' }] }] } }, 422);
        });

        test('roles: Viewer reads, User may not write variables, Op may; the event log names the API user', async () => {
            await call('GET', '/api/v2/variables', { as: 'Viewer' });
            const denied = await call('POST', '/api/v2/variables', { as: 'User', body: { key: 'kv_role', value: 'u' } }, 403);
            assert.match(denied.detail, /Op/);
            await call('POST', '/api/v2/variables', { as: 'Viewer', body: { key: 'kv_role', value: 'u' } }, 403);
            await call('DELETE', '/api/v2/variables/kv_dup', { as: 'User' }, 403);
            await call('POST', '/api/v2/connections', { as: 'User', body: { connection_id: 'kv_role', conn_type: 'http' } }, 403);
            await call('POST', '/api/v2/pools', { as: 'User', body: { name: 'kv_role', slots: 1 } }, 403);
            await call('GET', '/api/v2/variables', { as: null }, 401);
            await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_role', value: 'op' } }, 201);
            const op = s.user('Op').username;
            const ev = await get('/api/v2/eventLogs', { event: 'api.post_variable', owner: `api:${op}` });
            const mine = ev.event_logs.find((e) => JSON.parse(e.extra || '{}').key === 'kv_role');
            assert.ok(mine, `no api.post_variable by api:${op} for kv_role: ${JSON.stringify(ev).slice(0, 600)}`);
            assert.equal(mine.owner, `api:${op}`);
            assert.equal(mine.event, 'api.post_variable');
            // the refused attempt by User wrote nothing
            const byUser = await get('/api/v2/eventLogs', { event: 'api.post_variable', owner: `api:${s.user('User').username}` });
            assert.equal(byUser.total_entries, 0);
        });

        // ---- connections --------------------------------------------------------------------

        test('connections: create, read, update, delete; the password never shown, encrypted at rest', async () => {
            const body = {
                connection_id: 'kv_conn', conn_type: 'postgres', host: 'db.invalid', port: 5432, login: 'me',
                password: SECRET_PW, schema: 'app', description: 'a db',
                extra: JSON.stringify({ sslmode: 'require', auth: { token: SECRET_TOKEN } }),
            };
            const made = await call('POST', '/api/v2/connections', { as: 'Op', body }, 201);
            validate('ConnectionResponse', made, { strict: true });
            assert.equal(made.password, '***');
            assert.deepEqual(JSON.parse(made.extra), { sslmode: 'require', auth: { token: '***' } });
            assert.equal(made.port, 5432);
            const one = await get('/api/v2/connections/kv_conn');
            assert.equal(one.host, 'db.invalid');
            assert.equal(one.password, '***');
            assert.equal(one.schema, 'app');
            // stored encrypted: the raw row holds tokens, not the secrets
            const raw = rawQuery("SELECT password || ' ' || extra FROM connection WHERE conn_id = 'kv_conn'");
            assert.match(raw, /^gust1:\S+ gust1:\S+$/, `raw row: ${raw}`);
            assert.ok(!raw.includes(SECRET_PW) && !raw.includes(SECRET_TOKEN));
            // PATCH with the masked password sent back keeps the real one; host changes
            const patched = await call('PATCH', '/api/v2/connections/kv_conn', {
                as: 'Op', body: { ...one, team_name: undefined, host: 'db2.invalid', password: '***', extra: one.extra },
            });
            assert.equal(patched.host, 'db2.invalid');
            assert.equal(patched.password, '***');
            assert.deepEqual(JSON.parse(patched.extra), { sslmode: 'require', auth: { token: '***' } });
            // a task reads the kept password through the connection
            await cliOk(['dags', 'trigger', 'kv_conn_check', '--wait'], 120000);
            // update_mask: only the port changes
            const p2 = await call('PATCH', '/api/v2/connections/kv_conn', {
                as: 'Op', query: { update_mask: ['port'] }, body: { connection_id: 'kv_conn', conn_type: 'http', port: 6543, host: 'nope' },
            });
            assert.equal(p2.port, 6543);
            assert.equal(p2.conn_type, 'postgres');
            assert.equal(p2.host, 'db2.invalid');
            // a connection without a password answers null
            const plain = await call('POST', '/api/v2/connections', { as: 'Op', body: { connection_id: 'kv_plain', conn_type: 'http' } }, 201);
            assert.equal(plain.password, null);
            assert.equal(plain.extra, null);
            await call('DELETE', '/api/v2/connections/kv_plain', { as: 'Op' }, 204);
            await get('/api/v2/connections/kv_plain', undefined, 404);
            await call('DELETE', '/api/v2/connections/kv_plain', { as: 'Op' }, 404);
        });

        test('connections: 409, 422, 400, list filters and paging, test is disabled, bulk', async () => {
            await call('POST', '/api/v2/connections', { as: 'Op', body: { connection_id: 'kvc-a', conn_type: 'http', password: SECRET_PW } }, 201);
            await call('POST', '/api/v2/connections', { as: 'Op', body: { connection_id: 'kvc-b', conn_type: 'aws' } }, 201);
            const dup = await call('POST', '/api/v2/connections', { as: 'Op', body: { connection_id: 'kvc-a', conn_type: 'ftp' } }, 409);
            assert.match(dup.detail, /kvc-a/);
            for (const [body, field] of [
                [{ conn_type: 'http' }, 'connection_id'],
                [{ connection_id: 'bad id!', conn_type: 'http' }, 'connection_id'],
                [{ connection_id: 'kv_x', conn_type: 'http', port: 'eighty' }, 'port'],
                [{ connection_id: 'kv_x', conn_type: 'http', port: 70000 }, 'port'],
                [{ connection_id: 'kv_x', conn_type: 'http', extra: '[1, 2]' }, 'extra'],
                [{ connection_id: 'kv_x', conn_type: 'http', extra: 'not json' }, 'extra'],
                [{ connection_id: 'kv_x' }, 'conn_type'],
            ]) {
                const bad = await call('POST', '/api/v2/connections', { as: 'Op', body }, 422);
                assert.deepEqual(bad.detail[0].loc, ['body', field], JSON.stringify(bad));
            }
            await get('/api/v2/connections/kv_x', undefined, 404);
            const nf = await api(s, 'GET', '/api/v2/connections/kv_x', { as: 'Viewer' });
            assert.equal(nf.json.detail, 'The Connection with connection_id: `kv_x` was not found');
            await call('PATCH', '/api/v2/connections/kvc-a', { as: 'Op', body: { connection_id: 'kvc-b', conn_type: 'http' } }, 400);
            await call('PATCH', '/api/v2/connections/kv_none', { as: 'Op', body: { connection_id: 'kv_none', conn_type: 'http' } }, 404);
            const list = await get('/api/v2/connections', { connection_id_pattern: 'kvc-', order_by: '-connection_id' });
            assert.deepEqual(list.connections.map((c) => c.connection_id), ['kvc-b', 'kvc-a']);
            assert.equal(list.total_entries, 2);
            const page = await get('/api/v2/connections', { connection_id_pattern: 'kvc-', limit: 1, offset: 1 });
            assert.deepEqual(page.connections.map((c) => c.connection_id), ['kvc-b']);
            const byType = await get('/api/v2/connections', { connection_id_pattern: 'kvc-', order_by: 'conn_type' });
            assert.deepEqual(byType.connections.map((c) => c.conn_type), ['aws', 'http']);
            const t = await call('POST', '/api/v2/connections/test', { as: 'Op', body: { connection_id: 'kvc-a', conn_type: 'http' } }, 403);
            assert.match(t.detail, /disabled/);
            const bulk = await call('PATCH', '/api/v2/connections', {
                as: 'Op', body: {
                    actions: [
                        { action: 'create', entities: [{ connection_id: 'kvc-c', conn_type: 'http', password: SECRET_PW }] },
                        { action: 'update', entities: [{ connection_id: 'kvc-b', conn_type: 'aws', host: 'h.invalid' }] },
                        { action: 'delete', entities: ['kvc-a'] },
                    ],
                },
            });
            validate('BulkResponse', bulk);
            assert.deepEqual([bulk.create.success, bulk.update.success, bulk.delete.success], [['kvc-c'], ['kvc-b'], ['kvc-a']]);
            assert.equal((await get('/api/v2/connections/kvc-b')).host, 'h.invalid');
            await get('/api/v2/connections/kvc-a', undefined, 404);
            await call('PATCH', '/api/v2/connections', { as: 'Op', body: { actions: [{ action: 'create', entities: [{ connection_id: 'no good', conn_type: 'x' }] }] } }, 422);
        });

        // ---- pools ----------------------------------------------------------------------------

        test('pools: create, read, patch, rename, delete; default_pool protected', async () => {
            const made = await call('POST', '/api/v2/pools', { as: 'Op', body: { name: 'kv_p1', slots: 4, description: 'p one' } }, 201);
            validate('PoolResponse', made, { strict: true });
            assert.deepEqual(made, {
                name: 'kv_p1', slots: 4, description: 'p one', include_deferred: false, occupied_slots: 0, running_slots: 0,
                queued_slots: 0, scheduled_slots: 0, open_slots: 4, deferred_slots: 0, team_name: null,
            });
            await call('POST', '/api/v2/pools', { as: 'Op', body: { name: 'kv_p1', slots: 1 } }, 409);
            for (const [body, field] of [
                [{ slots: 1 }, 'name'], [{ name: 'x' }, 'slots'], [{ name: 'x', slots: -2 }, 'slots'],
                [{ name: 'x', slots: 1.5 }, 'slots'], [{ name: 'x', slots: 1, include_deferred: 'yes' }, 'include_deferred'],
            ]) {
                const bad = await call('POST', '/api/v2/pools', { as: 'Op', body }, 422);
                assert.deepEqual(bad.detail[0].loc, ['body', field], JSON.stringify(bad));
            }
            const p = await call('PATCH', '/api/v2/pools/kv_p1', { as: 'Op', body: { slots: 6, include_deferred: true } });
            assert.equal(p.slots, 6);
            assert.equal(p.include_deferred, true);
            assert.equal(p.description, 'p one');
            const masked = await call('PATCH', '/api/v2/pools/kv_p1', { as: 'Op', query: { update_mask: 'description' }, body: { slots: 1, description: 'only this' } });
            assert.equal(masked.slots, 6);
            assert.equal(masked.description, 'only this');
            const renamed = await call('PATCH', '/api/v2/pools/kv_p1', { as: 'Op', body: { pool: 'kv_p2' } });
            assert.equal(renamed.name, 'kv_p2');
            await get('/api/v2/pools/kv_p1', undefined, 404);
            await call('POST', '/api/v2/pools', { as: 'Op', body: { name: 'kv_p3', slots: -1 } }, 201);
            const unlimited = await get('/api/v2/pools/kv_p3');
            assert.equal(unlimited.slots, -1);
            assert.equal(unlimited.open_slots, -1);
            await call('PATCH', '/api/v2/pools/kv_p2', { as: 'Op', body: { pool: 'kv_p3' } }, 409);
            await call('PATCH', '/api/v2/pools/kv_nope', { as: 'Op', body: { slots: 1 } }, 404);
            // default_pool: slots may change, its name may not, and it cannot be deleted
            const dflt = await get('/api/v2/pools/default_pool');
            const d2 = await call('PATCH', '/api/v2/pools/default_pool', { as: 'Op', body: { slots: dflt.slots + 1 } });
            assert.equal(d2.slots, dflt.slots + 1);
            await call('PATCH', '/api/v2/pools/default_pool', { as: 'Op', body: { slots: dflt.slots, pool: dflt.name, description: dflt.description } });
            const rn = await call('PATCH', '/api/v2/pools/default_pool', { as: 'Op', body: { pool: 'renamed_default' } }, 400);
            assert.match(rn.detail, /Default Pool/);
            const del = await call('DELETE', '/api/v2/pools/default_pool', { as: 'Op' }, 400);
            assert.equal(del.detail, "Default Pool can't be deleted");
            await get('/api/v2/pools/default_pool');
            await call('DELETE', '/api/v2/pools/kv_p2', { as: 'Op' }, 204);
            await call('DELETE', '/api/v2/pools/kv_p2', { as: 'Op' }, 404);
            const nf = await api(s, 'GET', '/api/v2/pools/kv_p2', { as: 'Viewer' });
            assert.equal(nf.json.detail, 'The Pool with name: `kv_p2` was not found');
            const list = await get('/api/v2/pools', { pool_name_pattern: 'kv_p|default', order_by: '-name' });
            assert.deepEqual(list.pools.map((x) => x.name), ['kv_p3', 'default_pool']);
            const bulk = await call('PATCH', '/api/v2/pools', {
                as: 'Op', body: { actions: [{ action: 'create', entities: [{ name: 'kv_p4', slots: 2 }] }, { action: 'delete', entities: ['default_pool', 'kv_p3'] }] },
            });
            assert.deepEqual(bulk.create.success, ['kv_p4']);
            assert.deepEqual(bulk.delete.success, ['kv_p3']);
            assert.equal(bulk.delete.errors[0].status_code, 400);
            // the form style: the whole pool with "name" (as PoolBody spells it), the mask without it
            const ui = await call('PATCH', '/api/v2/pools/kv_p4', {
                as: 'Op', query: { update_mask: ['slots', 'description', 'include_deferred'] },
                body: { name: 'kv_p4', slots: 3, description: 'from a form', include_deferred: false },
            });
            assert.deepEqual([ui.name, ui.slots, ui.description], ['kv_p4', 3, 'from a form']);
            const byName = await call('PATCH', '/api/v2/pools/kv_p4', { as: 'Op', body: { name: 'kv_p5' } });
            assert.equal(byName.name, 'kv_p5');
            await call('PATCH', '/api/v2/pools/default_pool', {
                as: 'Op', query: { update_mask: ['slots', 'include_deferred'] }, body: { name: 'default_pool', slots: dflt.slots, include_deferred: false },
            });
        });

        test('pools: slot counts while a task holds slots', async () => {
            await call('POST', '/api/v2/pools', { as: 'Op', body: { name: 'kv_busy_pool', slots: 5 } }, 201);
            await cliOk(['dags', 'trigger', 'kv_pool_sleeper']);
            const busy = await waitFor(async () => {
                const p = await get('/api/v2/pools/kv_busy_pool');
                return p.running_slots === 2 && p;
            }, 60000, 200);
            assert.equal(busy.occupied_slots, 2);
            assert.equal(busy.open_slots, 3);
            assert.equal(busy.queued_slots, 0);
            const inList = (await get('/api/v2/pools', { pool_name_pattern: 'kv_busy' })).pools[0];
            assert.equal(inList.running_slots, 2);
            const idle = await waitFor(async () => {
                const p = await get('/api/v2/pools/kv_busy_pool');
                return p.running_slots === 0 && p.occupied_slots === 0 && p;
            }, 60000, 300);
            assert.equal(idle.open_slots, 5);
        });

        // ---- the event log --------------------------------------------------------------------

        test('event logs: filters, order, one by id', async () => {
            await call('POST', '/api/v2/variables', { as: 'Op', body: { key: 'kv_ev', value: '1' } }, 201);
            await call('DELETE', '/api/v2/variables/kv_ev', { as: 'Op' }, 204);
            const all = await get('/api/v2/eventLogs', { limit: 100, event_pattern: 'variable' });
            assert.ok(all.event_logs.every((e) => e.event.includes('variable')), JSON.stringify(all.event_logs.map((e) => e.event)));
            const inc = await get('/api/v2/eventLogs', { included_events: ['api.post_variable', 'api.delete_variable'], limit: 100 });
            assert.ok(inc.event_logs.some((e) => e.event === 'api.delete_variable'));
            assert.ok(inc.event_logs.every((e) => ['api.post_variable', 'api.delete_variable'].includes(e.event)));
            const exc = await get('/api/v2/eventLogs', { excluded_events: 'api.post_variable', limit: 100, order_by: '-id' });
            assert.ok(exc.event_logs.length > 0 && exc.event_logs.every((e) => e.event !== 'api.post_variable'));
            const ids = exc.event_logs.map((e) => e.event_log_id);
            assert.deepEqual(ids, [...ids].sort((a, b) => b - a));
            const newest = exc.event_logs[0];
            const one = await get(`/api/v2/eventLogs/${newest.event_log_id}`);
            validate('EventLogResponse', one, { strict: true });
            assert.deepEqual(one, newest);
            const when = new Date(newest.when).getTime();
            const later = await get('/api/v2/eventLogs', { after: new Date(when + 60000).toISOString() });
            assert.equal(later.total_entries, 0);
            const earlier = await get('/api/v2/eventLogs', { before: new Date(when + 1).toISOString(), order_by: '-id', limit: 5 });
            assert.ok(earlier.event_logs.some((e) => e.event_log_id === newest.event_log_id));
            const byWhen = (await get('/api/v2/eventLogs', { order_by: 'when', limit: 100 })).event_logs.map((e) => e.when);
            assert.deepEqual(byWhen, [...byWhen].sort(cmp));
            await get('/api/v2/eventLogs/abc', undefined, 422);
            await get('/api/v2/eventLogs/987654321', undefined, 404);
            await get('/api/v2/eventLogs', { before: 'yesterday-ish' }, 422);
            await get('/api/v2/eventLogs', { map_index: 'x' }, 422);
            assert.equal((await get('/api/v2/eventLogs', { dag_id: 'kv_no_such_dag' })).total_entries, 0);
        });

        // ---- assets ---------------------------------------------------------------------------

        test('assets: list and one, with scheduled DAGs and producing/consuming tasks', async () => {
            const list = await waitFor(async () => {
                const b = await get('/api/v2/assets', { uri_pattern: 'kv-test' });
                return b.total_entries >= 3 && b;
            }, 30000, 300);
            validate('AssetCollectionResponse', list, { strict: true });
            const made = list.assets.find((a) => a.uri === 's3://kv-test/made');
            assert.ok(made, JSON.stringify(list.assets.map((a) => a.uri)));
            assert.deepEqual(made.scheduled_dags.map((d) => d.dag_id), ['kv_consumer']);
            assert.deepEqual(made.producing_tasks.map((t) => [t.dag_id, t.task_id]), [['kv_producer', 'make']]);
            assert.deepEqual(made.consuming_tasks.map((t) => [t.dag_id, t.task_id]), [['kv_producer', 'read']]);
            assert.equal(made.group, 'asset');
            const one = await get(`/api/v2/assets/${made.id}`);
            assert.equal(one.uri, made.uri);
            const byDag = await get('/api/v2/assets', { dag_ids: 'kv_needs_two' });
            assert.deepEqual(byDag.assets.map((a) => a.uri).sort(), ['s3://kv-test/left', 's3://kv-test/right']);
            const byProducer = await get('/api/v2/assets', { dag_ids: ['kv_producer'] });
            assert.deepEqual(byProducer.assets.map((a) => a.uri), ['s3://kv-test/made']);
            const desc = await get('/api/v2/assets', { uri_pattern: 'kv-test', order_by: '-uri' });
            assert.deepEqual(desc.assets.map((a) => a.uri), [...list.assets.map((a) => a.uri)].sort(cmp).reverse());
            await get('/api/v2/assets/987654321', undefined, 404);
            await get('/api/v2/assets/not-a-number', undefined, 422);
            await get('/api/v2/assets', { only_active: 'maybe' }, 422);
            const aliases = await get('/api/v2/assets/aliases');
            assert.deepEqual(aliases, { asset_aliases: [], total_entries: 0 });
        });

        test('assets: an event posted through the API starts the DAG scheduled on it', async () => {
            const made = (await get('/api/v2/assets', { uri_pattern: 'kv-test/made' })).assets[0];
            await call('POST', '/api/v2/assets/events', { as: 'Viewer', body: { asset_id: made.id } }, 403);
            await call('POST', '/api/v2/assets/events', { as: 'User', body: { asset_id: 987654321 } }, 404);
            await call('POST', '/api/v2/assets/events', { as: 'User', body: {} }, 422);
            await call('POST', '/api/v2/assets/events', { as: 'User', body: { asset_id: made.id, extra: 'x' } }, 422);
            const before = (await runsOf('kv_consumer')).length;
            const ev = await call('POST', '/api/v2/assets/events', { as: 'User', body: { asset_id: made.id, extra: { note: 'by hand' } } });
            validate('AssetEventResponse', ev, { strict: true });
            assert.equal(ev.asset_id, made.id);
            assert.equal(ev.uri, 's3://kv-test/made');
            assert.deepEqual(ev.extra, { note: 'by hand', from_rest_api: true });
            assert.equal(ev.source_dag_id, null);
            assert.equal(ev.source_map_index, -1);
            const runs = await waitFor(async () => {
                const r = await runsOf('kv_consumer');
                return r.length > before && r;
            }, 60000, 300);
            assert.ok(runs.some((r) => r.run_type === 'asset_triggered' || r.run_type === 'dataset_triggered'), JSON.stringify(runs));
            const listed = await get('/api/v2/assets/events', { asset_id: made.id });
            assert.ok(listed.asset_events.some((e) => e.id === ev.id));
            // the producer's run emits an event of its own
            await cliOk(['dags', 'trigger', 'kv_producer', '--wait'], 120000);
            const fromDag = await get('/api/v2/assets/events', { source_dag_id: 'kv_producer', asset_id: made.id });
            assert.ok(fromDag.total_entries >= 1 && fromDag.asset_events.every((e) => e.source_dag_id === 'kv_producer' && e.source_task_id === 'make'));
            const byUri = await call('POST', '/api/v2/assets/events', { as: 'User', body: { uri: 's3://kv-test/made' } });
            assert.equal(byUri.asset_id, made.id);
            const desc = await get('/api/v2/assets/events', { asset_id: made.id, order_by: '-timestamp' });
            assert.equal(desc.asset_events[0].id, byUri.id);
            const none = await get('/api/v2/assets/events', { asset_id: made.id, timestamp_gt: desc.asset_events[0].timestamp });
            assert.equal(none.total_entries, 0);
            const gte = await get('/api/v2/assets/events', { asset_id: made.id, timestamp_gte: desc.asset_events[0].timestamp });
            assert.equal(gte.total_entries, 1);
            const mine = await get('/api/v2/eventLogs', { event: 'api.create_asset_event', owner: `api:${s.user('User').username}` });
            assert.ok(mine.total_entries >= 2);
        });

        test('assets: queued events of a DAG waiting on two assets', async () => {
            const left = (await get('/api/v2/assets', { uri_pattern: 'kv-test/left' })).assets[0];
            const right = (await get('/api/v2/assets', { uri_pattern: 'kv-test/right' })).assets[0];
            await get('/api/v2/dags/kv_needs_two/assets/queuedEvents', undefined, 404);
            await call('POST', '/api/v2/assets/events', { as: 'User', body: { asset_id: left.id } });
            const q = await get('/api/v2/dags/kv_needs_two/assets/queuedEvents');
            assert.deepEqual(q.queued_events.map((e) => [e.dag_id, e.asset_id]), [['kv_needs_two', left.id]]);
            assert.equal(q.total_entries, 1);
            const byAsset = await get(`/api/v2/assets/${left.id}/queuedEvents`);
            assert.deepEqual(byAsset.queued_events.map((e) => e.dag_id), ['kv_needs_two']);
            const single = await get(`/api/v2/dags/kv_needs_two/assets/${left.id}/queuedEvents`);
            assert.equal(single.dag_display_name, 'kv_needs_two');
            await get(`/api/v2/dags/kv_needs_two/assets/${right.id}/queuedEvents`, undefined, 404);
            await get('/api/v2/dags/kv_needs_two/assets/queuedEvents', { before: '2000-01-01T00:00:00Z' }, 404);
            assert.equal((await runsOf('kv_needs_two')).length, 0, 'one of two assets does not start the DAG');
            await call('DELETE', `/api/v2/dags/kv_needs_two/assets/${left.id}/queuedEvents`, { as: 'Viewer' }, 403);
            await call('DELETE', `/api/v2/dags/kv_needs_two/assets/${left.id}/queuedEvents`, { as: 'User' }, 204);
            await get('/api/v2/dags/kv_needs_two/assets/queuedEvents', undefined, 404);
            // both updated: the DAG runs and its queue is consumed
            await call('POST', '/api/v2/assets/events', { as: 'User', body: { asset_id: left.id } });
            await call('POST', '/api/v2/assets/events', { as: 'User', body: { asset_id: right.id } });
            await waitFor(async () => (await runsOf('kv_needs_two')).length === 1, 60000, 300);
            await waitFor(async () => (await api(s, 'GET', '/api/v2/dags/kv_needs_two/assets/queuedEvents', { as: 'Viewer' })).status === 404, 30000, 300);
        });

        test('bad input is never a 5xx: invalid UTF-8 in paths, queries and bodies', async () => {
            const raw = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
            const FF = [0xff, 0xfe];
            const cases = [
                ['POST', '/api/v2/variables', raw('{"key":"kv_', FF, '","value":"v"}'), 422],
                ['POST', '/api/v2/variables', raw('{"key":"kv_u","value":"', FF, '"}'), 422],
                ['POST', '/api/v2/variables', raw('{"key":"kv_u","value":{"a":"', FF, '"}}'), 422],
                ['POST', '/api/v2/connections', raw('{"connection_id":"kv_u","conn_type":"http","extra":"{\\"a\\":\\"', FF, '\\"}"}'), 422],
                ['POST', '/api/v2/connections', raw('{"connection_id":"kv_u","conn_type":"http","password":"', FF, '"}'), 422],
                ['POST', '/api/v2/pools', raw('{"name":"kv_', FF, '","slots":1}'), 422],
                ['POST', '/api/v2/assets/events', raw('{"asset_id":1,"extra":{"a":"', FF, '"}}'), 422],
                ['POST', '/api/v2/assets/events', raw('{"uri":"', FF, '"}'), 422],
                ['GET', '/api/v2/variables/%FF%FE', undefined, 404],
                ['DELETE', '/api/v2/variables/%FF%FE', undefined, 404],
                ['PATCH', '/api/v2/variables/%FF%FE', { key: 'x', value: 'v' }, 400],
                ['GET', '/api/v2/connections/%FF%FE', undefined, 404],
                ['DELETE', '/api/v2/connections/%FF%FE', undefined, 404],
                ['GET', '/api/v2/pools/%FF%FE', undefined, 404],
                ['PATCH', '/api/v2/pools/%FF%FE', { slots: 1 }, 404],
                ['DELETE', '/api/v2/pools/%FF%FE', undefined, 404],
                ['GET', '/api/v2/dags/%FF%FE/assets/queuedEvents', undefined, 404],
                ['DELETE', '/api/v2/dags/%FF%FE/assets/queuedEvents', undefined, 404],
                ['GET', '/api/v2/assets/99999999999999999999999', undefined, 422],
                ['GET', '/api/v2/eventLogs?dag_id=%FF&owner_pattern=%FE&included_events=%FF', undefined, 200],
                ['GET', '/api/v2/assets/events?source_dag_id=%FF&name_pattern=%FF', undefined, 200],
                ['GET', '/api/v2/assets?dag_ids=%FF&uri_pattern=%FF', undefined, 200],
                ['GET', '/api/v2/connections?connection_id_pattern=%FF', undefined, 200],
                ['GET', '/api/v2/pools?pool_name_pattern=%FF', undefined, 200],
            ];
            for (const [method, p, body, status] of cases) {
                const res = await api(s, method, p, { as: 'Admin', body });
                assertResponse(res, status);
                if (status === 200) assert.equal(res.json.total_entries, 0, `${method} ${p}: ${res.text.slice(0, 300)}`);
            }
        });

        test('no answer of this suite showed a connection secret', () => {
            for (const t of texts) {
                assert.ok(!t.includes(SECRET_PW) && !t.includes(SECRET_TOKEN), `a secret appears in an answer: ${t.slice(0, 400)}`);
            }
        });
    });
}

function findDb(dir) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
            const f = findDb(p);
            if (f) return f;
        } else if (e.name.endsWith('.db')) {
            return p;
        }
    }
    return null;
}

kvSuite('standalone');
kvSuite('api');
