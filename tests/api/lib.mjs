// The harness of gust's REST API tests (node:test, Node 18+; run by tests/api/run.sh). It starts
// the real binary ($GUST_BIN, default bin/gust) against real servers, talks HTTP to it with
// fetch, and checks bodies against Airflow's REST API v2 spec (tests/api/v2.yaml, a copy of the
// contract; where it comes from is in its header). No mocks: what a test sees is what a client would see.
//
// API (everything a test file needs; keep to it — other test files depend on it):
//
//   const s = await startGust({mode, dags, env, config, extraArgs})
//       mode 'standalone' (default): `gust standalone` on SQLite in a fresh GUST_HOME.
//       mode 'api': the distributed deployment — a fresh PostgreSQL database (from
//         GUST_TEST_PG_ADMIN_URL / GUST_TEST_PG_URL), `gust db migrate`, then `gust api`,
//         `gust scheduler` and `gust worker` on RabbitMQ (GUST_TEST_AMQP_URL) and Redis
//         (GUST_TEST_REDIS_URL, db 6, a key prefix of its own). Tasks go to a queue of its own
//         (a defaults.yml in the DAG folder sets default_args.queue), so test files running at
//         the same time never run each other's tasks. Without the servers' variables it throws,
//         saying how to start them (a failure, never a silent skip, as in the unit tests).
//       dags: {"file.yml": "yaml text"} written to the DAG folder before the start.
//       config: {"scheduler.heartbeat": "1s"} → --KEY=VALUE flags (over the harness's defaults).
//       env: extra environment; extraArgs: more global flags, placed before the command.
//     → s = {url, home, dagsDir, mode, port,
//            stop()                      SIGTERM (SIGKILL after 15 s), drop the database, queue
//                                        and Redis keys; throws when a daemon did not exit 0 or a
//                                        sanitizer reported anything (the report is in the error)
//            token(role='Admin')         bearer token of the harness's user of that role (cached)
//            adminToken()                token('Admin')
//            user(role) → {username, password}    roles: Admin, Op, User, Viewer
//            cli(args, {input}) → {code, stdout, stderr}   the gust CLI on the same store/config
//            writeDag(name, text)        add or replace a DAG file (the scheduler rescans every 1 s)
//            logTail(lines=60)           the daemons' log tails, as one string}
//   await api(s, method, path, {as, token, body, headers, query, raw, timeoutMs})
//       → {status, headers (a Headers), json (undefined when the body is not JSON), text, method, path}
//       as: role whose token is sent (default 'Admin'); as: null sends no Authorization.
//       token: a raw bearer token (overrides as). body: an object/array/number is sent as JSON;
//       a string or Buffer is sent as it is (raw: true says the same for anything).
//       query: {k: v | [v1, v2]} appended to path.
//   assertResponse(res, status=200, {strict})   asserts res.status (the message shows the body) and
//       that the body matches the spec's response for res.method + res.path (template found from
//       the path) and the answer's content type; returns res.json
//   validate(schemaName, value, {strict})   asserts value matches #/components/schemas/NAME;
//       strict: also no properties the spec does not name (where the schema has `properties`)
//   validateResponse(method, pathOrTemplate, status, body, {strict, contentType})   the spec's schema of that
//       operation; a 4xx/5xx the operation does not list is checked against HTTPExceptionResponse
//       (HTTPValidationError for 422) — gust answers every error in those shapes
//   spec()                            the parsed v2.yaml (read-only)
//   await waitFor(fn, timeoutMs=15000, intervalMs=100)   polls async fn until it returns a truthy
//       value, which it returns; on timeout throws with fn's last value or error
//   await triggerAndWait(s, dagId, conf={}, {timeoutMs=60000, as}) → the finished DAGRunResponse
//       (POST /api/v2/dags/{dag_id}/dagRuns, then polls the run until success or failed)
//   servicesAvailable() → bool        GUST_TEST_PG_URL, _PG_ADMIN_URL, _AMQP_URL, _REDIS_URL set
//   enc(s)                            encodeURIComponent, for ids in paths
//   sleep(ms), freePort() → port, findTemplate(method, path) → the spec's path template or null,
//   ROLES, REPO (the repository root), SPEC_PATH
//
// Processes: every daemon the harness starts is SIGKILLed when the test process exits, even after
// a failure or an uncaught exception; when the process exits with a failure (a test failed), the
// log tails of every gust it started are printed to stderr, and GUST_API_KEEP=1 keeps the temp
// folders (their paths are printed). Daemon logs are in <temp>/<name>.log.

