// dag — one DAG: header (pause, trigger), views (grid, graph, Gantt, runs, details) and the
// task-instance panel. The page keeps one model (tasks in drawing order, the latest runs and
// their task instances) that every view reads, and keeps it current from the event stream:
// a task instance's change recolours one grid cell or graph node, a new run is fetched and
// added. The URL holds what is selected (?run=&task=&try=), so it can be shared and the
// browser's back button works; changing it does not reload the page's data.
//
// The runs and their instances come from gust's grid endpoint (GET /api/v2/gust/dags/{id}/grid):
// one request with each instance's state and try number only. Through the Airflow endpoints a
// 100 runs x 100 tasks grid took 103 pages of full task instances (~10 MB) and most of a
// second; the Gantt chart, which needs an instance's dates, fetches them for its one run.
import * as api from './api.js';
import { h, put, $, time, errBox, errText, notice, debounce, enc, q, pretty, paintedMark } from './util.js';
import { Grid } from './grid.js';
import { Panel } from './ti.js';
import { groupsOf } from './graph.js';

const VIEWS = ['grid', 'graph', 'gantt', 'runs', 'details'];
const RUN_CHOICES = [25, 50, 100, 365];

export async function mount(main, route) {
  const dagId = route.parts[0];
  const base = `#/dags/${enc(dagId)}`;
  let view = route.parts[1] || 'grid';
  let sel = selOf(route);
  let nRuns = runsOf(route);
  let alive = true;
  document.title = `${dagId} · gust`;

  put(main, h`<div class="head"><h1 class="dag-title">${dagId}</h1><span id="dag-switch"></span><span id="dag-actions"></span></div>
    <p id="dag-meta" class="muted"></p>
    <nav class="tabs" aria-label="DAG views">${VIEWS.map((v) => h`<a href="${base}/${v}" data-view="${v}">${v === 'gantt' ? 'Gantt' : v[0].toUpperCase() + v.slice(1)}</a>`)}</nav>
    <div class="dag-body"><section id="view" aria-live="off"><p class="muted">Loading…</p></section>
    <aside id="panel" class="panel" hidden aria-label="Details"></aside></div>`);
  const viewEl = $('#view', main);
  let refocusGrid = false; // closing the panel returns the keyboard to the grid cell
  const panel = new Panel($('#panel', main), dagId, () => {
    refocusGrid = view === 'grid';
    go({ task: null, run: view === 'grid' ? null : sel.run, try: null });
  });

  // ---- model ---------------------------------------------------------------------------------
  const model = { dagId, dag: null, tasks: [], runs: [], tis: new Map() };
  let grid = null;

  function go(patch, replace = false, runs = nRuns) {
    const s = { ...sel, ...patch };
    const hash = `${base}/${view}` + q({ run: s.run, task: s.task, try: s.try, runs: runs !== 25 ? runs : null });
    if (hash === location.hash) return;
    if (replace) location.replace(hash); else location.hash = hash;
  }

  // The latest runs (oldest first in the model) and, per run, task id -> {state, try_number}
  // of its instances (a task the run has no instance of is left out).
  const fullRuns = new Set(); // runs whose model.tis holds full TaskInstanceResponses (Gantt)
  const fetchGrid = () => api.get(`/gust/dags/${enc(dagId)}/grid` + q({ limit: Math.min(nRuns, 365) }));
  function setGrid(g) {
    model.runs = g.dag_runs.slice().reverse();
    model.tis = new Map();
    fullRuns.clear();
    for (const r of model.runs) {
      const id = r.dag_run_id, states = g.states[id] || [], tries = g.try_numbers[id] || [];
      const m = new Map();
      g.task_ids.forEach((t, i) => { if (tries[i] != null) m.set(t, { task_id: t, dag_run_id: id, state: states[i], try_number: tries[i] }); });
      model.tis.set(id, m);
    }
  }

  async function loadRuns() {
    setGrid(await fetchGrid());
  }

  async function loadAll() {
    const [dag, tasks] = await Promise.all([
      api.get(`/dags/${enc(dagId)}/details`),
      api.get(`/dags/${enc(dagId)}/tasks`),
      loadRuns(),
    ]);
    model.dag = dag;
    model.tasks = orderTasks(tasks.tasks);
  }

  function header() {
    const d = model.dag;
    const may = api.can('User');
    put($('#dag-switch', main), may
      ? h`<button type="button" role="switch" class="switch" id="pause-switch" aria-checked="${String(!d.is_paused)}" aria-label="${dagId} active"><span class="sw-text">${d.is_paused ? 'Off' : 'On'}</span></button>`
      : h`<span class="muted">${d.is_paused ? 'paused' : 'active'}</span>`);
    put($('#dag-actions', main), may ? h`<a class="button primary" href="${base}/trigger">Trigger</a>` : '');
    const tags = (d.tags || []).map((t) => (typeof t === 'string' ? t : t.name));
    put($('#dag-meta', main), h`${d.description ? h`${d.description} · ` : ''}schedule <code>${d.timetable_summary || 'None'}</code>
      ${d.is_paused ? ' · paused' : h` · next run ${time(d.next_dagrun_run_after || d.next_dagrun_logical_date)}`}
      ${d.owners?.length ? ` · owner ${d.owners.join(', ')}` : ''}
      ${tags.length ? h` · tags ${tags.map((t) => h`<a class="tag" href="#/dags?tags=${enc(t)}">${t}</a> `)}` : ''}`);
  }

  main.addEventListener('click', async (e) => {
    const sw = e.target.closest('#pause-switch');
    if (!sw) return;
    sw.disabled = true;
    try {
      model.dag = { ...model.dag, ...(await api.patch(`/dags/${enc(dagId)}`, { is_paused: !model.dag.is_paused })) };
      header();
      notice(`${dagId} is ${model.dag.is_paused ? 'paused' : 'active'}`);
      $('#pause-switch', main)?.focus();
    } catch (err) {
      notice(errText(err), true);
      sw.disabled = false;
    }
  });

  // ---- views ---------------------------------------------------------------------------------
  function tabs() {
    for (const a of main.querySelectorAll('.tabs a')) {
      const v = a.dataset.view;
      a.href = `${base}/${v}` + q({ run: v === 'grid' || v === 'graph' || v === 'gantt' ? sel.run : null, runs: nRuns !== 25 ? nRuns : null });
      if (v === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }

  const selectedRun = () => sel.run || model.runs[model.runs.length - 1]?.dag_run_id || null;
  const tiHref = (run) => (task) => `${base}/${view}` + q({ run, task });

  function runPicker(run) {
    if (!model.runs.length) return '';
    return h`<label for="run-pick">Run</label> <select id="run-pick">${model.runs.slice().reverse().map((r) => h`<option value="${r.dag_run_id}" ${r.dag_run_id === run ? 'selected' : ''}>${r.dag_run_id} — ${r.state}</option>`)}</select>`;
  }

  async function renderView() {
    tabs();
    const run = selectedRun();
    if (view === 'grid') {
      const emptyTasks = !model.tasks.length;
      put(viewEl, h`<div class="view-bar"><label for="grid-runs">Runs shown</label>
        <select id="grid-runs">${RUN_CHOICES.map((n) => h`<option ${n === nRuns ? 'selected' : ''}>${n}</option>`)}</select>
        <span class="legend" aria-hidden="true">${['success', 'running', 'failed', 'queued', 'up_for_retry', 'upstream_failed', 'skipped', 'none'].map((s) => h`<span class="lg"><span class="dot st-${s}"></span>${s === 'none' ? 'no status' : s.replace(/_/g, ' ')}</span>`)}</span></div>
        <div id="grid-box"></div>`);
      grid = new Grid($('#grid-box', viewEl), model, ({ run: r, task }) => go({ run: r, task, try: null }));
      grid.sel = { run: sel.run, task: sel.task };
      grid.render();
      if (!emptyTasks) paintedMark('gust:grid:rendered');
    } else if (view === 'graph') {
      grid = null;
      const { renderGraph } = await import('./graph.js');
      if (!alive) return;
      put(viewEl, h`<div class="view-bar">${runPicker(run)}</div><div id="graph-box"></div>`);
      const tis = model.tis.get(run);
      renderGraph($('#graph-box', viewEl), model.tasks, (t) => (tis ? (tis.get(t)?.state ?? undefined) : undefined), tiHref(run), sel.task);
    } else if (view === 'gantt') {
      grid = null;
      const { renderGantt } = await import('./gantt.js');
      // the chart needs the instances' dates, which the grid's data leaves out
      if (run && model.tis.has(run) && !fullRuns.has(run)) {
        try {
          await fetching_(async () => {
            model.tis.set(run, await fetchRunTis(run));
            fullRuns.add(run);
            applyRecent();
          });
        } catch (e) {
          if (alive) put(viewEl, errBox(e));
          return;
        }
      }
      if (!alive) return;
      put(viewEl, h`<div class="view-bar">${runPicker(run)}</div><div id="gantt-box"></div>`);
      renderGantt($('#gantt-box', viewEl), model.tasks, model.tis.get(run), tiHref(run), viewEl.clientWidth - 20);
    } else if (view === 'runs') {
      grid = null;
      const { runsTable } = await import('./runs.js');
      if (!alive) return;
      await runsTable(viewEl, { dagId, params: new URLSearchParams(location.hash.split('?')[1] || '') });
    } else if (view === 'details') {
      grid = null;
      put(viewEl, details(model.dag, model.tasks));
    }
  }

  viewEl.addEventListener('change', (e) => {
    if (e.target.id === 'run-pick') go({ run: e.target.value, task: null, try: null });
    if (e.target.id === 'grid-runs') go({}, false, +e.target.value);
  });

  function showPanel(focus) {
    if (sel.task && sel.run) panel.show(sel.run, sel.task, sel.try, focus);
    else if (sel.run && view === 'grid') panel.show(sel.run, null, null, focus);
    else panel.hide();
  }

  // ---- live updates --------------------------------------------------------------------------
  // The rule that keeps the model right: the stream delivers every change in order, so the
  // last event seen for a task instance is its newest state. Data fetched while events arrive
  // may be older than those events: events received during a fetch are kept (`recent`) and
  // win over what the fetch answers. Events that come before the first load are replayed
  // after it. A stream that opens after a fetch was answered may have missed changes in
  // between: then the unfinished runs are fetched again (resync).
  const recent = new Map(); // "run\0task" (task '' for the run) -> latest event, while fetching
  let fetching = 0;
  const early = [];
  let resyncWanted = false;
  const keyOf = (ev) => ev.run_id + '\u0000' + (ev.type === 'dag_run' ? '' : ev.task_id);
  async function fetching_(fn) {
    fetching++;
    try { return await fn(); } finally { if (--fetching === 0) recent.clear(); }
  }
  // Apply the events received during a fetch to what it answered.
  function applyRecent() {
    for (const ev of recent.values()) {
      if (ev.type === 'dag_run') {
        const run = model.runs.find((r) => r.dag_run_id === ev.run_id);
        if (run) run.state = ev.state;
      } else {
        const ti = model.tis.get(ev.run_id)?.get(ev.task_id);
        if (ti) { ti.state = ev.state; if (ev.try_number != null) ti.try_number = ev.try_number; }
      }
    }
  }

  async function fetchRunTis(runId) {
    const u = (off) => `/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances` + q({ limit: 100, offset: off || null });
    const first = await api.get(u(0));
    const list = first.task_instances;
    for (let off = 100; off < first.total_entries; off += 100) list.push(...(await api.get(u(off))).task_instances);
    return new Map(list.map((t) => [t.task_id, t]));
  }

  // The runs shown and their instances, again (one grid request).
  const resync = debounce(() => fetching_(async () => {
    if (!alive) return;
    try {
      setGrid(await fetchGrid());
      applyRecent();
      if (alive && (view === 'grid' || view === 'graph' || view === 'gantt')) {
        const focused = document.activeElement && viewEl.contains(document.activeElement);
        await renderView();
        if (focused && grid?.focus) grid.setFocus(...grid.focus);
      }
    } catch (e) {
      notice('refreshing runs: ' + errText(e), true);
    }
  }), 200);

  const refreshGantt = debounce((runId) => fetching_(async () => {
    if (!alive || view !== 'gantt' || selectedRun() !== runId) return;
    try {
      model.tis.set(runId, await fetchRunTis(runId));
      fullRuns.add(runId);
      applyRecent();
      if (alive && view === 'gantt') renderView();
    } catch { /* the next event retries */ }
  }), 400);

  async function apply(ev) {
    if (ev.type === 'open') {
      if (!ev.resumed) resync();
      return;
    }
    if (ev.dag_id !== dagId) return;
    if (fetching) recent.set(keyOf(ev), ev);
    panel.onEvent(ev);
    if (ev.type === 'dag_run') {
      const run = model.runs.find((r) => r.dag_run_id === ev.run_id);
      if (!run) { resync(); return; }
      run.state = ev.state;
      if (grid) grid.updateRun(run);
      if (ev.state === 'success' || ev.state === 'failed') {
        // start/end dates for the bar heights
        api.get(`/dags/${enc(dagId)}/dagRuns/${enc(ev.run_id)}`).then((r) => { Object.assign(run, r, { state: run.state }); grid?.updateRun(run); }).catch(() => {});
      }
      return;
    }
    const tis = model.tis.get(ev.run_id);
    if (!tis) { resync(); return; }
    const ti = tis.get(ev.task_id) || { task_id: ev.task_id, dag_run_id: ev.run_id };
    ti.state = ev.state;
    if (ev.try_number != null) ti.try_number = ev.try_number;
    tis.set(ev.task_id, ti);
    if (grid) grid.updateTi(ev.run_id, ev.task_id, ev.state);
    if (view === 'graph' && selectedRun() === ev.run_id) {
      const { updateNode } = await import('./graph.js');
      updateNode(viewEl, ev.task_id, ev.state);
    }
    if (view === 'gantt') refreshGantt(ev.run_id);
  }

  const unsubscribe = api.onEvent((ev) => {
    if (!model.dag) {
      // first load still running: keep what matters for after it
      if (ev.type === 'open') resyncWanted = resyncWanted || !ev.resumed;
      else if (ev.dag_id === dagId) early.push(ev);
      return;
    }
    apply(ev);
  });

  // ---- first load ----------------------------------------------------------------------------
  try {
    await fetching_(async () => {
      await loadAll();
      // what changed while loading: newer than what the load answered
      for (const ev of early) recent.set(keyOf(ev), ev);
      applyRecent();
    });
  } catch (e) {
    put(viewEl, errBox(e));
    put($('#dag-meta', main), '');
    return { destroy() { alive = false; unsubscribe(); panel.destroy(); } };
  }
  if (!alive) return {};
  performance.mark('gust:dag:data'); // the benchmark splits fetching from drawing here
  header();
  await renderView();
  showPanel(false);
  // runs that appeared during the load, or a stream that opened after it fetched
  if (resyncWanted || early.some((ev) => !model.runs.some((r) => r.dag_run_id === ev.run_id))) resync();

  return {
    update(r) {
      const prev = { view, sel, nRuns };
      view = r.parts[1] || 'grid';
      sel = selOf(r);
      const nextRuns = runsOf(r);
      const selChanged = sel.run !== prev.sel.run || sel.task !== prev.sel.task || sel.try !== prev.sel.try;
      if (nextRuns !== nRuns) {
        nRuns = nextRuns;
        loadRuns().then(() => alive && renderView()).catch((e) => put(viewEl, errBox(e)));
      } else if (view !== prev.view || view === 'runs' || (view !== 'grid' && selChanged)) {
        renderView();
      } else if (grid) {
        grid.applySel(sel, refocusGrid);
        tabs();
      }
      refocusGrid = false;
      showPanel(selChanged && !!(sel.task || sel.run));
      return true;
    },
    destroy() {
      alive = false;
      unsubscribe();
      panel.destroy();
    },
  };
}

function selOf(route) {
  const p = route.params;
  const t = parseInt(p.get('try') || '', 10);
  return { run: p.get('run') || null, task: p.get('task') || null, try: t > 0 ? t : null };
}

function runsOf(route) {
  const n = parseInt(route.params.get('runs') || '25', 10);
  return n > 0 && n <= 1000 ? n : 25;
}

// Tasks in drawing order: upstream first (topological, ties by id), members of a task group
// next to each other (the group takes the place of its first member).
export function orderTasks(tasks) {
  const byId = new Map(tasks.map((t) => [t.task_id, t]));
  const indeg = new Map(tasks.map((t) => [t.task_id, 0]));
  for (const t of tasks) for (const d of t.downstream_task_ids || []) if (indeg.has(d)) indeg.set(d, indeg.get(d) + 1);
  const ready = tasks.filter((t) => !indeg.get(t.task_id)).map((t) => t.task_id).sort();
  const topo = [];
  while (ready.length) {
    const id = ready.shift();
    topo.push(id);
    const next = [];
    for (const d of byId.get(id).downstream_task_ids || []) {
      if (!indeg.has(d)) continue;
      indeg.set(d, indeg.get(d) - 1);
      if (!indeg.get(d)) next.push(d);
    }
    ready.push(...next.sort());
  }
  for (const t of tasks) if (!topo.includes(t.task_id)) topo.push(t.task_id);
  const rank = new Map(topo.map((id, i) => [id, i]));
  const first = new Map(); // group -> rank of its first member
  for (const id of topo) for (const g of groupsOf(byId.get(id))) if (!first.has(g)) first.set(g, rank.get(id));
  const key = (t) => [...groupsOf(t).map((g) => first.get(g)), rank.get(t.task_id)];
  const sorted = tasks.slice().sort((a, b) => {
    const ka = key(a), kb = key(b);
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return ka.length - kb.length;
  });
  return sorted.map((t) => {
    const gs = groupsOf(t);
    const g = gs[gs.length - 1];
    const label = g && t.task_id.startsWith(g + '.') ? t.task_id.slice(g.length + 1) : t.task_id;
    return { ...t, label, prefix: g ? g + ' › ' : '', depth: gs.length };
  });
}

function details(d, tasks) {
  const params = d.params || {};
  return h`<div class="details">
    <dl class="kv">
      <dt>DAG id</dt><dd>${d.dag_id}</dd>
      <dt>File</dt><dd><code>${d.relative_fileloc || d.fileloc}</code></dd>
      <dt>Schedule</dt><dd><code>${d.timetable_summary || 'None'}</code> ${d.timetable_description || ''}</dd>
      <dt>Timezone</dt><dd>${d.timezone || 'UTC'}</dd>
      <dt>Start date</dt><dd>${time(d.start_date)}</dd>
      <dt>End date</dt><dd>${time(d.end_date)}</dd>
      <dt>Catchup</dt><dd>${String(d.catchup)}</dd>
      <dt>Max active runs</dt><dd>${d.max_active_runs ?? ''}</dd>
      <dt>Max active tasks</dt><dd>${d.max_active_tasks}</dd>
      <dt>Owners</dt><dd>${(d.owners || []).join(', ')}</dd>
      <dt>Last parsed</dt><dd>${time(d.last_parsed_time || d.last_parsed)}</dd>
    </dl>
    ${d.doc_md ? h`<h2>Documentation</h2><pre class="doc">${d.doc_md}</pre>` : ''}
    <h2>Params</h2>${Object.keys(params).length ? h`<pre>${pretty(params)}</pre>` : h`<p class="muted">None.</p>`}
    <h2>Default args</h2>${d.default_args && Object.keys(d.default_args).length ? h`<pre>${pretty(d.default_args)}</pre>` : h`<p class="muted">None.</p>`}
    <h2>Tasks</h2>
    <table class="list"><thead><tr><th scope="col">Task</th><th scope="col">Operator</th><th scope="col">Trigger rule</th><th scope="col">Retries</th><th scope="col">Downstream</th></tr></thead>
    <tbody>${tasks.map((t) => h`<tr><td>${t.task_id}</td><td>${t.operator_name || ''}</td><td>${t.trigger_rule || ''}</td><td>${t.retries ?? ''}</td><td>${(t.downstream_task_ids || []).join(', ')}</td></tr>`)}</tbody></table>
  </div>`;
}

