// Authentication and roles against `gust standalone`: the first-start admin and its password
// file, POST /auth/token (201, bad bodies 422, wrong credentials 401), Bearer and Basic access,
// 401 for a missing, expired, tampered or alg=none token (crafted here with node:crypto from the
// same api.secret_key the server was given), the role matrix (each role against a read, a
// User-class and an Op-class mutation: allowed or 403), roles and deletions taking effect on
// tokens already issued, the login throttle (the 6th bad attempt and then even the right
// password answer 429 with Retry-After; an address spraying usernames is blocked too), the
// open routes (/health, /ready, /api/v2/version, /api/v2/monitor/health), and the event log
// rows every login leaves.
//
// The throttle counts failures per username and per client address, so every bad login here is
// sent from an address of its own in 127.0.0.0/8 (the socket is bound to it; Linux routes the
// whole block to loopback): the harness's own logins from 127.0.0.1 are never blocked.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, assertResponse, enc, sleep, startGust, validate, waitFor } from './lib.mjs';

const SECRET = `test-secret-${crypto.randomBytes(8).toString('hex')}`;
// api/server.c derives the signing key from api.secret_key: HMAC-SHA256(key "gust-api-token", secret)
const KEY = crypto.createHmac('sha256', 'gust-api-token').update(SECRET).digest();

const DAGS = {
    'auth.yml': `
auth_dag:
  schedule: None
  tasks:
    - task_id: t1
      operator: bash
      bash_command: "echo hi"
`,
};

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

function craft(header, claims, key = KEY, sig) {
    const signing = `${b64url(header)}.${b64url(claims)}`;
    const s = sig !== undefined ? sig : crypto.createHmac('sha256', key).update(signing).digest('base64url');
    return `${signing}.${s}`;
}

function decode(token) {
    const [h, c] = token.split('.');
    return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(c, 'base64url')) };
}

const basic = (u, p) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

// One HTTP request from a chosen loopback address (fetch cannot bind the client side).
function from(s, addr, method, p, { body, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
        const h = { ...headers };
        if (data !== undefined) { h['Content-Type'] = 'application/json'; h['Content-Length'] = Buffer.byteLength(data); }
        const t0 = Date.now();
        const req = http.request({ host: '127.0.0.1', port: s.port, method, path: p, headers: h, localAddress: addr, timeout: 30000 },
            (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (d) => { text += d; });
                res.on('end', () => {
                    let json;
                    try { json = JSON.parse(text); } catch { json = undefined; }
                    resolve({ status: res.statusCode, headers: res.headers, text, json, ms: Date.now() - t0 });
                });
            });
        req.on('timeout', () => req.destroy(new Error(`${method} ${p} from ${addr}: timed out`)));
        req.on('error', reject);
        if (data !== undefined) req.write(data);
        req.end();
    });
}

const login = (s, addr, username, password) => from(s, addr, 'POST', '/auth/token', { body: { username, password } });

async function mkuser(s, username, role, password = `pw-${crypto.randomBytes(6).toString('hex')}`) {
    const r = await s.cli(['users', 'create', '--username', username, '--role', role, '--password-stdin'], { input: `${password}\n` });
    assert.equal(r.code, 0, `gust users create ${username}: ${r.stderr}`);
    return { username, password };
}

async function tokenOf(s, u) {
    const r = await login(s, '127.0.0.1', u.username, u.password);
    assert.equal(r.status, 201, `login ${u.username}: ${r.text}`);
    return r.json.access_token;
}