import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const SPEC_PATH = path.join(HERE, 'v2.yaml');
export const ROLES = ['Admin', 'Op', 'User', 'Viewer'];

function gustBin() {
    const b = process.env.GUST_BIN || 'bin/gust';
    if (path.isAbsolute(b)) return b;
    // relative to where the tests were started (run.sh starts them at the repository root)
    const fromCwd = path.resolve(process.cwd(), b);
    return fs.existsSync(fromCwd) ? fromCwd : path.resolve(REPO, b);
}

// ---- process bookkeeping: kill everything on exit, print logs when the file failed -----------

const live = new Set();       // servers not stopped yet
const started = [];           // every server, for the log tails and temp folders at exit
let exitHooked = false;

function hookExit() {
    if (exitHooked) return;
    exitHooked = true;
    process.on('exit', (code) => {
        for (const s of live) s._killNow();
        const failed = code !== 0 || (process.exitCode !== undefined && process.exitCode !== 0);
        for (const s of started) {
            if (failed && s.logTail && s.procs.length) {
                process.stderr.write(`\n===== gust (${s.mode}) logs, ${s.tmp} =====\n${s.logTail(60)}\n`);
            }
            if (failed && process.env.GUST_API_KEEP === '1') {
                process.stderr.write(`kept ${s.tmp}\n`);
            } else {
                try { fs.rmSync(s.tmp, { recursive: true, force: true }); } catch { /* best effort */ }
            }
        }
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

function run(file, args, { env, input, timeoutMs = 120000 } = {}) {
    return new Promise((resolve) => {
        const child = execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' },
            (err, stdout, stderr) => {
                const code = err ? (typeof err.code === 'number' ? err.code : (err.signal ? 128 : 1)) : 0;
                resolve({ code, stdout, stderr: stderr + (err && typeof err.code !== 'number' ? `\n${err.message}` : '') });
            });
        if (input !== undefined) child.stdin.end(input);
    });
}

export function servicesAvailable() {
    return ['GUST_TEST_PG_URL', 'GUST_TEST_PG_ADMIN_URL', 'GUST_TEST_AMQP_URL', 'GUST_TEST_REDIS_URL']
        .every((v) => !!process.env[v]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const enc = encodeURIComponent;

// ---- the server -------------------------------------------------------------------------------

let serial = 0;

export async function startGust(opts = {}) {
    hookExit();
    const mode = opts.mode || 'standalone';
    if (mode !== 'standalone' && mode !== 'api') throw new Error(`startGust: unknown mode '${mode}' (standalone or api)`);
    const bin = gustBin();
    if (!fs.existsSync(bin)) throw new Error(`startGust: no gust binary at ${bin} (build it: make bin/gust-san, or set GUST_BIN)`);
    if (mode === 'api' && !servicesAvailable()) {
        throw new Error('startGust api: GUST_TEST_PG_URL, GUST_TEST_PG_ADMIN_URL, GUST_TEST_AMQP_URL and GUST_TEST_REDIS_URL must be set: run bash tests/services.sh start and eval "$(bash tests/services.sh env)"');
    }
    const n = ++serial;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gust-api-'));
    const home = path.join(tmp, 'home');
    const dagsDir = path.join(tmp, 'dags');
    fs.mkdirSync(home);
    fs.mkdirSync(dagsDir);
    const port = await freePort();
    const tag = `${process.pid}_${n}_${crypto.randomBytes(3).toString('hex')}`;

    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GUST__')) env[k] = v;
    Object.assign(env, { GUST_HOME: home }, opts.env || {});

    const config = {
        'core.dags_folder': dagsDir,
        'core.dags_are_paused_at_creation': 'false',
        'api.port': String(port),
        'scheduler.dag_dir_list_interval': '1s',
        'scheduler.heartbeat': '1s',
    };
    const s = {
        mode, url: `http://127.0.0.1:${port}`, port, home, dagsDir, tmp, bin, env,
        procs: [], tokens: new Map(), users: {}, queue: null, db: null, redisUrl: null, redisPrefix: null,
    };

    started.push(s);      // from here on the exit hook removes its temp folder

    let dags = { ...(opts.dags || {}) };
    if (mode === 'api') {
        s.db = `gust_api_${tag}`;
        s.queue = `q_api_${tag}`;
        s.redisPrefix = `gust:api${tag}:`;
        const pg = new URL(process.env.GUST_TEST_PG_URL);
        pg.pathname = `/${s.db}`;
        const rd = new URL(process.env.GUST_TEST_REDIS_URL);
        rd.pathname = '/6';
        rd.search = `?prefix=${s.redisPrefix}`;
        s.redisUrl = rd.toString();
        Object.assign(config, {
            'database.url': pg.toString(),
            'broker.url': process.env.GUST_TEST_AMQP_URL,
            'redis.url': s.redisUrl,
            'scheduler.zombie_timeout': '30s',
            'worker.shutdown_grace': '2s',
        });
        dags = withQueueDefaults(dags, s.queue);
    }
    Object.assign(config, opts.config || {});
    s.flags = [...Object.entries(config).map(([k, v]) => `--${k}=${v}`), ...(opts.extraArgs || [])];
    for (const [name, text] of Object.entries(dags)) writeFileIn(dagsDir, name, text);

    s.cli = (args, o = {}) => run(bin, [...s.flags, ...args], { env, input: o.input, timeoutMs: o.timeoutMs });
    s.writeDag = (name, text) => writeFileIn(dagsDir, name, text);
    s.logTail = (lines = 60) => s.procs.map((p) => `--- ${p.name} (${p.logFile}) ---\n${tailFile(p.logFile, lines)}`).join('\n');
    s._killNow = () => {
        for (const p of s.procs) if (p.exitCode === null) { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }
        dropResourcesSync(s);
    };
    s.user = (role) => {
        const u = s.users[role];
        if (!u && s.usersError) throw new Error(`user(${role}): ${s.usersError}`);
        if (!u) throw new Error(`user(${role}): no such role; roles are ${ROLES.join(', ')}`);
        return u;
    };
    s.token = async (role = 'Admin') => {
        if (s.tokens.has(role)) return s.tokens.get(role);
        const u = s.user(role);
        const res = await api(s, 'POST', '/auth/token', { as: null, body: { username: u.username, password: u.password } });
        if (res.status !== 201 && res.status !== 200) {
            throw new Error(`token(${role}): POST /auth/token as ${u.username} answered ${res.status}: ${res.text.slice(0, 300)}`);
        }
        if (!res.json || typeof res.json.access_token !== 'string') {
            throw new Error(`token(${role}): POST /auth/token answered no access_token: ${res.text.slice(0, 300)}`);
        }
        s.tokens.set(role, res.json.access_token);
        return res.json.access_token;
    };
    s.adminToken = () => s.token('Admin');
    s.stop = () => stopServer(s);

    live.add(s);
    try {
        if (mode === 'api') {
            try {
                execFileSync('psql', ['-qAtX', process.env.GUST_TEST_PG_ADMIN_URL, '-c', `CREATE DATABASE ${s.db} OWNER gust`],
                    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
            } catch (e) {
                throw new Error(`CREATE DATABASE ${s.db} on GUST_TEST_PG_ADMIN_URL failed: ${(e.stderr || e.message).trim()}`);
            }
            s.dbCreated = true;
            const m = await s.cli(['db', 'migrate']);
            if (m.code !== 0) throw new Error(`gust db migrate on ${s.db} failed (exit ${m.code}): ${m.stderr}${m.stdout}`);
            spawnDaemon(s, 'api', ['api']);
            spawnDaemon(s, 'scheduler', ['scheduler']);
            spawnDaemon(s, 'worker', ['worker', '-q', s.queue, '-c', '4', '--hostname', `w_${tag}`]);
        } else {
            spawnDaemon(s, 'standalone', ['standalone']);
        }
        await waitHealthy(s, 90000);
        await createUsers(s);
    } catch (e) {
        const tail = s.logTail(40);
        await stopServer(s).catch(() => {});
        throw new Error(`startGust(${mode}): ${e.message}\n${tail}`);
    }
    return s;
}

// A defaults.yml that sends every task to the test's own queue; a defaults.yml the test wrote
// keeps its content (the queue is merged into its default_args unless it names one itself).
function withQueueDefaults(dags, queue) {
    const out = { ...dags };
    const given = out['defaults.yml'];
    let doc = {};
    if (given !== undefined) {
        try { doc = YAML.parse(given) || {}; } catch { return out; }   // a broken one is the test's point
        if (typeof doc !== 'object' || Array.isArray(doc)) return out;
    }
    doc.default_args = { queue, ...(doc.default_args || {}) };
    out['defaults.yml'] = YAML.stringify(doc);
    return out;
}

function writeFileIn(dir, name, text) {
    const p = path.resolve(dir, name);
    if (!p.startsWith(dir + path.sep)) throw new Error(`writeDag: ${name} is outside the DAG folder`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
}

function tailFile(file, lines) {
    try {
        const text = fs.readFileSync(file, 'utf8');
        return text.split('\n').slice(-lines - 1).join('\n');
    } catch (e) {
        return `(no log: ${e.message})`;
    }
}

function spawnDaemon(s, name, args) {
    const logFile = path.join(s.tmp, `${name}.log`);
    const fd = fs.openSync(logFile, 'a');
    const child = spawn(s.bin, [...s.flags, ...args], { env: s.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    const p = { name, child, logFile, exitCode: null, signal: null };
    p.exited = new Promise((resolve) => {
        child.on('exit', (code, signal) => { p.exitCode = code === null ? -1 : code; p.signal = signal; resolve(); });
        child.on('error', (e) => { p.exitCode = -1; p.error = e; resolve(); });
    });
    s.procs.push(p);
    return p;
}

async function waitHealthy(s, timeoutMs) {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < timeoutMs) {
        const dead = s.procs.find((p) => p.exitCode !== null);
        if (dead) throw new Error(`${dead.name} exited (${dead.signal || dead.exitCode}) before ${s.url}/health answered`);
        try {
            const r = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(2000) });
            // 200; a 404 says the server serves but has no /health route (yet): test_contract
            // reports that, the other tests can go on
            if (r.status === 200 || r.status === 404) { await r.text(); return; }
            last = `GET /health answered ${r.status}: ${(await r.text()).slice(0, 200)}`;
        } catch (e) {
            last = `GET ${s.url}/health: ${e.cause ? e.cause.code || e.cause.message : e.message}`;
        }
        await sleep(150);
    }
    throw new Error(`no answer from GET /health within ${timeoutMs / 1000}s (${last})`);
}

async function createUsers(s) {
    for (const role of ROLES) {
        const username = `t_${role.toLowerCase()}`;
        const password = `pw-${role}-${crypto.randomBytes(9).toString('base64url')}`;
        let r;
        // the store may still be migrating right after the first start: retry briefly
        for (let i = 0; i < 3; i++) {
            r = await s.cli(['users', 'create', '--username', username, '--password', password, '--role', role]);
            if (r.code === 0) break;
            await sleep(250);
        }
        if (r.code !== 0) {
            // not fatal here: tests that need no token still run; user()/token() throw this
            s.usersError = `gust users create --username ${username} --role ${role} failed (exit ${r.code}): ${(r.stderr + r.stdout).trim()}`;
            return;
        }
        s.users[role] = { username, password };
    }
}

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

async function stopServer(s) {
    if (!live.has(s)) return;
    live.delete(s);
    const problems = [];
    for (const p of s.procs) if (p.exitCode === null) p.child.kill('SIGTERM');
    for (const p of s.procs) {
        let timer;
        const killed = await Promise.race([
            p.exited.then(() => false),
            new Promise((r) => { timer = setTimeout(() => r(true), 15000); }),
        ]);
        clearTimeout(timer);
        if (killed) {
            p.child.kill('SIGKILL');
            await p.exited;
            problems.push(`${p.name} did not stop within 15 s of SIGTERM (killed)`);
        } else if (p.exitCode !== 0) {
            problems.push(`${p.name} exited with ${p.signal || p.exitCode} after SIGTERM`);
        }
        const log = tailFile(p.logFile, 100000);
        const m = log.match(SANITIZER);
        if (m) {
            const i = log.indexOf(m[0]);
            problems.push(`${p.name}: sanitizer report in ${p.logFile}:\n${log.slice(Math.max(0, i - 200), i + 3000)}`);
        }
    }
    dropResourcesSync(s);
    if (problems.length) throw new Error(`gust (${s.mode}) did not stop cleanly:\n${problems.join('\n')}`);
}

// The per-server PostgreSQL database, RabbitMQ queue and Redis keys; synchronous so that the
// exit hook can call it. Best effort: a failure leaves a throw-away server's leftovers.
function dropResourcesSync(s) {
    const quiet = { stdio: 'ignore', timeout: 30000 };
    if (s.dbCreated) {
        s.dbCreated = false;
        try {
            execFileSync('psql', ['-qAtX', process.env.GUST_TEST_PG_ADMIN_URL, '-c', `DROP DATABASE IF EXISTS ${s.db} WITH (FORCE)`], quiet);
        } catch { /* best effort */ }
    }
    if (s.queue) {
        const q = s.queue;
        s.queue = null;
        const ctl = process.env.GUST_TEST_RABBITMQCTL;
        if (ctl) {
            try { execFileSync('bash', ['-c', `${ctl} delete_queue "$1"`, 'ctl', q], quiet); } catch { /* best effort */ }
        }
    }
    if (s.redisPrefix) {
        const prefix = s.redisPrefix;
        s.redisPrefix = null;
        const port = process.env.GUST_TEST_REDIS_PORT || new URL(process.env.GUST_TEST_REDIS_URL).port;
        try {
            execFileSync('bash', ['-c',
                'redis-cli -h 127.0.0.1 -p "$1" -n 6 --scan --pattern "$2*" | while read -r k; do redis-cli -h 127.0.0.1 -p "$1" -n 6 del "$k" >/dev/null; done',
                'rd', port, prefix], quiet);
        } catch { /* best effort */ }
    }
}

// ---- HTTP ----------------------------------------------------------------------------------

export async function api(s, method, p, o = {}) {
    let url = s.url + p;
    if (o.query) {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(o.query)) {
            for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined) q.append(k, String(x));
        }
        const qs = q.toString();
        if (qs) url += (p.includes('?') ? '&' : '?') + qs;
    }
    const headers = { ...(o.headers || {}) };
    const hasHeader = (name) => Object.keys(headers).some((k) => k.toLowerCase() === name);
    let token = o.token;
    if (token === undefined) {
        const as = o.as === undefined ? 'Admin' : o.as;
        if (as !== null) token = await s.token(as);
    }
    if (token && !hasHeader('authorization')) headers.Authorization = `Bearer ${token}`;
    let body;
    if (o.body !== undefined) {
        if (o.raw || typeof o.body === 'string' || Buffer.isBuffer(o.body) || o.body instanceof Uint8Array) body = o.body;
        else body = JSON.stringify(o.body);
        if (!hasHeader('content-type')) headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(o.timeoutMs || 30000) });
    const text = await res.text();
    let json;
    if (text.length) { try { json = JSON.parse(text); } catch { json = undefined; } }
    return { status: res.status, headers: res.headers, json, text, method, path: p.split('?')[0] };
}

export function assertResponse(res, status = 200, opts = {}) {
    assert.equal(res.status, status,
        `${res.method} ${res.path}: expected ${status}, got ${res.status}: ${res.text.slice(0, 800)}`);
    const ct = res.headers.get('content-type') || '';
    const isJson = /json/i.test(ct) && !/ndjson/i.test(ct);
    validateResponse(res.method, res.path, res.status, isJson && res.json !== undefined ? res.json : res.text,
        { contentType: ct, strict: opts.strict });
    return res.json;
}

// ---- the spec ------------------------------------------------------------------------------

let specDoc, ajvLoose, ajvStrict;
const compiled = new Map();

export function spec() {
    if (!specDoc) specDoc = YAML.parse(fs.readFileSync(SPEC_PATH, 'utf8'));
    return specDoc;
}

const SPEC_ID = 'https://gust.invalid/airflow-api-v2.json';

// OpenAPI 3.0's `nullable: true` (which this 3.1 document still uses) becomes JSON Schema's
// null type: type gets 'null' added; an enum gets null; a $ref or a composition is wrapped in
// anyOf [..., {type: null}] (siblings of a $ref would otherwise be ignored by older readers).
// strict: an object schema with `properties` and no additionalProperties says
// unevaluatedProperties: false, so a misspelt or invented field is reported.
function toJsonSchema(node, strict) {
    if (Array.isArray(node)) return node.map((x) => toJsonSchema(x, strict));
    if (!node || typeof node !== 'object') return node;
    const out = {};
    for (const [k, v] of Object.entries(node)) {
        if (k === 'nullable' || k === 'example' || k === 'discriminator' || k === 'xml' || k === 'externalDocs') continue;
        out[k] = (k === 'properties' || k === '$defs' || k === 'schemas' || k === 'patternProperties')
            ? Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, toJsonSchema(pv, strict)]))
            : toJsonSchema(v, strict);
    }
    if (strict && out.properties && out.additionalProperties === undefined && out.unevaluatedProperties === undefined) {
        out.unevaluatedProperties = false;
    }
    if (node.nullable === true) {
        if (typeof out.type === 'string' && !out.$ref && !out.anyOf && !out.oneOf && !out.allOf) {
            out.type = [out.type, 'null'];
            if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
            return out;
        }
        if (Array.isArray(out.type)) {
            if (!out.type.includes('null')) out.type = [...out.type, 'null'];
            return out;
        }
        const meta = {};
        for (const k of ['title', 'description', 'default', 'readOnly', 'deprecated']) {
            if (k in out) { meta[k] = out[k]; delete out[k]; }
        }
        return { ...meta, anyOf: [out, { type: 'null' }] };
    }
    return out;
}

