// GET /metrics (api/metrics.c): Prometheus text format 0.0.4, checked by a strict parser of the
// format (families declared before their samples, one TYPE per family, label syntax and
// escapes, numeric values, no series twice, histograms cumulative with +Inf = _count); the
// request counters and the latency histogram move by exactly the requests made; the store's
// gauges say what the store holds after a run; workers are counted from Redis in the
// distributed deployment; it needs a Viewer (Bearer or Basic, as Prometheus scrapes) and
// answers 401 without. Runs in standalone (SQLite) and, when the test servers are up, in the
// distributed deployment.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { servicesAvailable, startGust, triggerAndWait } from './lib.mjs';

const DAGS = {
    'm_two.yml': `
m_two:
  schedule: null
  start_date: 2024-01-01
  tasks:
    - task_id: a
      operator: bash
      bash_command: "echo a"
    - task_id: b
      operator: bash
      bash_command: "echo b"
      dependencies: [a]
`,
    'm_paused.yml': `
m_paused:
  schedule: null
  start_date: 2024-01-01
  is_paused_upon_creation: true
  tasks:
    - task_id: x
      operator: bash
      bash_command: "echo x"
`,
};

// ---- the text format, strictly --------------------------------------------------------------

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(text, where) {
    const labels = {};
    let i = 0;
    while (i < text.length) {
        const eq = text.indexOf('=', i);
        assert.ok(eq > i, `${where}: a label without '='`);
        const name = text.slice(i, eq);
        assert.match(name, LABEL, `${where}: label name '${name}'`);
        assert.equal(text[eq + 1], '"', `${where}: label ${name} is not quoted`);
        let v = '';
        let j = eq + 2;
        for (; j < text.length && text[j] !== '"'; j++) {
            if (text[j] === '\\') {
                const n = text[++j];
                assert.ok(['\\', '"', 'n'].includes(n), `${where}: bad escape \\${n}`);
                v += n === 'n' ? '\n' : n;
            } else {
                v += text[j];
            }
        }
        assert.equal(text[j], '"', `${where}: unterminated label value`);
        assert.ok(!(name in labels), `${where}: label ${name} twice`);
        labels[name] = v;
        i = j + 1;
        if (text[i] === ',') i++;
        else assert.equal(i, text.length, `${where}: junk after label ${name}`);
    }
    return labels;
}

