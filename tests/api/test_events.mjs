// Server-Sent Events of state changes (api/events.c): GET /api/v2/gust/events streams every
// change of a run's and a task instance's state from the store's journal (state_event), once
// and in order; Last-Event-ID (or ?after=) resumes without repeating anything, also on another
// API server of the same store (which reads the older part from the store); dag_id / run_id
// filter; a silent stream gets keepalive comments; subscribers are limited. What a stream
// says is compared with the journal read back from the store itself (sqlite3 / psql). Runs in
// standalone (SQLite) and, when the test servers are up, in the distributed deployment
// (PostgreSQL: the scheduler and the worker are other processes, so the journal's ids commit
// out of order across their transactions).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { api, enc, freePort, servicesAvailable, sleep, startGust, triggerAndWait, waitFor } from './lib.mjs';

const EVENTS = '/api/v2/gust/events';

const DAGS = {
    'ev_chain.yml': `
ev_chain:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: first
      operator: bash
      bash_command: "echo first"
    - task_id: second
      operator: bash
      bash_command: "echo second"
      dependencies: [first]
    - task_id: third
      operator: bash
      bash_command: "echo third"
      dependencies: [first]
`,
    'ev_other.yml': `
ev_other:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: only
      operator: bash
      bash_command: "echo other"
`,
};

// ---- a small EventSource: fetch with a streamed body, frames parsed as the SSE spec says ---------

class Stream {
    constructor(base, { query = {}, lastEventId, auth }) {
        const q = new URLSearchParams(query).toString();
        this.url = `${base}${EVENTS}${q ? `?${q}` : ''}`;
        this.headers = { Accept: 'text/event-stream', Authorization: auth };
        if (lastEventId !== undefined) this.headers['Last-Event-ID'] = String(lastEventId);
        this.events = [];     // {id, event, data}
        this.comments = [];   // {text, at}
        this.retry = null;
        this.ended = false;
        this.ac = new AbortController();
    }

    // paused: the body is not read until resume() (a client that stops reading)
    async open({ paused = false } = {}) {
        const res = await fetch(this.url, { headers: this.headers, signal: this.ac.signal });
        this.status = res.status;
        this.contentType = res.headers.get('content-type');
        if (res.status !== 200) {
            this.body = await res.text();
            return this;
        }
        this.res = res;
        if (!paused) this.resume();
        return this;
    }

    resume() {
        this.done = this.pump(this.res.body);
    }

    async pump(body) {
        const dec = new TextDecoder();
        let buf = '';
        try {
            for await (const chunk of body) {
                buf += dec.decode(chunk, { stream: true });
                let i;
                while ((i = buf.indexOf('\n\n')) >= 0) {
                    this.frame(buf.slice(0, i));
                    buf = buf.slice(i + 2);
                }
            }
        } catch (e) {
            if (e.name !== 'AbortError') this.error = e;
        }
        this.ended = true;
    }

    frame(text) {
        const f = { id: undefined, event: 'message', data: [] };
        for (const line of text.split('\n')) {
            if (line.startsWith(':')) { this.comments.push({ text: line.slice(1).trim(), at: Date.now() }); continue; }
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'id') f.id = value;
            else if (field === 'event') f.event = value;
            else if (field === 'data') f.data.push(value);
            else if (field === 'retry') this.retry = Number(value);
        }
        if (!f.data.length) return;
        const data = f.data.join('\n');
        let json;
        try { json = JSON.parse(data); } catch { json = undefined; }
        this.events.push({ id: f.id === undefined ? undefined : Number(f.id), event: f.event, data: json, raw: data });
    }

    get lastId() {
        const withId = this.events.filter((e) => e.id !== undefined);
        return withId.length ? withId[withId.length - 1].id : undefined;
    }

    until(pred, timeoutMs = 30000) {
        return waitFor(() => {
            if (this.error) throw this.error;
            return pred(this);
        }, timeoutMs, 50);
    }

    async close() {
        this.ac.abort();
        if (this.done) await this.done;
    }
}

