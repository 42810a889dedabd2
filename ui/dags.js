// dags — the DAG list: search, tag filter, pause switches, run counts and the latest runs,
// next run, and a banner for DAG files that failed to load. The API pages DAGs by 100, so the
// page shows 100 rows at a time (one innerHTML for the rows); run statistics for those rows
// come after the rows are painted, in two calls (dagStats and a batched run list), and are
// refreshed from the event stream when one of the rows' DAGs has a run change state.
import * as api from './api.js';
import { h, put, $, time, badge, errBox, errText, notice, debounce, q, enc, pager, paintedMark, RUN_STATES } from './util.js';

const LIMIT = 100;

export async function mount(main, route) {
  document.title = 'DAGs · gust';
  let state = read(route);
  let dags = [];
  let alive = true;
  const fetchDags = () => api.get('/dags' + q({
    limit: LIMIT, offset: state.offset, order_by: 'dag_id',
    dag_id_pattern: state.search ? `%${state.search}%` : null,
    tags: state.tag || null, paused: state.paused || null,
  }));

  // the list first, before anything else is built or asked for: it is what the user waits for
  const first = fetchDags();
  first.catch(() => {}); // handled by load()

  put(main, h`<div class="head"><h1>DAGs</h1></div>
    <div id="import-errors"></div>
    <form class="filters" id="dag-filters" role="search">
      <label for="dag-search">Search DAGs</label>
      <input id="dag-search" type="search" placeholder="DAG id" value="${state.search}">
      <label for="dag-tag">Tag</label>
      <select id="dag-tag"><option value="">All tags</option></select>
      <label for="dag-paused">Show</label>
      <select id="dag-paused">
        <option value="">All</option><option value="false">Active</option><option value="true">Paused</option>
      </select>
    </form>
    <div id="dag-list" aria-live="polite" aria-busy="true"><p class="muted">Loading DAGs…</p></div>`);
  $('#dag-paused', main).value = state.paused;

  const go = (patch) => {
    const s = { ...state, ...patch };
    const hash = '#/dags' + q({ search: s.search, tags: s.tag, paused: s.paused, offset: s.offset || null });
    if (hash !== location.hash) location.replace(hash);
  };
  $('#dag-search', main).addEventListener('input', debounce((e) => go({ search: e.target.value.trim(), offset: 0 }), 250));
  $('#dag-tag', main).addEventListener('change', (e) => go({ tag: e.target.value, offset: 0 }));
  $('#dag-paused', main).addEventListener('change', (e) => go({ paused: e.target.value, offset: 0 }));
  $('#dag-filters', main).addEventListener('submit', (e) => e.preventDefault());

  const list = $('#dag-list', main);
  list.addEventListener('click', async (ev) => {
    const sw = ev.target.closest('button[role=switch]');
    if (sw) {
      const id = sw.dataset.dag;
      const paused = sw.getAttribute('aria-checked') === 'true'; // checked = active → pause it
      sw.disabled = true;
      try {
        const d = await api.patch(`/dags/${enc(id)}`, { is_paused: paused });
        setSwitch(sw, !d.is_paused);
        notice(`${id} is ${d.is_paused ? 'paused' : 'active'}`);
      } catch (e) {
        notice(errText(e), true);
      } finally {
        sw.disabled = false;
      }
      return;
    }
    const tag = ev.target.closest('button.tag');
    if (tag) go({ tag: tag.dataset.tag, offset: 0 });
  });

  async function loadErrors() {
    try {
      const r = await api.get('/importErrors?limit=100&order_by=filename');
      if (!alive) return;
      const errs = r.import_errors || [];
      put($('#import-errors', main), errs.length ? h`<section class="banner error" role="alert" aria-label="Import errors">
        <details ${errs.length <= 3 ? 'open' : ''}>
          <summary><strong>${r.total_entries} DAG file${r.total_entries === 1 ? '' : 's'} failed to load</strong> — fix them and gust reloads them on its next pass</summary>
          <ul class="import-errors">${errs.map((e) => h`<li><code>${e.filename}</code> ${time(e.timestamp, true)}<pre>${e.stack_trace}</pre></li>`)}</ul>
        </details></section>` : '');
    } catch (e) {
      put($('#import-errors', main), errBox(e));
    }
  }

  async function loadTags() {
    try {
      const r = await api.get('/dagTags?limit=100&order_by=name');
      if (!alive) return;
      const sel = $('#dag-tag', main);
      const names = r.tags.map((t) => (typeof t === 'string' ? t : t.name));
      if (state.tag && !names.includes(state.tag)) names.push(state.tag);
      put(sel, h`<option value="">All tags</option>${names.map((n) => h`<option>${n}</option>`)}`);
      sel.value = state.tag;
    } catch { /* the filter stays "All tags"; the list shows the error if the API is down */ }
  }

  async function load(pending) {
    list.setAttribute('aria-busy', 'true');
    let r;
    try {
      r = await (pending || fetchDags());
    } catch (e) {
      if (alive) put(list, errBox(e));
      return;
    }
    if (!alive) return;
    dags = r.dags;
    const filtered = state.search || state.tag || state.paused;
    if (!r.total_entries) {
      put(list, filtered ? h`<p class="empty">No DAG matches these filters.</p>` : emptyInstall());
    } else {
      put(list, h`<table class="dags">
        <caption class="sr-only">DAGs ${state.offset + 1} to ${state.offset + dags.length} of ${r.total_entries}</caption>
        <thead><tr><th scope="col">Active</th><th scope="col">DAG</th><th scope="col">Schedule</th>
        <th scope="col">Runs</th><th scope="col">Recent runs</th><th scope="col">Last run</th><th scope="col">Next run</th>
        <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${dags.map(row)}</tbody></table>
        ${pager(r.total_entries, state.offset, LIMIT, (o) => '#/dags' + q({ search: state.search, tags: state.tag, paused: state.paused, offset: o }))}`);
    }
    list.setAttribute('aria-busy', 'false');
    paintedMark('gust:dags:rendered');
    if (dags.length) await loadStats(dags.map((d) => d.dag_id));
    paintedMark('gust:dags:complete');
  }

  // Run counts per state (dagStats) and each DAG's latest runs: the batched run list answers
  // the most recent runs across the page's DAGs, so a second call asks for the DAGs the
  // first one did not reach (busy DAGs crowd out quiet ones).
  async function loadStats(ids) {
    try {
      const [stats, runs] = await Promise.all([
        api.get('/dagStats' + q({ dag_ids: ids })),
        recentRuns(ids),
      ]);
      if (!alive) return;
      const byDag = new Map(stats.dags.map((s) => [s.dag_id, s.stats]));
      for (const id of ids) {
        const tr = list.querySelector(`tr[data-dag="${CSS.escape(id)}"]`);
        if (!tr) continue;
        const st = byDag.get(id) || [];
        put(tr.querySelector('.c-stats'), statsCell(id, st));
        const rs = runs.get(id) || [];
        put(tr.querySelector('.c-recent'), recentCell(id, rs));
        put(tr.querySelector('.c-last'), rs.length ? h`${badge(rs[0].state)} ${time(rs[0].run_after, true)}` : h`<span class="muted">never</span>`);
      }
    } catch (e) {
      notice('run statistics: ' + errText(e), true);
    }
  }

  async function recentRuns(ids) {
    const out = new Map();
    let want = ids;
    for (let pass = 0; pass < 3 && want.length; pass++) {
      const r = await api.post('/dags/~/dagRuns/list', { dag_ids: want, order_by: '-run_after', page_limit: 100 });
      for (const run of r.dag_runs) {
        const l = out.get(run.dag_id) || [];
        if (l.length < 5) l.push(run);
        out.set(run.dag_id, l);
      }
      if (r.dag_runs.length < 100) break; // every run of these DAGs was seen
      want = want.filter((id) => !out.has(id));
    }
    return out;
  }

  const refreshStats = (() => {
    const pending = new Set();
    const flush = debounce(() => {
      const ids = [...pending];
      pending.clear();
      if (alive && ids.length) loadStats(ids);
    }, 300);
    return (id) => { pending.add(id); flush(); };
  })();

  const unsubscribe = api.onEvent((ev) => {
    if (ev.type === 'dag_run' && dags.some((d) => d.dag_id === ev.dag_id)) refreshStats(ev.dag_id);
  });

  // the banner and the tag filter after the list: on a busy server they would slow it down
  const rest = () => { loadErrors(); loadTags(); };
  first.then(rest, rest);
  await load(first);

  return {
    update(r) {
      const next = read(r);
      if (JSON.stringify(next) === JSON.stringify(state)) return true;
      state = next;
      if ($('#dag-search', main).value.trim() !== state.search) $('#dag-search', main).value = state.search;
      $('#dag-tag', main).value = state.tag;
      $('#dag-paused', main).value = state.paused;
      load();
      return true;
    },
    destroy() {
      alive = false;
      unsubscribe();
    },
  };
}

