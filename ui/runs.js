// runs — DAG runs, newest first, across every DAG (#/runs) or one (the DAG page's Runs view),
// filtered by state and paged by 50; refreshed from the event stream when a run changes.
import * as api from './api.js';
import { h, put, $, time, duration, badge, errBox, debounce, q, enc, pager, RUN_STATES } from './util.js';

const LIMIT = 50;

// Render the list into el; returns a function that reloads it.
export async function runsTable(el, { dagId, params }) {
  const state = params.get('state') || '';
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  const onDag = !!dagId;
  const filterDag = onDag ? dagId : params.get('dag_id') || '';
  const here = (patch) => {
    const p = { dag_id: onDag ? null : filterDag, state, offset: offset || null, ...patch };
    return (onDag ? `#/dags/${enc(dagId)}/runs` : '#/runs') + q(p);
  };
  put(el, h`<form class="filters" id="runs-filters">
      ${onDag ? '' : h`<label for="runs-dag">DAG id</label><input id="runs-dag" value="${filterDag}" placeholder="all DAGs">`}
      <label for="runs-state">State</label>
      <select id="runs-state"><option value="">Any</option>${RUN_STATES.map((s) => h`<option ${s === state ? 'selected' : ''}>${s}</option>`)}</select>
    </form><div id="runs-list" aria-busy="true"><p class="muted">Loading runs…</p></div>`);
  const form = $('#runs-filters', el);
  form.addEventListener('submit', (e) => e.preventDefault());
  $('#runs-state', el).addEventListener('change', (e) => location.replace(here({ state: e.target.value, offset: null })));
  $('#runs-dag', el)?.addEventListener('input', debounce((e) => location.replace(here({ dag_id: e.target.value.trim(), offset: null })), 400));
  const list = $('#runs-list', el);
  const load = async () => {
    try {
      const r = await api.get(`/dags/${filterDag ? enc(filterDag) : '~'}/dagRuns` + q({ limit: LIMIT, offset, order_by: '-run_after', state: state || null }));
      if (!list.isConnected) return;
      put(list, r.total_entries ? h`<table class="list runs">
        <thead><tr>${onDag ? '' : h`<th scope="col">DAG</th>`}<th scope="col">Run</th><th scope="col">State</th><th scope="col">Type</th>
        <th scope="col">Run after</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col">Duration</th></tr></thead>
        <tbody>${r.dag_runs.map((x) => h`<tr>
          ${onDag ? '' : h`<td><a href="#/dags/${enc(x.dag_id)}">${x.dag_id}</a></td>`}
          <td><a href="#/dags/${enc(x.dag_id)}/grid?run=${enc(x.dag_run_id)}">${x.dag_run_id}</a></td>
          <td>${badge(x.state)}</td><td>${x.run_type}</td><td>${time(x.run_after)}</td>
          <td>${time(x.start_date)}</td><td>${time(x.end_date)}</td><td>${x.duration != null ? duration(x.duration) : ''}</td></tr>`)}</tbody></table>
        ${pager(r.total_entries, offset, LIMIT, (o) => here({ offset: o || null }))}`
        : h`<p class="empty">No runs${state ? ` in state ${state}` : ''}${filterDag ? ` of ${filterDag}` : ''} yet.</p>`);
      list.setAttribute('aria-busy', 'false');
    } catch (e) {
      if (list.isConnected) put(list, errBox(e));
    }
  };
  await load();
  return load;
}

export async function mount(main, route) {
  document.title = 'Runs · gust';
  put(main, h`<div class="head"><h1>DAG runs</h1></div><div id="runs-body"></div>`);
  const body = $('#runs-body', main);
  let reload = await runsTable(body, { dagId: null, params: route.params });
  const later = debounce(() => reload(), 500);
  const unsubscribe = api.onEvent((ev) => { if (ev.type === 'dag_run') later(); });
  return {
    update(r) {
      const focusId = document.activeElement?.id;
      runsTable(body, { dagId: null, params: r.params }).then((fn) => {
        reload = fn;
        if (focusId) document.getElementById(focusId)?.focus();
      });
      return true;
    },
    destroy() { unsubscribe(); },
  };
}
