// admin — the operational pages: workers and rate limits (gust-only endpoints), pools,
// variables and connections (listed for everyone; created, edited and deleted by Op and
// Admin), and the audit log (eventLogs). One small list-and-form helper serves the three
// editable resources; the server checks every change again and its message is shown as is.
import * as api from './api.js';
import { h, put, $, time, errBox, errText, notice, debounce, q, enc, pager, pretty } from './util.js';

const LIMIT = 100;

const RESOURCES = {
  pools: {
    title: 'Pools', noun: 'pool', path: '/pools', list: 'pools', key: 'name',
    intro: 'A pool caps how many task instances run at once across every DAG that uses it.',
    columns: [['name', 'Name'], ['slots', 'Slots'], ['running_slots', 'Running'], ['queued_slots', 'Queued'], ['scheduled_slots', 'Scheduled'], ['open_slots', 'Open'], ['description', 'Description']],
    fields: [['name', 'Name', 'text', true], ['slots', 'Slots (-1 = unlimited)', 'int'], ['description', 'Description', 'text'], ['include_deferred', 'Count deferred tasks', 'bool']],
  },
  variables: {
    title: 'Variables', noun: 'variable', path: '/variables', list: 'variables', key: 'key', search: 'variable_key_pattern',
    intro: 'Variables are read by templates as {{ var.value.NAME }}. Values of keys that look secret are masked.',
    columns: [['key', 'Key'], ['value', 'Value'], ['description', 'Description'], ['is_encrypted', 'Encrypted']],
    fields: [['key', 'Key', 'text', true], ['value', 'Value', 'area'], ['description', 'Description', 'text']],
  },
  connections: {
    title: 'Connections', noun: 'connection', path: '/connections', list: 'connections', key: 'connection_id', search: 'connection_id_pattern',
    intro: 'Connections are encrypted at rest; their passwords are never sent back.',
    columns: [['connection_id', 'Id'], ['conn_type', 'Type'], ['host', 'Host'], ['port', 'Port'], ['login', 'Login'], ['schema', 'Schema'], ['description', 'Description']],
    fields: [['connection_id', 'Connection id', 'text', true], ['conn_type', 'Type', 'text'], ['host', 'Host', 'text'], ['port', 'Port', 'int'],
      ['login', 'Login', 'text'], ['password', 'Password (left empty: unchanged)', 'password'], ['schema', 'Schema', 'text'], ['extra', 'Extra (JSON)', 'area'], ['description', 'Description', 'text']],
  },
};

export async function mount(main, route) {
  const page = route.parts[0];
  if (page === 'workers') return workers(main);
  if (page === 'audit') return audit(main, route);
  return resource(main, route, RESOURCES[page]);
}

