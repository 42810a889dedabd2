// util — the small toolkit every page uses: HTML built from tagged templates that escape
// what they interpolate (pages render with one innerHTML per region, never string-concatenated
// user data), times in the user's timezone with UTC on hover, state badges, paging, notices.

export class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}
export const raw = (s) => new Raw(s);

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);

function part(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v == null || v === false) return '';
  return esc(v);
}

// h`<p>${text}</p>` — every ${} is escaped unless it is a Raw (another h`` result).
export function h(strings, ...vals) {
  let out = strings[0];
  for (let i = 0; i < vals.length; i++) out += part(vals[i]) + strings[i + 1];
  return new Raw(out);
}

export function put(el, content) {
  el.innerHTML = part(content);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---- time ---------------------------------------------------------------------------------
const fmtLocal = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const fmtShort = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

export const parseTime = (iso) => (iso ? Date.parse(iso) : NaN);

export function utcText(iso) {
  const t = parseTime(iso);
  return Number.isNaN(t) ? '' : new Date(t).toISOString().replace('.000Z', 'Z') + ' (UTC)';
}

// <time> in the user's timezone; the UTC instant on hover (title) and in datetime.
export function time(iso, short = false) {
  const t = parseTime(iso);
  if (Number.isNaN(t)) return h`<span class="muted">—</span>`;
  const d = new Date(t);
  return h`<time datetime="${d.toISOString()}" title="${utcText(iso)}">${(short ? fmtShort : fmtLocal).format(d)}</time>`;
}

export function duration(sec) {
  if (sec == null || Number.isNaN(sec)) return '';
  if (sec < 1) return `${Math.round(sec * 1000)} ms`;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  const m = Math.floor(sec / 60), s = Math.round(sec % 60);
  if (m < 60) return `${m}m ${s}s`;
  const hh = Math.floor(m / 60);
  return hh < 48 ? `${hh}h ${m % 60}m` : `${Math.floor(hh / 24)}d ${hh % 24}h`;
}

export function durationOf(start, end) {
  const a = parseTime(start), b = end ? parseTime(end) : Date.now();
  return Number.isNaN(a) || Number.isNaN(b) ? null : (b - a) / 1000;
}

// ---- states -------------------------------------------------------------------------------
// Airflow's state names. "none" is a task instance nobody has scheduled yet.
export const TI_STATES = ['success', 'running', 'failed', 'upstream_failed', 'skipped', 'up_for_retry',
  'up_for_reschedule', 'queued', 'scheduled', 'deferred', 'restarting', 'removed', 'none'];
export const RUN_STATES = ['queued', 'running', 'success', 'failed'];
export const FINISHED = new Set(['success', 'failed', 'upstream_failed', 'skipped', 'removed']);

export const stClass = (s) => 'st-' + (s || 'none');
export const badge = (s) => h`<span class="st ${stClass(s)}">${s || 'no status'}</span>`;

// ---- API errors ---------------------------------------------------------------------------
// The API's own words: {"detail": "..."} or FastAPI's [{"loc", "msg"}] list for a 422.
export function errText(e) {
  if (!e) return '';
  const d = e.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((x) => (x.loc ? x.loc.join('.') + ': ' : '') + (x.msg || JSON.stringify(x))).join('; ');
  if (d) return JSON.stringify(d);
  return e.message || String(e);
}

export const errBox = (e) => h`<p class="error" role="alert">${errText(e)}</p>`;

let noticeTimer = 0;
// A short message in the live region at the bottom (screen readers announce it).
export function notice(msg, isError = false) {
  const el = $('#notice');
  if (!el) return;
  el.textContent = msg;
  el.className = isError ? 'show error' : 'show';
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.className = ''; }, isError ? 10000 : 4000);
}

// ---- misc ---------------------------------------------------------------------------------
export function debounce(fn, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

export const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v == null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, v);
  }
  const s = u.toString();
  return s ? '?' + s : '';
};

export const enc = encodeURIComponent;

// Previous/next links for a list of `total` rows shown `limit` at a time from `offset`.
export function pager(total, offset, limit, hrefFor) {
  if (total <= limit) return h`<p class="muted count">${total} shown</p>`;
  const prev = offset > 0 ? hrefFor(Math.max(0, offset - limit)) : null;
  const next = offset + limit < total ? hrefFor(offset + limit) : null;
  return h`<nav class="pager" aria-label="Pages">
    ${prev ? h`<a href="${prev}" rel="prev">← Previous</a>` : h`<span class="muted">← Previous</span>`}
    <span>${offset + 1}–${Math.min(total, offset + limit)} of ${total}</span>
    ${next ? h`<a href="${next}" rel="next">Next →</a>` : h`<span class="muted">Next →</span>`}
  </nav>`;
}

// performance.mark(name) once the next frame is painted: what a user sees, not just what the
// DOM holds (the benchmark and the tests read these marks).
export function paintedMark(name) {
  requestAnimationFrame(() => setTimeout(() => performance.mark(name), 0));
}

// A JSON value as readable text.
export const pretty = (v) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));