describe('authentication and roles (standalone)', { timeout: 600000 }, () => {
    let s;

    before(async () => {
        s = await startGust({ mode: 'standalone', dags: DAGS, config: { 'api.secret_key': SECRET, 'api.token_ttl': '1h' } });
        await waitFor(async () => (await api(s, 'GET', '/api/v2/dags/auth_dag')).status === 200, 30000, 250);
    });
    after(async () => { if (s) await s.stop(); });

    test('standalone creates admin once, with its password in a 0600 file and on stdout', async () => {
        const file = path.join(s.home, 'standalone_admin_password.txt');
        const st = fs.statSync(file);
        assert.equal(st.mode & 0o777, 0o600, `mode of ${file} is ${(st.mode & 0o777).toString(8)}`);
        const pw = fs.readFileSync(file, 'utf8');
        assert.match(pw, /^[A-Za-z0-9_-]{16}\n$/);
        const log = fs.readFileSync(path.join(s.tmp, 'standalone.log'), 'utf8');
        const line = `gust standalone: created user admin with password ${pw.trim()} (also in ${file})`;
        assert.ok(log.includes(line), `the log has no "${line}":\n${log.slice(0, 2000)}`);
        assert.equal(log.split(pw.trim()).length - 1, 1, 'the password is printed exactly once');
        const r = await login(s, '127.0.0.1', 'admin', pw.trim());
        assert.equal(r.status, 201, r.text);
        const list = await s.cli(['users', 'list', '--output', 'json']);
        const admin = JSON.parse(list.stdout).users.find((u) => u.username === 'admin');
        assert.equal(admin.role, 'Admin');
        assert.ok(admin.last_login, 'the login was recorded');
    });

    test('POST /auth/token issues an HS256 token carrying the user and role', async () => {
        const u = await mkuser(s, 'tok_op', 'Op');
        const res = await login(s, '127.0.0.1', u.username, u.password);
        assert.equal(res.status, 201, res.text);
        assert.equal(res.json.token_type, 'bearer');
        assert.equal(res.json.expires_in, 3600);
        assert.match(res.headers['cache-control'] || '', /no-store/);
        const { header, claims } = decode(res.json.access_token);
        assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
        assert.equal(claims.sub, 'tok_op');
        assert.equal(claims.role, 'Op');
        assert.equal(claims.exp - claims.iat, 3600);
        assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60);
        assert.equal(typeof claims.jti, 'string');
        // the signature is what we compute with the same secret
        const [h, c, sig] = res.json.access_token.split('.');
        assert.equal(sig, crypto.createHmac('sha256', KEY).update(`${h}.${c}`).digest('base64url'));
        const ok = await api(s, 'GET', '/api/v2/dags', { token: res.json.access_token });
        assertResponse(ok, 200);
    });

    test('POST /auth/token: bad bodies are 422, wrong credentials 401', async () => {
        const u = await mkuser(s, 'tok_bad', 'Viewer');
        const cases = [
            ['no body', undefined],
            ['not JSON', '{"username": '],
            ['an array', '[]'],
            ['no password', { username: u.username }],
            ['no username', { password: u.password }],
            ['a number as username', { username: 7, password: u.password }],
            ['null password', { username: u.username, password: null }],
        ];
        for (const [what, body] of cases) {
            const r = await from(s, '127.0.1.1', 'POST', '/auth/token', { body });
            assert.equal(r.status, 422, `${what}: ${r.status} ${r.text}`);
            validate('HTTPValidationError', r.json, { what });
        }
        const missing = await from(s, '127.0.1.1', 'POST', '/auth/token', { body: { username: u.username } });
        assert.deepEqual(missing.json.detail[0].loc, ['body', 'password']);
        // wrong credentials, each from its own address so the throttle does not join in
        for (const [i, [name, pw]] of [[u.username, 'nope'], ['nobody_here', 'x'], ['bad name!', 'x'], [u.username, '']].entries()) {
            const r = await login(s, `127.0.2.${i + 1}`, name, pw);
            assert.equal(r.status, 401, `${name}: ${r.text}`);
            assert.deepEqual(r.json, { detail: 'Invalid username or password' });
        }
    });

    test('Bearer and Basic both authenticate; nothing, junk or a wrong password is 401', async () => {
        const u = await mkuser(s, 'basic_user', 'User', 'pa:ss w0rd');
        const r1 = await api(s, 'GET', '/api/v2/dags', { as: null, headers: { Authorization: basic(u.username, u.password) } });
        assertResponse(r1, 200);
        // Basic is remembered for a while: a second call does not pay the KDF again
        const t0 = Date.now();
        for (let i = 0; i < 5; i++) {
            const r = await api(s, 'GET', '/api/v2/version', { as: null, headers: { Authorization: basic(u.username, u.password) } });
            assert.equal(r.status, 200);
        }
        const r2 = await api(s, 'GET', '/api/v2/dags', { as: null, headers: { Authorization: basic(u.username, u.password) } });
        assertResponse(r2, 200);
        assert.ok(Date.now() - t0 < 5000);

        const none = await api(s, 'GET', '/api/v2/dags', { as: null });
        assert.equal(none.status, 401);
        assert.equal(none.headers.get('www-authenticate'), 'Bearer');
        assert.match(none.json.detail, /Not authenticated/);
        validate('HTTPExceptionResponse', none.json);
        for (const h of ['Bearer', 'Bearer x.y', 'Bearer a.b.c', 'Digest abc', 'Basic !!!', basic('basic_user', 'wrong')]) {
            const r = await from(s, '127.0.3.1', 'GET', '/api/v2/dags', { headers: { Authorization: h } });
            assert.equal(r.status, 401, `${h}: ${r.text}`);
            assert.equal(r.headers['www-authenticate'], 'Bearer');
            assert.equal(typeof r.json.detail, 'string');
        }
    });

    test('expired, tampered, foreign-key and alg=none tokens are refused', async () => {
        const now = Math.floor(Date.now() / 1000);
        const hdr = { alg: 'HS256', typ: 'JWT' };
        const good = { sub: 't_admin', role: 'Admin', iat: now, exp: now + 600, jti: 'x' };
        const check = async (token, detail) => {
            const r = await api(s, 'GET', '/api/v2/dags', { token });
            assert.equal(r.status, 401, `${detail}: ${r.status} ${r.text}`);
            assert.match(r.json.detail, detail);
        };
        // the crafted token itself is fine: the harness's Admin user exists
        const ok = await api(s, 'GET', '/api/v2/dags', { token: craft(hdr, good) });
        assertResponse(ok, 200);
        await check(craft(hdr, { ...good, iat: now - 7200, exp: now - 3600 }), /the token has expired/);
        await check(craft(hdr, { ...good, exp: now - 1 }), /the token has expired/);
        await check(craft({ alg: 'none', typ: 'JWT' }, good, KEY, ''), /unsupported token algorithm 'none'/);
        await check(craft({ alg: 'none' }, good), /unsupported token algorithm/);
        await check(craft({ alg: 'HS512', typ: 'JWT' }, good), /unsupported token algorithm 'HS512'/);
        await check(craft(hdr, good, crypto.randomBytes(32)), /invalid token signature/);
        // a real Viewer token with its claims swapped for Admin's
        const viewer = await s.token('Viewer');
        const [h, , sig] = viewer.split('.');
        await check(`${h}.${b64url({ ...decode(viewer).claims, role: 'Admin', sub: 't_admin' })}.${sig}`, /invalid token signature/);
        await check(`${viewer.slice(0, -3)}${viewer.endsWith('AAA') ? 'BBB' : 'AAA'}`, /invalid token signature/);
        await check(craft(hdr, { sub: 'nobody_at_all', iat: now, exp: now + 600 }), /user 'nobody_at_all' no longer exists/);
        await check(craft(hdr, { sub: 't_admin', iat: now }), /needs the claims sub, iat and exp/);
    });

    test('role matrix: each role against a read, a User mutation and an Op mutation', async () => {
        const classes = [
            { what: 'GET /api/v2/dags', need: 'Viewer', ok: 200, req: () => ['GET', '/api/v2/dags', {}] },
            { what: 'GET /api/v2/variables', need: 'Viewer', ok: 200, req: () => ['GET', '/api/v2/variables', {}] },
            { what: 'PATCH /api/v2/dags/{dag_id}', need: 'User', ok: 200,
              req: () => ['PATCH', '/api/v2/dags/auth_dag', { body: { is_paused: true } }] },
            { what: 'POST /api/v2/variables', need: 'Op', ok: 201,
              req: (role) => ['POST', '/api/v2/variables', { body: { key: `auth_var_${role}`, value: 'v' } }] },
            { what: 'POST /api/v2/pools', need: 'Op', ok: 201,
              req: (role) => ['POST', '/api/v2/pools', { body: { name: `auth_pool_${role}`, slots: 2 } }] },
        ];
        const rank = { Viewer: 1, User: 2, Op: 3, Admin: 4 };
        for (const role of ['Viewer', 'User', 'Op', 'Admin']) {
            for (const c of classes) {
                const [method, p, o] = c.req(role);
                const r = await api(s, method, p, { ...o, as: role });
                if (rank[role] >= rank[c.need]) {
                    assert.equal(r.status, c.ok, `${role} ${c.what}: want ${c.ok}, got ${r.status}: ${r.text.slice(0, 300)}`);
                } else {
                    assert.equal(r.status, 403, `${role} ${c.what}: want 403, got ${r.status}: ${r.text.slice(0, 300)}`);
                    validate('HTTPExceptionResponse', r.json);
                    assert.match(r.json.detail, new RegExp(`needs the ${c.need} role`));
                }
            }
        }
        // the 403s changed nothing
        const v = await api(s, 'GET', `/api/v2/variables/${enc('auth_var_Viewer')}`);
        assert.equal(v.status, 404);
    });

    test('a demotion, a password change or a deletion reaches tokens already issued', async () => {
        const u = await mkuser(s, 'demote_me', 'Op');
        const t1 = await tokenOf(s, u);
        assert.equal((await api(s, 'POST', '/api/v2/variables', { token: t1, body: { key: 'demote_1', value: 'v' } })).status, 201);
        await sleep(1100); // a token's iat has whole seconds: the change falls in a later one
        assert.equal((await s.cli(['users', 'set-role', '--username', u.username, '--role', 'Viewer'])).code, 0);
        // within a few seconds (the API caches a user's row ~5 s) the old token is refused
        const refused = await waitFor(async () => {
            const r = await api(s, 'GET', '/api/v2/dags', { token: t1 });
            return r.status === 401 ? r : false;
        }, 10000, 250);
        assert.match(refused.json.detail, /issued before demote_me's password or role changed/);
        const t2 = await tokenOf(s, u);
        assertResponse(await api(s, 'GET', '/api/v2/dags', { token: t2 }), 200);
        const denied = await api(s, 'POST', '/api/v2/variables', { token: t2, body: { key: 'demote_2', value: 'v' } });
        assert.equal(denied.status, 403);

        await sleep(1100);
        const u2 = { ...u, password: 'a-new-password' };
        const sp = await s.cli(['users', 'set-password', '--username', u.username, '--password-stdin'], { input: `${u2.password}\n` });
        assert.equal(sp.code, 0, sp.stderr);
        await waitFor(async () => (await api(s, 'GET', '/api/v2/dags', { token: t2 })).status === 401, 10000, 250);
        assert.equal((await login(s, '127.0.4.1', u.username, u.password)).status, 401);
        const t3 = await tokenOf(s, u2);

        assert.equal((await s.cli(['users', 'delete', '--username', u.username])).code, 0);
        const gone = await waitFor(async () => {
            const r = await api(s, 'GET', '/api/v2/dags', { token: t3 });
            return r.status === 401 ? r : false;
        }, 10000, 250);
        assert.match(gone.json.detail, /user 'demote_me' no longer exists/);
    });

    test('open routes: /health, /ready, version and monitor/health need no token', async () => {
        const h = await api(s, 'GET', '/health', { as: null });
        assert.equal(h.status, 200);
        assert.deepEqual(h.json, { status: 'ok' });
        const rd = await api(s, 'GET', '/ready', { as: null });
        assert.equal(rd.status, 200);
        assert.deepEqual(rd.json, { status: 'ready', store: 'sqlite' });
        const v = assertResponse(await api(s, 'GET', '/api/v2/version', { as: null }), 200, { strict: true });
        assert.match(v.version, /^\d+\.\d+\.\d+/);
        const v2 = await s.cli(['version']);
        assert.equal(v2.stdout.trim(), `gust ${v.version}`);
        const m = assertResponse(await api(s, 'GET', '/api/v2/monitor/health', { as: null }), 200, { strict: true });
        assert.equal(m.metadatabase.status, 'healthy');
        assert.ok('scheduler' in m && 'triggerer' in m);
    });

    test('every login is in the event log, without the password', async () => {
        const u = await mkuser(s, 'evented', 'Viewer', 'Sup3r-Secret-pw');
        assert.equal((await login(s, '127.0.5.1', u.username, 'Wr0ng-guess-pw')).status, 401);
        assert.equal((await login(s, '127.0.5.2', u.username, u.password)).status, 201);
        const ok = assertResponse(await api(s, 'GET', '/api/v2/eventLogs', { query: { event: 'api.login', owner: 'api:evented' } }), 200);
        assert.equal(ok.total_entries, 1);
        assert.equal(ok.event_logs[0].owner, 'api:evented');
        const okExtra = JSON.parse(ok.event_logs[0].extra);
        assert.equal(okExtra.method, 'token');
        assert.equal(okExtra.remote_addr, '127.0.5.2');
        const failed = assertResponse(await api(s, 'GET', '/api/v2/eventLogs', { query: { event: 'api.login_failed', owner: 'api:evented' } }), 200);
        assert.equal(failed.total_entries, 1);
        assert.equal(JSON.parse(failed.event_logs[0].extra).reason, 'wrong password');
        const all = await api(s, 'GET', '/api/v2/eventLogs', { query: { event_pattern: 'api.login', limit: 100 } });
        assert.ok(!all.text.includes('Sup3r-Secret-pw') && !all.text.includes('Wr0ng-guess-pw'), 'a password is in the event log');
    });

    test('throttle: the 6th bad login is 429, then even the right password, without the KDF', async () => {
        const u = await mkuser(s, 'locked_out', 'Op');
        let slowest = 0;
        for (let i = 0; i < 5; i++) {
            const r = await login(s, `127.0.6.${i + 1}`, u.username, `guess-${i}`);
            assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
            slowest = Math.max(slowest, r.ms);
        }
        const sixth = await login(s, '127.0.6.6', u.username, 'guess-6');
        assert.equal(sixth.status, 429, sixth.text);
        validate('HTTPExceptionResponse', sixth.json);
        const retry = Number(sixth.headers['retry-after']);
        assert.ok(retry >= 1 && retry <= 60, `Retry-After: ${sixth.headers['retry-after']}`);
        const right = await login(s, '127.0.6.7', u.username, u.password);
        assert.equal(right.status, 429, right.text);
        assert.match(right.json.detail, /Too many failed logins/);
        // a checked password costs the KDF (hundreds of ms); a throttled one is refused before it
        assert.ok(right.ms * 3 < slowest, `a throttled login took ${right.ms} ms, a checked one up to ${slowest} ms`);
        // Basic is held back the same way
        const b = await from(s, '127.0.6.8', 'GET', '/api/v2/dags', { headers: { Authorization: basic(u.username, u.password) } });
        assert.equal(b.status, 401);
        assert.match(b.json.detail, /too many failed logins/);
        // another user is not affected
        const other = await mkuser(s, 'not_locked', 'Viewer');
        assert.equal((await login(s, '127.0.6.9', other.username, other.password)).status, 201);
        const ev = assertResponse(await api(s, 'GET', '/api/v2/eventLogs', { query: { event: 'api.login_failed', owner: 'api:locked_out', limit: 50 } }), 200);
        assert.equal(ev.total_entries, 8);
        assert.equal(ev.event_logs.filter((e) => JSON.parse(e.extra).reason === 'throttled').length, 3);
    });

    test('throttle: an address that sprays usernames is blocked, other addresses are not', async () => {
        const u = await mkuser(s, 'spray_target', 'Viewer');
        for (const name of ['root', 'admin', 'oracle', 'test', 'guest']) {
            assert.equal((await login(s, '127.0.7.1', name, 'password1')).status, 401);
        }
        const blocked = await login(s, '127.0.7.1', u.username, u.password);
        assert.equal(blocked.status, 429, blocked.text);
        assert.ok(Number(blocked.headers['retry-after']) >= 1);
        assert.equal((await login(s, '127.0.7.2', u.username, u.password)).status, 201);
    });
});