// → {families: Map(name → {type, help, samples: [{name, labels, value}]}), text}
function parseProm(text) {
    assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
    const families = new Map();
    const seen = new Set();
    const famOf = (sample) => {
        for (const suffix of ['_bucket', '_sum', '_count', '']) {
            if (sample.endsWith(suffix)) {
                const base = sample.slice(0, sample.length - suffix.length);
                const f = families.get(base);
                if (f && (suffix === '' || f.type === 'histogram' || f.type === 'summary')) return f;
            }
        }
        return undefined;
    };
    text.split('\n').forEach((line, n) => {
        const where = `line ${n + 1}: ${line}`;
        if (line === '') return;
        if (line.startsWith('#')) {
            const m = line.match(/^# (HELP|TYPE) (\S+) (.*)$/);
            if (!m) return; // a plain comment
            assert.match(m[2], NAME, where);
            const f = families.get(m[2]) || { help: undefined, type: undefined, samples: [] };
            if (m[1] === 'TYPE') {
                assert.equal(f.type, undefined, `${where}: TYPE given twice`);
                assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]), where);
                assert.equal(f.samples.length, 0, `${where}: TYPE after samples`);
                f.type = m[3];
            } else {
                assert.equal(f.help, undefined, `${where}: HELP given twice`);
                f.help = m[3];
            }
            families.set(m[2], f);
            return;
        }
        const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/);
        assert.ok(m, `${where}: not a sample line`);
        const labels = m[2] ? parseLabels(m[2], where) : {};
        const v = m[3];
        assert.ok(/^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+|Inf|NaN)$/.test(v), `${where}: value '${v}'`);
        const key = `${m[1]}{${Object.entries(labels).sort().map(([k, x]) => `${k}=${x}`).join(',')}}`;
        assert.ok(!seen.has(key), `${where}: series given twice`);
        seen.add(key);
        const f = famOf(m[1]);
        assert.ok(f && f.type, `${where}: no TYPE line declares ${m[1]} before it`);
        f.samples.push({ name: m[1], labels, value: Number(v) });
    });
    // histograms: per series, buckets cumulative, +Inf = _count, a _sum
    for (const [name, f] of families) {
        if (f.type !== 'histogram') continue;
        const groups = new Map();
        for (const smp of f.samples) {
            const { le, ...rest } = smp.labels;
            const g = JSON.stringify(Object.entries(rest).sort());
            if (!groups.has(g)) groups.set(g, { buckets: [], sum: undefined, count: undefined });
            const gg = groups.get(g);
            if (smp.name === `${name}_bucket`) gg.buckets.push([le === '+Inf' ? Infinity : Number(le), smp.value]);
            else if (smp.name === `${name}_sum`) gg.sum = smp.value;
            else if (smp.name === `${name}_count`) gg.count = smp.value;
        }
        for (const [g, gg] of groups) {
            assert.ok(gg.buckets.length > 1 && gg.sum !== undefined && gg.count !== undefined, `${name} ${g}: incomplete`);
            for (let i = 1; i < gg.buckets.length; i++) {
                assert.ok(gg.buckets[i][0] > gg.buckets[i - 1][0], `${name} ${g}: le not increasing`);
                assert.ok(gg.buckets[i][1] >= gg.buckets[i - 1][1], `${name} ${g}: buckets not cumulative`);
            }
            const inf = gg.buckets[gg.buckets.length - 1];
            assert.equal(inf[0], Infinity, `${name} ${g}: no +Inf bucket`);
            assert.equal(inf[1], gg.count, `${name} ${g}: +Inf bucket is not _count`);
        }
    }
    return families;
}

function value(fams, name, labels = {}) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const f = fams.get(name) || fams.get(base);
    if (!f) return undefined;
    const hit = f.samples.find((x) => x.name === name
        && Object.keys(labels).length === Object.keys(x.labels).length
        && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    return hit ? hit.value : undefined;
}

async function scrape(s, { auth } = {}) {
    const res = await fetch(`${s.url}/metrics`, { headers: { Authorization: auth || `Bearer ${await s.token('Viewer')}` } });
    const text = await res.text();
    assert.equal(res.status, 200, text.slice(0, 300));
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return parseProm(text);
}

const modes = [['standalone', true], ['api', servicesAvailable()]];