function getAjv(strict) {
    if (strict ? ajvStrict : ajvLoose) return strict ? ajvStrict : ajvLoose;
    const a = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats(a);
    a.addSchema({ $id: SPEC_ID, components: { schemas: toJsonSchema(spec().components.schemas, strict) } });
    if (strict) ajvStrict = a; else ajvLoose = a;
    return a;
}

function compileRef(ref, strict) {
    const key = `${strict ? 's' : 'l'}:${ref}`;
    if (!compiled.has(key)) compiled.set(key, getAjv(strict).compile({ $ref: `${SPEC_ID}${ref}` }));
    return compiled.get(key);
}

function explain(errors, value) {
    return (errors || []).slice(0, 12).map((e) => {
        let detail = e.message;
        if (e.keyword === 'unevaluatedProperties' || e.keyword === 'additionalProperties') {
            detail = `has property '${e.params.unevaluatedProperty ?? e.params.additionalProperty}' the spec does not define`;
        }
        let got = '';
        if (e.keyword === 'type' || e.keyword === 'format' || e.keyword === 'enum') {
            got = ` (got ${JSON.stringify(pick(value, e.instancePath))?.slice(0, 120)})`;
        }
        return `  ${e.instancePath || '(root)'}: ${detail}${got}  [${e.schemaPath}]`;
    }).join('\n');
}

