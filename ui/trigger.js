// trigger — a form built from the DAG's params (GET /dags/{id}/details): one labelled field
// per param, typed from its JSON schema (or from its default's type when it has none), then
// POST /dags/{id}/dagRuns with the values as the run's conf. Opens the grid on the new run.
import * as api from './api.js';
import { h, put, $, errBox, enc, pretty } from './util.js';

// A param as the API may spell it: Airflow's serialised Param ({"__class": ..., "value",
// "description", "schema"}), Airflow 3's {"value", "description", "schema"}, or a bare value.
export function normParam(v) {
  if (v && typeof v === 'object' && !Array.isArray(v) && ('__class' in v || 'schema' in v || ('value' in v && 'description' in v))) {
    return { value: v.value ?? v.default ?? null, description: v.description || v.schema?.description || '', schema: v.schema || {} };
  }
  return { value: v, description: '', schema: {} };
}

function typeOf(p) {
  let t = p.schema.type;
  if (Array.isArray(t)) t = t.find((x) => x !== 'null') || 'string';
  if (t) return t;
  const v = p.value;
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (Array.isArray(v)) return 'array';
  if (v && typeof v === 'object') return 'object';
  return 'string';
}

function field(name, p, i) {
  const id = `param-${i}`;
  const t = typeOf(p);
  const desc = p.description ? h`<small id="${id}-desc" class="muted">${p.description}</small>` : '';
  const described = p.description ? `${id}-desc` : null;
  const en = p.schema.enum;
  let input;
  if (en) {
    input = h`<select id="${id}" name="${name}" data-type="enum" aria-describedby="${described}">${en.map((x) => h`<option value="${JSON.stringify(x)}" ${JSON.stringify(x) === JSON.stringify(p.value) ? 'selected' : ''}>${String(x)}</option>`)}</select>`;
  } else if (t === 'boolean') {
    return h`<div class="field check"><input type="checkbox" id="${id}" name="${name}" data-type="boolean" ${p.value ? 'checked' : ''} aria-describedby="${described}"><label for="${id}">${name}</label>${desc}</div>`;
  } else if (t === 'array' || t === 'object') {
    input = h`<textarea id="${id}" name="${name}" data-type="json" rows="4" aria-describedby="${described}">${p.value == null ? '' : pretty(p.value)}</textarea>`;
  } else if (t === 'integer' || t === 'number') {
    input = h`<input id="${id}" name="${name}" type="number" step="${t === 'integer' ? '1' : 'any'}" data-type="${t}" value="${p.value ?? ''}" aria-describedby="${described}">`;
  } else {
    input = h`<input id="${id}" name="${name}" data-type="string" value="${p.value ?? ''}" aria-describedby="${described}">`;
  }
  return h`<div class="field"><label for="${id}">${name}${p.schema.type && !Array.isArray(p.schema.type) ? h` <span class="muted">(${t})</span>` : ''}</label>${input}${desc}</div>`;
}

// The conf object from the form; throws naming the field that is wrong.
function readConf(form) {
  const conf = {};
  for (const el of form.querySelectorAll('[data-type]')) {
    const name = el.name, t = el.dataset.type;
    if (t === 'boolean') conf[name] = el.checked;
    else if (t === 'enum') conf[name] = JSON.parse(el.value);
    else if (t === 'json') {
      if (!el.value.trim()) { conf[name] = null; continue; }
      try { conf[name] = JSON.parse(el.value); } catch (e) { throw fieldError(el, `${name}: not valid JSON (${e.message})`); }
    } else if (t === 'integer' || t === 'number') {
      if (el.value === '') { conf[name] = null; continue; }
      const n = Number(el.value);
      if (Number.isNaN(n) || (t === 'integer' && !Number.isInteger(n))) throw fieldError(el, `${name}: expected ${t === 'integer' ? 'an integer' : 'a number'}`);
      conf[name] = n;
    } else conf[name] = el.value;
  }
  const extra = form.querySelector('#trigger-conf').value.trim();
  if (extra) {
    let o;
    try { o = JSON.parse(extra); } catch (e) { throw fieldError(form.querySelector('#trigger-conf'), `configuration JSON: ${e.message}`); }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw fieldError(form.querySelector('#trigger-conf'), 'configuration JSON: must be an object');
    Object.assign(conf, o);
  }
  return conf;
}

function fieldError(el, msg) {
  el.setAttribute('aria-invalid', 'true');
  el.focus();
  return new Error(msg);
}

export async function mount(main, route) {
  const dagId = route.parts[0];
  document.title = `Trigger ${dagId} · gust`;
  if (!api.can('User')) {
    put(main, h`<h1>Trigger ${dagId}</h1><p class="error">Triggering a DAG needs the User role or higher; you are a ${api.role()}.</p>`);
    return {};
  }
  put(main, h`<p class="muted">Loading…</p>`);
  const d = await api.get(`/dags/${enc(dagId)}/details`);
  const params = Object.entries(d.params || {}).map(([k, v]) => [k, normParam(v)]);
  put(main, h`<div class="head"><h1>Trigger <a href="#/dags/${enc(dagId)}">${dagId}</a></h1></div>
    ${d.is_paused ? h`<p class="banner warn">This DAG is paused: the run is created now and starts when the DAG is unpaused.</p>` : ''}
    <form id="trigger-form" class="form" novalidate>
      ${params.length ? h`<fieldset><legend>Params</legend>${params.map(([k, p], i) => field(k, p, i))}</fieldset>`
        : h`<p class="muted">This DAG declares no params; you can still pass a configuration below.</p>`}
      <details><summary>Advanced</summary>
        <div class="field"><label for="trigger-conf">Configuration JSON (merged over the params)</label>
          <textarea id="trigger-conf" rows="4" placeholder='{"key": "value"}'></textarea></div>
        <div class="field"><label for="trigger-run-id">Run id</label>
          <input id="trigger-run-id" placeholder="manual__… (generated when empty)"></div>
        <div class="field"><label for="trigger-date">Logical date (your local time)</label>
          <input id="trigger-date" type="datetime-local" step="1"></div>
        <div class="field"><label for="trigger-note">Note</label><input id="trigger-note"></div>
      </details>
      <div id="trigger-error" role="alert"></div>
      <button type="submit" class="primary">Trigger</button>
      <a href="#/dags/${enc(dagId)}" class="button">Cancel</a>
    </form>`);
  const form = $('#trigger-form', main);
  form.addEventListener('input', (e) => e.target.removeAttribute('aria-invalid'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const errEl = $('#trigger-error', main);
    put(errEl, '');
    let body;
    try {
      const date = $('#trigger-date', main).value;
      body = { logical_date: date ? new Date(date).toISOString() : null, conf: readConf(form) };
      const runId = $('#trigger-run-id', main).value.trim();
      if (runId) body.dag_run_id = runId;
      const note = $('#trigger-note', main).value.trim();
      if (note) body.note = note;
    } catch (err) {
      put(errEl, h`<p class="error">${err.message}</p>`);
      return;
    }
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const run = await api.post(`/dags/${enc(dagId)}/dagRuns`, body);
      location.hash = `#/dags/${enc(dagId)}/grid?run=${enc(run.dag_run_id)}`;
    } catch (err) {
      put(errEl, errBox(err));
      btn.disabled = false;
    }
  });
  form.querySelector('input, select, textarea')?.focus();
  return {};
}