// ---- workers and rate limits ------------------------------------------------------------------
function table(rows, label) {
  if (!rows.length) return h`<p class="muted">None.</p>`;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (k, v) => {
    if (v == null) return '';
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return time(v);
    if (typeof v === 'object') return h`<code>${JSON.stringify(v)}</code>`;
    return String(v);
  };
  return h`<table class="list" aria-label="${label}"><thead><tr>${cols.map((c) => h`<th scope="col">${c.replace(/_/g, ' ')}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => h`<tr>${cols.map((c) => h`<td>${cell(c, r[c])}</td>`)}</tr>`)}</tbody></table>`;
}

async function workers(main) {
  document.title = 'Workers · gust';
  put(main, h`<div class="head"><h1>Workers</h1><button type="button" id="workers-reload">Refresh</button></div>
    <p class="muted">Workers that sent a heartbeat recently, and the global rate limits they honour.</p>
    <section id="workers"><p class="muted">Loading…</p></section><h2>Rate limits</h2><section id="ratelimits"></section>`);
  const load = async () => {
    const [w, rl] = await Promise.allSettled([api.get('/gust/workers'), api.get('/gust/ratelimits')]);
    if (!main.isConnected) return;
    if (w.status === 'fulfilled') {
      const list = Array.isArray(w.value) ? w.value : w.value.workers || [];
      put($('#workers', main), h`${w.value.source ? h`<p class="muted small">Source: ${w.value.source}</p>` : ''}${list.length ? table(list, 'Workers') : h`<p class="empty">No live worker. Start one with <code>gust worker</code> (gust standalone runs its own).</p>`}`);
    } else put($('#workers', main), errBox(w.reason));
    if (rl.status === 'fulfilled') {
      const list = Array.isArray(rl.value) ? rl.value : rl.value.ratelimits || rl.value.rate_limits || rl.value.limits || [];
      put($('#ratelimits', main), list.length ? table(list, 'Rate limits') : h`<p class="muted">No global rate limit is set (<code>gust ratelimits set NAME 100/m</code>).</p>`);
    } else put($('#ratelimits', main), errBox(rl.reason));
  };
  $('#workers-reload', main).addEventListener('click', load);
  await load();
  const timer = setInterval(load, 10000); // heartbeats are not in the event stream
  return { destroy() { clearInterval(timer); } };
}

// ---- pools, variables, connections -------------------------------------------------------------
async function resource(main, route, R) {
  document.title = `${R.title} · gust`;
  const may = api.can('Op');
  let offset = Math.max(0, parseInt(route.params.get('offset') || '0', 10) || 0);
  let search = route.params.get('search') || '';
  put(main, h`<div class="head"><h1>${R.title}</h1>${may ? h`<button type="button" class="primary" id="res-new">New ${R.noun}</button>` : ''}</div>
    <p class="muted">${R.intro}</p>
    ${R.search ? h`<form class="filters" id="res-filter" role="search"><label for="res-search">Search</label><input id="res-search" type="search" value="${search}"></form>` : ''}
    <section id="res-form-box"></section>
    <div id="res-list" aria-busy="true"><p class="muted">Loading…</p></div>`);
  const list = $('#res-list', main), formBox = $('#res-form-box', main);
  let rows = [];

  async function load() {
    try {
      const r = await api.get(R.path + q({ limit: LIMIT, offset, [R.search || '_']: R.search && search ? `%${search}%` : null }));
      rows = r[R.list];
      put(list, rows.length ? h`<table class="list">
        <thead><tr>${R.columns.map(([, l]) => h`<th scope="col">${l}</th>`)}${may ? h`<th scope="col"><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
        <tbody>${rows.map((x, i) => h`<tr>${R.columns.map(([k]) => h`<td>${k === 'value' ? h`<code class="val">${x[k]}</code>` : x[k] == null ? '' : String(x[k])}</td>`)}
          ${may ? h`<td class="row-actions"><button type="button" data-edit="${i}" aria-label="Edit ${x[R.key]}">Edit</button>
            <button type="button" class="bad" data-del="${i}" aria-label="Delete ${x[R.key]}">Delete</button></td>` : ''}</tr>`)}</tbody></table>
        ${pager(r.total_entries, offset, LIMIT, (o) => `#/${route.parts[0]}` + q({ search, offset: o || null }))}`
        : h`<p class="empty">No ${R.noun} yet.${may ? ` Use “New ${R.noun}” to add one.` : ''}</p>`);
      list.setAttribute('aria-busy', 'false');
    } catch (e) {
      put(list, errBox(e));
    }
  }

  function showForm(row) {
    const editing = !!row;
    put(formBox, h`<form class="form card" id="res-form" novalidate>
      <h2>${editing ? `Edit ${R.noun} ${row[R.key]}` : `New ${R.noun}`}</h2>
      ${R.fields.map(([k, label, type, isKey]) => {
        const id = `f-${k}`;
        const v = row ? row[k] : undefined;
        const ro = editing && isKey;
        if (type === 'bool') return h`<div class="field check"><input type="checkbox" id="${id}" name="${k}" ${v ? 'checked' : ''}><label for="${id}">${label}</label></div>`;
        if (type === 'area') return h`<div class="field"><label for="${id}">${label}</label><textarea id="${id}" name="${k}" rows="3">${v == null ? '' : typeof v === 'string' ? v : pretty(v)}</textarea></div>`;
        return h`<div class="field"><label for="${id}">${label}</label><input id="${id}" name="${k}" type="${type === 'int' ? 'number' : type === 'password' ? 'password' : 'text'}" ${type === 'password' ? 'autocomplete="new-password"' : ''} value="${v == null || type === 'password' ? '' : v}" ${ro ? 'readonly' : ''}></div>`;
      })}
      <div id="res-error" role="alert"></div>
      <button type="submit" class="primary">${editing ? 'Save' : 'Create'}</button> <button type="button" id="res-cancel">Cancel</button>
    </form>`);
    const form = $('#res-form', formBox);
    form.querySelector('input:not([readonly]), textarea')?.focus();
    $('#res-cancel', form).addEventListener('click', () => { put(formBox, ''); $('#res-new', main)?.focus(); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {}, mask = [];
      for (const [k, , type, isKey] of R.fields) {
        const el = form.elements[k];
        let v;
        if (type === 'bool') v = el.checked;
        else if (type === 'int') v = el.value === '' ? null : Number(el.value);
        else v = el.value === '' ? null : el.value;
        if (type === 'password' && v == null) continue; // unchanged
        if (k === 'value' && v == null) v = '';
        body[k] = v;
        if (!isKey) mask.push(k);
      }
      try {
        if (editing) await api.patch(`${R.path}/${enc(row[R.key])}` + q({ update_mask: mask }), body);
        else await api.post(R.path, body);
        notice(`${R.noun} ${body[R.key] ?? row[R.key]} ${editing ? 'saved' : 'created'}`);
        put(formBox, '');
        await load();
      } catch (err) {
        put($('#res-error', form), errBox(err));
      }
    });
  }

  main.addEventListener('click', async (e) => {
    if (e.target.closest('#res-new')) { showForm(null); return; }
    const ed = e.target.closest('[data-edit]');
    if (ed) { showForm(rows[+ed.dataset.edit]); return; }
    const del = e.target.closest('[data-del]');
    if (!del) return;
    const row = rows[+del.dataset.del];
    if (del.dataset.armed !== '1') { // a second press confirms: no modal dialog needed
      del.dataset.armed = '1';
      del.textContent = 'Confirm delete';
      return;
    }
    try {
      await api.del(`${R.path}/${enc(row[R.key])}`);
      notice(`${R.noun} ${row[R.key]} deleted`);
      await load();
    } catch (err) {
      notice(errText(err), true);
    }
  });
  $('#res-filter', main)?.addEventListener('submit', (e) => e.preventDefault());
  $('#res-search', main)?.addEventListener('input', debounce((e) => location.replace(`#/${route.parts[0]}` + q({ search: e.target.value.trim() })), 300));
  await load();
  return {
    update(r) {
      offset = Math.max(0, parseInt(r.params.get('offset') || '0', 10) || 0);
      search = r.params.get('search') || '';
      load();
      return true;
    },
  };
}