async function basic(s, role) {
    const u = s.user(role);
    return `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}`;
}

async function subscribe(s, o = {}) {
    const auth = o.auth || `Bearer ${await s.token(o.as || 'Viewer')}`;
    const st = await new Stream(o.base || s.url, { ...o, auth }).open({ paused: o.paused });
    if (o.expectStatus === undefined && !o.paused) {
        assert.equal(st.status, 200, `GET ${st.url}: ${st.status} ${st.body}`);
        assert.match(st.contentType, /^text\/event-stream/);
        // the first comment says the stream is registered: what happens from now on is in it
        await st.until((x) => x.comments.some((c) => c.text === 'connected'), 10000);
    }
    return st;
}

// The journal rows of a run, read from the store itself: [id, event, task_id, state, try_number].
function journal(s, runId) {
    const sql = `SELECT id, kind, COALESCE(task_id, ''), COALESCE(state, 'none'), COALESCE(try_number, -9) `
        + `FROM state_event WHERE run_id = '${runId.replaceAll("'", "''")}' ORDER BY id`;
    let out;
    if (s.mode === 'api') {
        const u = new URL(process.env.GUST_TEST_PG_URL);
        u.pathname = `/${s.db}`;
        out = execFileSync('psql', ['-qAtX', '-F', '|', u.toString(), '-c', sql], { encoding: 'utf8' });
    } else {
        out = execFileSync('sqlite3', ['-separator', '|', path.join(s.home, 'gust.db'), sql], { encoding: 'utf8' });
    }
    return out.trim().split('\n').filter(Boolean).map((l) => {
        const [id, kind, task, state, tn] = l.split('|');
        return [Number(id), kind === 'ti' ? 'task_instance' : 'dag_run', task || null, state, kind === 'ti' ? Number(tn) : null];
    });
}

// Run SQL on the server's store (writes included).
function storeExec(s, sql) {
    if (s.mode === 'api') {
        const u = new URL(process.env.GUST_TEST_PG_URL);
        u.pathname = `/${s.db}`;
        return execFileSync('psql', ['-qAtX', u.toString(), '-c', sql], { encoding: 'utf8' }).trim();
    }
    return execFileSync('sqlite3', ['-cmd', '.timeout 10000', path.join(s.home, 'gust.db'), sql], { encoding: 'utf8' }).trim();
}

const asRows = (events) => events.map((e) => [e.id, e.event, e.data.task_id, e.data.state ?? 'none', e.data.try_number]);
const ofRun = (st, runId) => st.events.filter((e) => e.data && e.data.run_id === runId);
const runDone = (runId) => (st) => st.events.some((e) => e.event === 'dag_run' && e.data.run_id === runId
    && (e.data.state === 'success' || e.data.state === 'failed'));

function assertIncreasing(events) {
    for (let i = 1; i < events.length; i++) {
        assert.ok(events[i].id > events[i - 1].id, `ids go back or repeat: ${events[i - 1].id} then ${events[i].id}`);
    }
}

// Trigger without waiting (the stream is what the test watches).
async function trigger(s, dagId) {
    return waitFor(async () => {
        const r = await api(s, 'POST', `/api/v2/dags/${enc(dagId)}/dagRuns`, { body: { logical_date: null } });
        if (r.status === 404) return false; // the DAG processor has not stored it yet
        assert.equal(r.status, 200, `trigger ${dagId}: ${r.status} ${r.text}`);
        return r.json;
    }, 30000, 200);
}

const modes = [['standalone', true], ['api', servicesAvailable()]];