function pick(value, pointer) {
    if (!pointer) return value;
    let v = value;
    for (const part of pointer.split('/').slice(1)) {
        if (v === null || v === undefined) return v;
        v = v[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    return v;
}

export function validate(schemaName, value, o = {}) {
    if (!spec().components.schemas[schemaName]) throw new Error(`validate: the spec has no schema '${schemaName}'`);
    const fn = compileRef(`#/components/schemas/${schemaName}`, !!o.strict);
    if (!fn(value)) {
        assert.fail(`${o.what ? o.what + ': ' : ''}body does not match ${schemaName}${o.strict ? ' (strict)' : ''}:\n${explain(fn.errors, value)}\nbody: ${JSON.stringify(value).slice(0, 1500)}`);
    }
    return value;
}

// A concrete path (/api/v2/dags/x/tasks) to the spec's template (/api/v2/dags/{dag_id}/tasks):
// an exact key first, else the template with the most literal segments that matches.
export function findTemplate(method, p) {
    const paths = spec().paths;
    const m = method.toLowerCase();
    if (paths[p] && paths[p][m]) return p;
    const segs = p.split('?')[0].split('/');
    let best = null, bestLit = -1;
    for (const [tpl, ops] of Object.entries(paths)) {
        if (!ops[m]) continue;
        const ts = tpl.split('/');
        if (ts.length !== segs.length) continue;
        let lit = 0, ok = true;
        for (let i = 0; i < ts.length && ok; i++) {
            if (/^\{.+\}$/.test(ts[i])) ok = segs[i].length > 0;
            else if (ts[i] === segs[i]) lit++;
            else ok = false;
        }
        if (ok && lit > bestLit) { best = tpl; bestLit = lit; }
    }
    return best;
}

export function validateResponse(method, p, status, body, o = {}) {
    const tpl = findTemplate(method, p);
    if (!tpl) assert.fail(`validateResponse: the spec has no operation ${method} ${p}`);
    const op = spec().paths[tpl][method.toLowerCase()];
    const r = op.responses[String(status)] || op.responses.default;
    let ref;
    if (r) {
        if (!r.content) {
            assert.ok(body === '' || body === undefined || body === null,
                `${method} ${p} ${status}: the spec says no content, got ${JSON.stringify(body).slice(0, 300)}`);
            return body;
        }
        // the media type the server answered with (dagSources also speaks text/plain, logs
        // application/x-ndjson), else the JSON one
        const ct = (o.contentType || 'application/json').split(';')[0].trim().toLowerCase();
        const media = r.content[ct] || r.content['application/json'] || Object.values(r.content)[0];
        ref = media && media.schema;
    } else if (status >= 400) {
        ref = { $ref: status === 422 ? '#/components/schemas/HTTPValidationError' : '#/components/schemas/HTTPExceptionResponse' };
    } else {
        assert.fail(`${method} ${tpl}: the spec lists no ${status} response (it lists ${Object.keys(op.responses).join(', ')})`);
    }
    if (!ref) return body;
    const what = `${method} ${p} ${status} (${tpl})`;
    let fn;
    if (ref.$ref && Object.keys(ref).length === 1) {
        fn = compileRef(ref.$ref, !!o.strict);
    } else {
        const key = `inline:${o.strict ? 's' : 'l'}:${tpl}:${method}:${status}:${JSON.stringify(ref)}`;
        if (!compiled.has(key)) {
            const sch = JSON.parse(JSON.stringify(toJsonSchema(ref, !!o.strict)).replaceAll('"#/components/', `"${SPEC_ID}#/components/`));
            compiled.set(key, getAjv(!!o.strict).compile(sch));
        }
        fn = compiled.get(key);
    }
    if (!fn(body)) {
        assert.fail(`${what}: body does not match the spec${o.strict ? ' (strict)' : ''}:\n${explain(fn.errors, body)}\nbody: ${JSON.stringify(body).slice(0, 1500)}`);
    }
    return body;
}

// ---- waiting ---------------------------------------------------------------------------------

export async function waitFor(fn, timeoutMs = 15000, intervalMs = 100) {
    const t0 = Date.now();
    let last, lastErr;
    for (;;) {
        try {
            last = await fn();
            lastErr = undefined;
            if (last) return last;
        } catch (e) {
            lastErr = e;
        }
        if (Date.now() - t0 >= timeoutMs) {
            const why = lastErr ? `last error: ${lastErr.message}` : `last value: ${JSON.stringify(last)?.slice(0, 500)}`;
            throw new Error(`waitFor: not true within ${timeoutMs} ms (${why})`);
        }
        await sleep(intervalMs);
    }
}

export async function triggerAndWait(s, dagId, conf = {}, o = {}) {
    const as = o.as || 'Admin';
    const timeoutMs = o.timeoutMs || 60000;
    const t0 = Date.now();
    let created;
    // the DAG processor may not have stored the DAG yet right after the start: 404 is retried
    for (;;) {
        const r = await api(s, 'POST', `/api/v2/dags/${enc(dagId)}/dagRuns`, { as, body: { logical_date: null, conf } });
        if (r.status === 200 || r.status === 201) { created = r.json; break; }
        if (r.status !== 404 || Date.now() - t0 > timeoutMs) {
            throw new Error(`triggerAndWait: POST /api/v2/dags/${dagId}/dagRuns answered ${r.status}: ${r.text.slice(0, 500)}`);
        }
        await sleep(250);
    }
    const runId = created.dag_run_id;
    return waitFor(async () => {
        const r = await api(s, 'GET', `/api/v2/dags/${enc(dagId)}/dagRuns/${enc(runId)}`, { as });
        if (r.status !== 200) throw new Error(`GET dagRuns/${runId} answered ${r.status}: ${r.text.slice(0, 300)}`);
        return r.json.state === 'success' || r.json.state === 'failed' ? r.json : false;
    }, Math.max(1000, timeoutMs - (Date.now() - t0)), 200);
}
