// app — the shell: hash routes to page modules (loaded on first use, so the DAG list does
// not wait for the graph's code), the header, login state and the live-updates indicator.
// A page module exports mount(main, route) returning {update(route) -> bool, destroy()}:
// update lets a page follow a change of its own URL (another tab, a selected task) without
// rebuilding itself; destroy drops its event listeners and timers.
import * as api from './api.js';
import { $, $$, notice, errText } from './util.js';

const ROUTES = [
  [/^\/login$/, 'login.js'],
  [/^\/dags$/, 'dags.js'],
  [/^\/dags\/([^/]+)(?:\/(grid|graph|gantt|runs|details))?$/, 'dag.js'],
  [/^\/dags\/([^/]+)\/trigger$/, 'trigger.js'],
  [/^\/runs$/, 'runs.js'],
  [/^\/(workers|pools|variables|connections|audit)$/, 'admin.js'],
];

let current = null; // {file, key, page}

function parse() {
  const hash = location.hash.replace(/^#/, '') || '/dags';
  const qi = hash.indexOf('?');
  const path = qi < 0 ? hash : hash.slice(0, qi);
  const params = new URLSearchParams(qi < 0 ? '' : hash.slice(qi + 1));
  for (const [re, file] of ROUTES) {
    const m = re.exec(path);
    if (m) return { path, file, parts: m.slice(1).map((p) => (p == null ? p : decodeURIComponent(p))), params };
  }
  return { path, file: null, parts: [], params };
}

function header(route) {
  const top = $('#top');
  const loggedIn = !!api.token() && route.file !== 'login.js';
  top.hidden = !loggedIn;
  if (!loggedIn) return;
  $('#who').textContent = `${api.user()} (${api.role()})`;
  const section = '/' + route.path.split('/')[1];
  for (const a of $$('#nav a')) {
    if (a.getAttribute('href') === '#' + section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function render() {
  const route = parse();
  if (!route.file) {
    location.replace('#/dags');
    return;
  }
  if (route.file !== 'login.js' && !api.token()) {
    location.replace('#/login' + (route.path !== '/dags' ? '?next=' + encodeURIComponent(location.hash) : ''));
    return;
  }
  header(route);
  const key = route.file + ':' + (route.parts[0] ?? '');
  if (current && current.key === key && current.page?.update && current.page.update(route)) return;
  if (current?.page?.destroy) current.page.destroy();
  current = { key, page: null };
  const mine = current;
  const main = $('#main');
  main.className = 'page-' + route.file.replace('.js', '');
  try {
    const mod = await import('./' + route.file);
    if (current !== mine) return; // navigated away while loading
    // a fresh element per page: listeners a page adds die with it
    const root = document.createElement('div');
    root.className = 'page';
    main.replaceChildren(root);
    mine.page = await mod.mount(root, route);
  } catch (e) {
    if (current !== mine) return;
    main.textContent = '';
    const p = document.createElement('p');
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = errText(e);
    main.append(p);
    if (!(e instanceof api.ApiError)) console.error(e);
  }
}

// A route change focuses the page so that keyboard and screen-reader users start at its top.
window.addEventListener('hashchange', () => {
  const prevKey = current?.key;
  render().then(() => {
    if (current && current.key !== prevKey) $('#main').focus({ preventScroll: true });
  });
});

api.setUnauthorizedHandler((err) => {
  if (parse().file === 'login.js') return;
  notice(errText(err), true);
  sessionStorage.setItem('gust.loginReason', errText(err));
  location.hash = '#/login?next=' + encodeURIComponent(location.hash);
});

api.setEventStatusHandler((up) => {
  const el = $('#live');
  const label = up ? 'Live updates: connected' : 'Live updates: reconnecting';
  el.className = 'live' + (up ? ' up' : '');
  el.title = label;
  el.setAttribute('aria-label', label);
});

$('#logout').addEventListener('click', () => {
  api.logout();
  location.hash = '#/login';
});

render();
