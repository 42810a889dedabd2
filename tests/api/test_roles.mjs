// The role matrix, route by route: every mutating endpoint gust serves, called by each role and
// without credentials. A role below the route's least role gets 403 (before anything is looked
// up: the ids here do not exist); the least role itself gets past the check (whatever the
// handler then says — 404, 422 — it is not 401/403); no token gets 401 with
// WWW-Authenticate. The table mirrors the route tables in api/*.c: a route added there with a
// role belongs here too. Airflow's meaning of the roles: Viewer reads; User also triggers,
// clears, pauses, marks, deletes runs and writes XComs and asset events; Op also manages
// variables, connections, pools, rate limits and deletes DAGs; Admin also users (CLI).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, startGust } from './lib.mjs';

const TI = '/api/v2/dags/no_such_dag/dagRuns/no_such_run/taskInstances';
const MUTATING = [
    ['PATCH', '/api/v2/dags', 'User'],
    ['PATCH', '/api/v2/dags/no_such_dag', 'User'],
    ['DELETE', '/api/v2/dags/no_such_dag', 'Op'],
    ['POST', '/api/v2/dags/no_such_dag/dagRuns', 'User'],
    ['PATCH', '/api/v2/dags/no_such_dag/dagRuns/no_such_run', 'User'],
    ['DELETE', '/api/v2/dags/no_such_dag/dagRuns/no_such_run', 'User'],
    ['POST', '/api/v2/dags/no_such_dag/dagRuns/no_such_run/clear', 'User'],
    ['POST', '/api/v2/dags/no_such_dag/clearTaskInstances', 'User'],
    ['PATCH', `${TI}/no_task`, 'User'],
    ['PATCH', `${TI}/no_task/dry_run`, 'User'],
    ['PATCH', `${TI}/no_task/3`, 'User'],
    ['PATCH', `${TI}/no_task/3/dry_run`, 'User'],
    ['POST', `${TI}/no_task/xcomEntries`, 'User'],
    ['PATCH', `${TI}/no_task/xcomEntries/k`, 'User'],
    ['DELETE', `${TI}/no_task/xcomEntries/k`, 'User'],
    ['POST', '/api/v2/assets/events', 'User'],
    ['DELETE', '/api/v2/assets/999999/queuedEvents', 'User'],
    ['DELETE', '/api/v2/dags/no_such_dag/assets/queuedEvents', 'User'],
    ['DELETE', '/api/v2/dags/no_such_dag/assets/999999/queuedEvents', 'User'],
    ['POST', '/api/v2/variables', 'Op'],
    ['PATCH', '/api/v2/variables', 'Op'],
    ['PATCH', '/api/v2/variables/no_such_var', 'Op'],
    ['DELETE', '/api/v2/variables/no_such_var', 'Op'],
    ['POST', '/api/v2/connections', 'Op'],
    ['PATCH', '/api/v2/connections', 'Op'],
    ['PATCH', '/api/v2/connections/no_such_conn', 'Op'],
    ['DELETE', '/api/v2/connections/no_such_conn', 'Op'],
    ['POST', '/api/v2/connections/test', 'Op'],
    ['POST', '/api/v2/pools', 'Op'],
    ['PATCH', '/api/v2/pools', 'Op'],
    ['PATCH', '/api/v2/pools/no_such_pool', 'Op'],
    ['DELETE', '/api/v2/pools/no_such_pool', 'Op'],
    ['PUT', '/api/v2/gust/ratelimits/no_such_limit', 'Op'],
    ['DELETE', '/api/v2/gust/ratelimits/no_such_limit', 'Op'],
];
const ORDER = ['Viewer', 'User', 'Op', 'Admin'];

describe('role matrix (standalone)', () => {
    let s;
    before(async () => { s = await startGust({ mode: 'standalone' }); });
    after(async () => { if (s) await s.stop(); });

    test('each mutating route: below its role 403, at its role allowed, without a token 401', async () => {
        const problems = [];
        for (const [method, path, least] of MUTATING) {
            const need = ORDER.indexOf(least);
            for (const role of ORDER) {
                const r = await api(s, method, path, { as: role, body: {} });
                const allowed = ORDER.indexOf(role) >= need;
                // connections/test is disabled for everyone, as Airflow's default: its 403 says so
                const disabled = r.status === 403 && /disabled/i.test(r.json?.detail || '');
                if (allowed && (r.status === 401 || (r.status === 403 && !disabled)))
                    problems.push(`${role} ${method} ${path}: ${r.status}, but ${least} may`);
                if (!allowed && r.status !== 403)
                    problems.push(`${role} ${method} ${path}: ${r.status}, want 403 (needs ${least})`);
                if (!allowed && r.status === 403 && !/needs the \w+ role/.test(r.json?.detail || ''))
                    problems.push(`${role} ${method} ${path}: the 403 does not name the role: ${r.text}`);
                if (r.status >= 500) problems.push(`${role} ${method} ${path}: ${r.status} ${r.text}`);
            }
            const anon = await api(s, method, path, { as: null, body: {} });
            if (anon.status !== 401 || !/Bearer/.test(anon.headers.get('www-authenticate') || ''))
                problems.push(`no token ${method} ${path}: ${anon.status}, want 401 with WWW-Authenticate`);
        }
        assert.deepEqual(problems, []);
    });

    test('every read is open to a Viewer and closed without a token', async () => {
        for (const path of ['/api/v2/dags', '/api/v2/variables', '/api/v2/connections',
            '/api/v2/pools', '/api/v2/eventLogs', '/api/v2/importErrors', '/api/v2/assets', '/api/v2/gust/workers',
            '/api/v2/dags/~/dagRuns', '/metrics']) {
            const r = await api(s, 'GET', path, { as: 'Viewer' });
            assert.notEqual(r.status, 403, `${path} as Viewer`);
            assert.notEqual(r.status, 401, `${path} as Viewer`);
            assert.equal((await api(s, 'GET', path, { as: null })).status, 401, `${path} without a token`);
        }
    });
});