function read(route) {
  const p = route.params;
  return {
    search: p.get('search') || '',
    tag: p.get('tags') || '',
    paused: p.get('paused') || '',
    offset: Math.max(0, parseInt(p.get('offset') || '0', 10) || 0),
  };
}

function setSwitch(sw, active) {
  sw.setAttribute('aria-checked', String(active));
  sw.querySelector('.sw-text').textContent = active ? 'On' : 'Off';
}

function row(d) {
  const id = d.dag_id;
  const href = `#/dags/${enc(id)}`;
  const tags = (d.tags || []).map((t) => (typeof t === 'string' ? t : t.name));
  return h`<tr data-dag="${id}" class="${d.is_paused ? 'paused' : ''}">
    <td>${api.can('User')
      ? h`<button type="button" role="switch" class="switch" aria-checked="${String(!d.is_paused)}" data-dag="${id}" aria-label="${id} active"><span class="sw-text">${d.is_paused ? 'Off' : 'On'}</span></button>`
      : h`<span class="muted">${d.is_paused ? 'paused' : 'active'}</span>`}</td>
    <td class="c-dag"><a href="${href}" class="dag-link">${d.dag_display_name || id}</a>
      ${d.description ? h`<div class="muted small">${d.description}</div>` : ''}
      ${tags.length ? h`<div class="tags">${tags.map((t) => h`<button type="button" class="tag" data-tag="${t}" title="Show DAGs tagged ${t}">${t}</button>`)}</div>` : ''}
      ${d.has_import_errors ? h`<div class="error small">its file has an import error</div>` : ''}</td>
    <td><code class="small">${d.timetable_summary || 'None'}</code></td>
    <td class="c-stats"><span class="muted">…</span></td>
    <td class="c-recent"></td>
    <td class="c-last"></td>
    <td>${d.is_paused ? h`<span class="muted">paused</span>` : time(d.next_dagrun_run_after || d.next_dagrun_logical_date, true)}</td>
    <td>${api.can('User') ? h`<a class="button" href="${href}/trigger" aria-label="Trigger ${id}">Trigger</a>` : ''}</td>
  </tr>`;
}