// ---- audit log ---------------------------------------------------------------------------------
async function audit(main, route) {
  document.title = 'Audit log · gust';
  const p = route.params;
  const f = { dag_id: p.get('dag_id') || '', event: p.get('event') || '', owner: p.get('owner') || '' };
  const offset = Math.max(0, parseInt(p.get('offset') || '0', 10) || 0);
  put(main, h`<div class="head"><h1>Audit log</h1></div>
    <p class="muted">Every change made through the API and every login, newest first.</p>
    <form class="filters" id="audit-filter">
      <label for="audit-dag">DAG id</label><input id="audit-dag" name="dag_id" value="${f.dag_id}">
      <label for="audit-event">Event</label><input id="audit-event" name="event" value="${f.event}">
      <label for="audit-owner">User</label><input id="audit-owner" name="owner" value="${f.owner}">
      <button type="submit">Filter</button>
    </form><div id="audit-list" aria-busy="true"><p class="muted">Loading…</p></div>`);
  $('#audit-filter', main).addEventListener('submit', (e) => {
    e.preventDefault();
    const fd = new FormData(e.target);
    location.hash = '#/audit' + q({ dag_id: fd.get('dag_id').trim(), event: fd.get('event').trim(), owner: fd.get('owner').trim() });
  });
  const list = $('#audit-list', main);
  try {
    const r = await api.get('/eventLogs' + q({ limit: 50, offset, order_by: '-when', dag_id: f.dag_id, event: f.event, owner: f.owner }));
    put(list, r.total_entries ? h`<table class="list">
      <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">User</th><th scope="col">DAG</th><th scope="col">Run</th><th scope="col">Task</th><th scope="col">Extra</th></tr></thead>
      <tbody>${r.event_logs.map((e) => h`<tr><td>${time(e.when)}</td><td>${e.event}</td><td>${e.owner || ''}</td>
        <td>${e.dag_id ? h`<a href="#/dags/${enc(e.dag_id)}">${e.dag_id}</a>` : ''}</td><td>${e.run_id || ''}</td><td>${e.task_id || ''}</td>
        <td><code class="small">${e.extra || ''}</code></td></tr>`)}</tbody></table>
      ${pager(r.total_entries, offset, 50, (o) => '#/audit' + q({ ...f, offset: o || null }))}`
      : h`<p class="empty">Nothing logged${f.dag_id || f.event || f.owner ? ' that matches' : ' yet'}.</p>`);
    list.setAttribute('aria-busy', 'false');
  } catch (e) {
    put(list, errBox(e));
  }
  return {};
}