for (const [mode, available] of modes) {
    describe(`metrics (${mode})`, { skip: available ? false : 'GUST_TEST_* servers not set (bash tests/services.sh start)' }, () => {
        let s;
        before(async () => {
            s = await startGust({ mode, dags: DAGS });
        });
        after(async () => {
            if (s) await s.stop();
        });

        test('needs a Viewer: 401 without credentials, Bearer and Basic both work', async () => {
            const res = await fetch(`${s.url}/metrics`);
            assert.equal(res.status, 401);
            assert.ok(JSON.parse(await res.text()).detail);
            const u = s.user('Viewer');
            const fams = await scrape(s, { auth: `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}` });
            assert.equal(fams.get('gust_api_requests_total').type, 'counter');
            const bad = await fetch(`${s.url}/metrics`, { headers: { Authorization: `Basic ${Buffer.from(`${u.username}:wrong`).toString('base64')}` } });
            assert.equal(bad.status, 401);
            await bad.text();
        });

        test('request counters and the latency histogram move by exactly the requests made', async () => {
            const route = '/api/v2/version';
            const before0 = await scrape(s);
            const c0 = value(before0, 'gust_api_requests_total', { route, method: 'GET', status: '200' }) || 0;
            const h0 = value(before0, 'gust_api_request_duration_seconds_count', { route }) || 0;
            const u0 = value(before0, 'gust_api_requests_total', { route: 'unmatched', method: 'GET', status: '404' }) || 0;
            const m0 = value(before0, 'gust_api_requests_total', { route: '/metrics', method: 'GET', status: '200' });
            assert.ok(m0 >= 1, 'the first scrape of this test is counted by the next');
            for (let i = 0; i < 5; i++) assert.equal((await fetch(`${s.url}${route}`)).status, 200);
            for (let i = 0; i < 3; i++) assert.equal((await fetch(`${s.url}/no/such/path/${i}`)).status, 404);
            const a0 = value(before0, 'gust_api_requests_total', { route: '/metrics', method: 'GET', status: '401' }) || 0;
            assert.equal((await fetch(`${s.url}/metrics`)).status, 401); // refused requests count too
            const after1 = await scrape(s);
            assert.equal(value(after1, 'gust_api_requests_total', { route, method: 'GET', status: '200' }), c0 + 5);
            assert.equal(value(after1, 'gust_api_request_duration_seconds_count', { route }), h0 + 5);
            // three different unknown paths are one series: clients cannot grow the table
            assert.equal(value(after1, 'gust_api_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), u0 + 3);
            assert.equal(value(after1, 'gust_api_requests_total', { route: '/metrics', method: 'GET', status: '200' }), m0 + 1);
            assert.equal(value(after1, 'gust_api_requests_total', { route: '/metrics', method: 'GET', status: '401' }), a0 + 1);
            const sum = value(after1, 'gust_api_request_duration_seconds_sum', { route });
            assert.ok(sum > 0 && sum < 5 * 10, `sum ${sum}`);
            assert.equal(value(after1, 'gust_api_request_duration_seconds_bucket', { route, le: '+Inf' }), h0 + 5);
            assert.ok(value(after1, 'gust_api_request_duration_seconds_bucket', { route, le: '10' }) >= h0 + 5);
            assert.equal(value(after1, 'gust_store_up'), 1);
            assert.ok(value(after1, 'gust_api_start_time_seconds') * 1000 <= Date.now());
        });

        test('the store gauges say what the store holds after a run', async () => {
            const run = await triggerAndWait(s, 'm_two');
            assert.equal(run.state, 'success');
            const f = await scrape(s);
            assert.equal(value(f, 'gust_dag_runs', { state: 'success' }), 1);
            assert.equal(value(f, 'gust_dag_runs', { state: 'running' }), 0);
            assert.equal(value(f, 'gust_task_instances', { state: 'success' }), 2);
            assert.equal(value(f, 'gust_task_instances', { state: 'queued' }), 0);
            assert.equal(value(f, 'gust_task_instances', { state: 'none' }), 0);
            assert.equal(f.get('gust_task_instances').samples.length, 12, 'every state, zeros included');
            assert.equal(value(f, 'gust_queue_depth', { stage: 'outbox' }), 0);
            assert.equal(value(f, 'gust_queue_depth', { stage: 'broker' }), 0);
            assert.equal(value(f, 'gust_dags', { paused: 'false' }), 1);
            assert.equal(value(f, 'gust_dags', { paused: 'true' }), 1);
            // both tries ended within the hour: echo takes well under a second
            assert.equal(value(f, 'gust_task_duration_seconds_count'), 2);
            assert.equal(value(f, 'gust_task_duration_seconds_bucket', { le: '5' }), 2);
            assert.ok(value(f, 'gust_task_duration_seconds_sum') < 10);
            assert.equal(f.get('gust_task_duration_seconds').type, 'histogram');
            if (mode === 'api') {
                // the harness starts one worker; it beats in Redis
                assert.equal(value(f, 'gust_workers_live'), 1);
            } else if (f.has('gust_workers_live')) {
                assert.ok(value(f, 'gust_workers_live') >= 0);
            }
        });
    });
}