function statsCell(id, stats) {
  const n = Object.fromEntries(stats.map((s) => [s.state, s.count]));
  const parts = RUN_STATES.filter((s) => n[s]);
  if (!parts.length) return h`<span class="muted">no runs</span>`;
  return h`<span class="counts">${parts.map((s) => h`<a class="count st st-${s}" href="#/runs${q({ dag_id: id, state: s })}" title="${n[s]} ${s} runs of ${id}">${n[s]}<span class="sr-only"> ${s}</span></a>`)}</span>`;
}

function recentCell(id, runs) {
  if (!runs.length) return '';
  // oldest first, like the grid's columns
  return h`<span class="recent">${runs.slice().reverse().map((r) => h`<a class="dot st-${r.state || 'none'}" href="#/dags/${enc(id)}/grid${q({ run: r.dag_run_id })}" title="${r.dag_run_id}: ${r.state}"><span class="sr-only">${r.dag_run_id}: ${r.state}</span></a>`)}</span>`;
}

export function emptyInstall() {
  return h`<section class="empty-install">
    <h2>No DAGs yet</h2>
    <p>gust reads DAG files (YAML or JSON, the dag-factory dialect) from its DAGs folder: the
    <code>core.dags_folder</code> setting, <code>$GUST_HOME/dags</code> unless you changed it.
    Drop a file there and it appears here within a few seconds.</p>
    <pre>hello:
  schedule: "@daily"
  tasks:
    - task_id: say_hello
      operator: bash
      bash_command: "echo hello from gust"</pre>
    <p>Then trigger its first run with its <strong>Trigger</strong> button, or from a shell:
    <code>gust dags trigger hello</code>. Check a file without loading it: <code>gust dags validate FILE</code>.</p>
  </section>`;
}
