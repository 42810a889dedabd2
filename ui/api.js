// api — the UI's only way to the server: JSON calls to the REST API with the bearer token,
// the token's claims (role), and one shared Server-Sent Events stream of state changes.
// The token lives in localStorage so that a reload or a second tab stays logged in; a 401
// drops it and sends the user back to the login page with the server's reason.

const KEY = 'gust.token';
const ROLES = { Viewer: 1, User: 2, Op: 3, Admin: 4 };

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(typeof detail === 'string' ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

export const token = () => localStorage.getItem(KEY);

export function claims() {
  const t = token();
  if (!t) return null;
  try {
    const b = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b + '='.repeat((4 - (b.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export const role = () => claims()?.role || 'Viewer';
export const user = () => claims()?.sub || '';
// May the logged-in user do what needs role `min`? (the server checks again; this only hides buttons)
export const can = (min) => (ROLES[role()] || 0) >= ROLES[min];

let onUnauthorized = () => {};
export const setUnauthorizedHandler = (fn) => { onUnauthorized = fn; };

export async function login(username, password) {
  const r = await fetch('/auth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.access_token) throw new ApiError(r.status, body.detail || `login failed (HTTP ${r.status})`, '/auth/token');
  localStorage.setItem(KEY, body.access_token);
}

export function logout() {
  localStorage.removeItem(KEY);
  stopEvents();
}

// call('GET', '/dags?limit=100') — path relative to /api/v2 unless it starts with '/api' or '/auth'.
export async function call(method, path, body) {
  const url = path.startsWith('/api/') || path.startsWith('/auth/') ? path : '/api/v2' + path;
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `the gust server does not answer (${e.message})`, url);
  }
  if (r.status === 204) return null;
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: use the text */ }
  if (!r.ok) {
    const err = new ApiError(r.status, json?.detail ?? (text || `HTTP ${r.status} from ${url}`), url);
    if (r.status === 401) { localStorage.removeItem(KEY); onUnauthorized(err); }
    throw err;
  }
  return json;
}

export const get = (p) => call('GET', p);
export const post = (p, b) => call('POST', p, b ?? {});
export const patch = (p, b) => call('PATCH', p, b ?? {});
export const del = (p) => call('DELETE', p);

// Run fns (functions returning promises) at most `n` at a time; results in order.
export async function pool(fns, n = 6) {
  const out = new Array(fns.length);
  let next = 0;
  async function worker() {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, fns.length) }, worker));
  return out;
}

// ---- events ---------------------------------------------------------------------------------
// GET /api/v2/gust/events is Server-Sent Events. EventSource cannot send the Authorization
// header, so the stream is read with fetch() and parsed here. One stream serves every page:
// listeners come and go with pages; it reconnects with Last-Event-ID after a drop, so no
// change is missed or seen twice.
const listeners = new Set();
let stream = null; // {abort}
let lastId = null;
let retryMs = 1000;
let statusFn = () => {};

export const setEventStatusHandler = (fn) => { statusFn = fn; };

export function onEvent(fn) {
  listeners.add(fn);
  startEvents();
  return () => listeners.delete(fn);
}

function dispatch(type, data, id) {
  if (id) lastId = id;
  if (type === 'overflow') return; // the server ends the stream; we resume from lastId
  let ev;
  try { ev = JSON.parse(data); } catch { return; }
  ev.type = type; // 'dag_run' | 'task_instance'
  for (const fn of listeners) {
    try { fn(ev); } catch (e) { console.error(e); }
  }
}

export function startEvents() {
  if (stream || !token()) return;
  const ctl = new AbortController();
  stream = ctl;
  (async () => {
    try {
      const headers = { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const r = await fetch('/api/v2/gust/events', { headers, signal: ctl.signal, cache: 'no-store' });
      if (!r.ok || !r.body) throw new ApiError(r.status, `event stream: HTTP ${r.status}`);
      statusFn(true);
      retryMs = 1000;
      // pages that fetched before the stream was open may have missed changes: tell them
      // (a stream resumed with Last-Event-ID missed nothing)
      for (const fn of listeners) {
        try { fn({ type: 'open', resumed: !!headers['Last-Event-ID'] }); } catch (e) { console.error(e); }
      }
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let m;
        while ((m = /\r?\n\r?\n/.exec(buf))) {
          const block = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          let type = 'message', data = '', id = null;
          for (const line of block.split(/\r?\n/)) {
            if (!line || line[0] === ':') continue;
            const c = line.indexOf(':');
            const f = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (f === 'event') type = v;
            else if (f === 'data') data += (data ? '\n' : '') + v;
            else if (f === 'id') id = v;
            else if (f === 'retry' && /^\d+$/.test(v)) retryMs = +v;
          }
          if (data || type === 'overflow') dispatch(type, data, id);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.status === 401) return;
    } finally {
      if (stream === ctl) stream = null;
    }
    if (ctl.signal.aborted || !token()) return;
    statusFn(false);
    // dropped (server restart, overflow, network): come back with Last-Event-ID
    setTimeout(() => { if (listeners.size) startEvents(); }, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  })();
}

export function stopEvents() {
  if (stream) stream.abort();
  stream = null;
}