for (const [mode, available] of modes) {
    describe(`events (${mode})`, { skip: available ? false : 'GUST_TEST_* servers not set (bash tests/services.sh start)' }, () => {
        let s;
        const extra = []; // other API servers started on the same store

        before(async () => {
            s = await startGust({
                mode,
                dags: DAGS,
                config: { 'api.events_keepalive': '1s', 'api.events_max_clients': '6' },
            });
        });
        after(async () => {
            for (const p of extra) if (p.exitCode === null) p.kill('SIGKILL');
            if (s) await s.stop();
        });

        test('every state change of a run and its task instances arrives once, in order, as in the journal', async () => {
            const st = await subscribe(s, { query: { dag_id: 'ev_chain' } });
            assert.equal(st.retry, 2000);
            const run = await triggerAndWait(s, 'ev_chain');
            assert.equal(run.state, 'success');
            const runId = run.dag_run_id;
            await st.until(runDone(runId));
            await sleep(500); // anything late or repeated would come now
            await st.close();

            const evs = ofRun(st, runId);
            assert.equal(evs.length, st.events.length, 'the dag_id filter let another DAG through');
            assertIncreasing(evs);
            for (const e of evs) {
                assert.ok(['dag_run', 'task_instance'].includes(e.event), e.event);
                assert.equal(e.data.dag_id, 'ev_chain');
                assert.ok(!Number.isNaN(Date.parse(e.data.timestamp)) && e.data.timestamp.endsWith('Z'), e.data.timestamp);
                assert.deepEqual(Object.keys(e.data).sort(),
                    ['dag_id', 'map_index', 'run_id', 'state', 'task_id', 'timestamp', 'try_number']);
            }
            const runStates = evs.filter((e) => e.event === 'dag_run').map((e) => e.data.state);
            assert.deepEqual(runStates, ['queued', 'running', 'success']);
            assert.equal(evs[0].event, 'dag_run', 'the run is queued before anything else happens');
            assert.equal(evs[evs.length - 1].event, 'dag_run', 'the run ends after its tasks');
            const byTask = {};
            for (const e of evs.filter((x) => x.event === 'task_instance')) {
                assert.equal(e.data.map_index, -1);
                assert.equal(e.data.run_id, runId);
                (byTask[e.data.task_id] ||= []).push(`${e.data.state}@${e.data.try_number}`);
            }
            assert.deepEqual(Object.keys(byTask).sort(), ['first', 'second', 'third']);
            for (const [task, seq] of Object.entries(byTask)) {
                assert.deepEqual(seq, ['scheduled@0', 'queued@1', 'running@1', 'success@1'], `${task}: ${seq.join(' ')}`);
            }
            // upstream first: second and third are scheduled only after first succeeded
            const at = (task, state) => evs.findIndex((e) => e.data.task_id === task && e.data.state === state);
            assert.ok(at('first', 'success') < at('second', 'scheduled'));
            assert.ok(at('first', 'success') < at('third', 'scheduled'));
            // exactly the journal, row for row
            assert.deepEqual(asRows(evs), journal(s, runId));
        });

        test('resuming with Last-Event-ID (or ?after=) repeats nothing and misses nothing', async () => {
            const st1 = await subscribe(s, { query: { dag_id: 'ev_chain' } });
            const run = await trigger(s, 'ev_chain');
            const runId = run.dag_run_id;
            await st1.until((x) => ofRun(x, runId).length >= 3);
            await st1.close();
            // resume from the third change: a fast run may have ended before st1 closed, so the
            // point to resume from is chosen, not whatever st1 happened to see last
            const seen = ofRun(st1, runId).slice(0, 3);
            const last = seen[2].id;
            await triggerAndWait(s, 'ev_other'); // changes of another DAG in between, filtered out below

            // what an EventSource sends on reconnecting: its first URL (here with ?after=0) and the
            // last id it saw; the header is the newer word
            const st2 = await subscribe(s, { query: { dag_id: 'ev_chain', after: 0 }, lastEventId: last });
            await st2.until(runDone(runId), 60000);
            await sleep(300);
            await st2.close();
            const rest = ofRun(st2, runId);
            assert.ok(rest.length > 0);
            assert.ok(rest[0].id > last, `resumed at ${rest[0].id}, not after ${last}`);
            const all = [...seen, ...rest];
            assertIncreasing(all);
            assert.deepEqual(asRows(all), journal(s, runId));
            assert.ok(st2.events.every((e) => e.data.dag_id === 'ev_chain'));

            // ?after= alone: the same rows from the same point
            const st3 = await subscribe(s, { query: { run_id: runId, after: last } });
            await st3.until(runDone(runId), 10000);
            await sleep(200);
            await st3.close();
            assert.deepEqual(asRows(st3.events), asRows(rest));
        });

        test('another API server of the same store replays older events from the store', async () => {
            const run = await triggerAndWait(s, 'ev_chain');
            const want = journal(s, run.dag_run_id);
            // a second `gust api` on the same store and settings, started after the run: its
            // memory begins after these events, so a resume from before them reads the store
            const port = await freePort();
            const log = path.join(s.tmp, `api2-${mode}.log`);
            const fd = fs.openSync(log, 'a');
            const p = spawn(s.bin, [...s.flags, `--api.port=${port}`, 'api'], { env: s.env, stdio: ['ignore', fd, fd] });
            fs.closeSync(fd);
            extra.push(p);
            const exited = new Promise((r) => p.on('exit', (code, sig) => r(sig || code)));
            const base = `http://127.0.0.1:${port}`;
            await waitFor(async () => (await fetch(`${base}/health`).catch(() => null))?.status === 200, 60000, 200);
            try {
                // tokens are signed per server (random api.secret_key): HTTP Basic works on both
                const st = await subscribe(s, { base, auth: await basic(s, 'Viewer'), query: { run_id: run.dag_run_id }, lastEventId: want[0][0] - 1 });
                await st.until((x) => x.events.length >= want.length, 20000);
                await sleep(300);
                await st.close();
                assert.deepEqual(asRows(st.events), want);
            } finally {
                p.kill('SIGTERM');
                assert.equal(await exited, 0, `the second gust api did not stop cleanly:\n${fs.readFileSync(log, 'utf8').slice(-3000)}`);
                const text = fs.readFileSync(log, 'utf8');
                assert.doesNotMatch(text, /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/, text.slice(-3000));
            }
        });

        test('a client a whole ring behind gets event: overflow; reconnecting reads the rest from the store', async () => {
            // a client that stops reading, and one that reads
            const slow = await subscribe(s, { query: { run_id: 'bulk' }, paused: true });
            assert.equal(slow.status, 200);
            const fast = await subscribe(s, { query: { run_id: 'bulk' } });
            // 60,000 journal rows at once (~13 MB of events: more than the socket buffers hold,
            // and far more than the ring's 4,096)
            const N = 60000;
            const before = Number(storeExec(s, 'SELECT COALESCE(MAX(id), 0) FROM state_event'));
            storeExec(s, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${N}) `
                + `INSERT INTO state_event (ts, kind, dag_id, run_id, state) SELECT ${Date.now() * 1000}, 'run', 'ev_bulk', 'bulk', 'queued' FROM c`);
            const ids = storeExec(s, `SELECT MIN(id) || ' ' || MAX(id) FROM state_event WHERE run_id = 'bulk'`).split(' ').map(Number);
            assert.ok(ids[0] > before && ids[1] - ids[0] === N - 1, `ids ${ids}`);
            // the reading client gets every one, once, in order
            await fast.until((x) => x.events.length >= N, 120000);
            await sleep(300);
            await fast.close();
            assert.equal(fast.events.length, N);
            assert.equal(fast.events[0].id, ids[0]);
            assertIncreasing(fast.events);
            // the one that did not read: what fitted in the buffers, then overflow, then the end
            slow.resume();
            await slow.until((x) => x.ended, 60000);
            const last = slow.events[slow.events.length - 1];
            assert.equal(last.event, 'overflow', `the stream ended without an overflow event: ${JSON.stringify(last).slice(0, 300)}`);
            assert.match(last.data.detail, /reconnect with Last-Event-ID/);
            const got = slow.events.filter((e) => e.event === 'dag_run');
            assert.ok(got.length < N, `${got.length} events came before the overflow`);
            assertIncreasing(got);
            const resumeFrom = got.length ? got[got.length - 1].id : before;
            assert.equal(last.data.last_event_id, resumeFrom);
            // reconnecting: the rest, from the store, and nothing twice
            const again = await subscribe(s, { query: { run_id: 'bulk' }, lastEventId: resumeFrom });
            await again.until((x) => x.events.length >= N - got.length, 120000);
            await sleep(300);
            await again.close();
            const all = [...got, ...again.events];
            assert.equal(all.length, N);
            assertIncreasing(all);
            assert.equal(all[N - 1].id, ids[1]);
        });

        test('dag_id and run_id filters', async () => {
            const stOther = await subscribe(s, { query: { dag_id: 'ev_other' } });
            const stNone = await subscribe(s, { query: { run_id: 'no-such-run' } });
            const run = await triggerAndWait(s, 'ev_other');
            await stOther.until(runDone(run.dag_run_id));
            await sleep(300);
            await stOther.close();
            await stNone.close();
            assert.ok(stOther.events.every((e) => e.data.dag_id === 'ev_other'));
            assert.deepEqual(asRows(ofRun(stOther, run.dag_run_id)), journal(s, run.dag_run_id));
            assert.equal(stNone.events.length, 0);
        });

        test('a silent stream gets keepalive comments (api.events_keepalive)', async () => {
            const st = await subscribe(s, { query: { run_id: 'nothing-will-happen' } });
            await st.until((x) => x.comments.filter((c) => c.text === 'keepalive').length >= 2, 8000);
            await st.close();
            const ka = st.comments.filter((c) => c.text === 'keepalive');
            assert.ok(ka[1].at - ka[0].at >= 500, 'keepalives are spaced by the setting (1 s here)');
            assert.equal(st.events.length, 0);
        });

        test('authentication, bad ids and the subscriber limit', async () => {
            const noAuth = await fetch(`${s.url}${EVENTS}`);
            assert.equal(noAuth.status, 401);
            await noAuth.text();
            const bad = await subscribe(s, { lastEventId: 'abc', expectStatus: 400 });
            assert.equal(bad.status, 400);
            assert.match(JSON.parse(bad.body).detail, /Last-Event-ID/);
            for (const v of ['-1', 'x']) {
                const r = await api(s, 'GET', EVENTS, { as: 'Viewer', query: { after: v } });
                assert.equal(r.status, 422, r.text);
                assert.deepEqual(r.json.detail[0].loc, ['query', 'after']);
            }
            // api.events_max_clients = 6: the seventh waits its turn. Streams the earlier tests
            // closed count until the server sees them gone (at their next keepalive, within
            // ~2 s here), so a slot is waited for; once six are ours, the count is exact.
            const open = [];
            for (let i = 0; i < 6; i++) {
                open.push(await waitFor(async () => {
                    const st = await subscribe(s, { query: { run_id: `limit-${i}` }, expectStatus: 'any' });
                    return st.status === 200 ? st : false;
                }, 10000, 300));
            }
            const over = await subscribe(s, { expectStatus: 503 });
            assert.equal(over.status, 503);
            assert.match(JSON.parse(over.body).detail, /api\.events_max_clients/);
            await open[0].close();
            // the server sees the client gone at its next write (a keepalive within 1 s)
            await waitFor(async () => {
                const again = await subscribe(s, { expectStatus: 'any' });
                if (again.status === 200) { open.push(again); return true; }
                return false;
            }, 10000, 300);
            for (const st of open) await st.close();
        });
    });
}
