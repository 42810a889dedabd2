// grid — runs × tasks, one cell per task instance coloured by its state. Built as one HTML
// string and set with one innerHTML (a 100 × 100 grid is 10,000 cells: per-cell DOM calls or
// listeners would cost more than the data), with one delegated listener for clicks and keys.
// Keyboard: a single cell is in the tab order (roving tabindex); the arrow keys, Home/End and
// PageUp/PageDown move between cells, Enter or Space opens the cell. Row -1 is the run
// headers: Enter there selects the run.
import { h, put, durationOf, duration, utcText } from './util.js';

// Height class (h0..h9) of a run's bar: its duration against the longest run shown.
function barClass(runs) {
  const d = runs.map((r) => durationOf(r.start_date, r.end_date) || 0);
  const max = Math.max(1, ...d);
  return (i) => 'h' + Math.min(9, Math.round((d[i] / max) * 9));
}

export class Grid {
  // model: {dagId, tasks: [{task_id, label, depth}], runs: [...] oldest first,
  //         tis: Map(run -> Map(task -> {state, try_number, ...})), only the instances a run has}
  // onOpen({run, task}) — task null for a run header.
  constructor(container, model, onOpen) {
    this.el = container;
    this.model = model;
    this.onOpen = onOpen;
    this.focus = null; // [row, col]
    this.sel = { run: null, task: null };
    container.addEventListener('click', (e) => this.click(e));
    container.addEventListener('keydown', (e) => this.key(e));
    container.addEventListener('mouseover', (e) => this.hover(e));
  }

  render() {
    const { runs, tasks, tis } = this.model;
    if (!tasks.length) {
      put(this.el, h`<p class="empty">This DAG has no tasks.</p>`);
      return;
    }
    const bar = barClass(runs);
    const head = runs.map((r, i) => `<th scope="col" class="rh ${bar(i)} st-${r.state || 'none'}" title="${esc(runTitle(r))}"><span class="sr-only">${esc(r.dag_run_id)}</span></th>`).join('');
    // Rows are strings glued directly: this is the hot path (10,000 cells).
    const rows = new Array(tasks.length);
    const cols = runs.map((r) => tis.get(r.dag_run_id));
    for (let t = 0; t < tasks.length; t++) {
      const id = tasks[t].task_id;
      let s = `<tr><th scope="row" class="tn d${Math.min(tasks[t].depth, 4)}" title="${esc(id)}">${tasks[t].prefix ? `<span class="grp">${esc(tasks[t].prefix)}</span>` : ''}${esc(tasks[t].label)}</th>`;
      for (let c = 0; c < cols.length; c++) {
        const ti = cols[c] && cols[c].get(id);
        s += ti ? `<td class="st-${ti.state || 'none'}"></td>` : '<td class="absent"></td>';
      }
      rows[t] = s + '</tr>';
    }
    // the name column fits the longest name, in three sizes (a class: the CSP allows no style attribute)
    const longest = Math.max(...tasks.map((t) => t.label.length + t.prefix.length + 2 * t.depth));
    const tw = longest <= 14 ? 'tw1' : longest <= 28 ? 'tw2' : 'tw3';
    this.el.innerHTML = `<div class="grid-wrap"><table class="grid ${tw}" role="grid" aria-label="Task instances: one row per task, one column per run (oldest first)" aria-rowcount="${tasks.length + 1}" aria-colcount="${runs.length + 1}">` +
      `<thead><tr><th scope="col" class="corner">${runs.length ? `${runs.length} runs →` : 'no runs yet'}</th>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
    this.table = this.el.querySelector('table');
    if (!runs.length) {
      this.el.insertAdjacentHTML('beforeend', h`<p class="empty">No runs yet. Trigger one, or wait for its schedule.</p>`.s);
    }
    this.applySel(this.sel, false);
  }

  cell(r, c) {
    if (!this.table) return null;
    if (r < 0) return this.table.tHead.rows[0].cells[c + 1] || null;
    const tr = this.table.tBodies[0].rows[r];
    return tr ? tr.cells[c + 1] || null : null;
  }

  pos(cell) {
    const tr = cell.parentElement;
    const c = cell.cellIndex - 1;
    if (c < 0) return null;
    const r = tr.parentElement.tagName === 'THEAD' ? -1 : tr.sectionRowIndex;
    return [r, c];
  }

  setFocus(r, c, move = true) {
    const nRuns = this.model.runs.length, nTasks = this.model.tasks.length;
    if (!nRuns) return;
    r = Math.max(-1, Math.min(nTasks - 1, r));
    c = Math.max(0, Math.min(nRuns - 1, c));
    if (this.focus) {
      const old = this.cell(...this.focus);
      if (old) { old.removeAttribute('tabindex'); old.removeAttribute('aria-label'); }
    }
    const el = this.cell(r, c);
    if (!el) return;
    this.focus = [r, c];
    el.tabIndex = 0;
    el.setAttribute('aria-label', this.label(r, c));
    if (move) el.focus();
  }

  label(r, c) {
    const run = this.model.runs[c];
    if (r < 0) return `Run ${run.dag_run_id}: ${run.state}`;
    const task = this.model.tasks[r].task_id;
    const ti = this.model.tis.get(run.dag_run_id)?.get(task);
    return `${task} in ${run.dag_run_id}: ${ti ? ti.state || 'no status' : 'not in this run'}`;
  }

  click(e) {
    const cell = e.target.closest('td, th.rh');
    if (!cell || !this.el.contains(cell)) return;
    const p = this.pos(cell);
    if (!p) return;
    this.setFocus(p[0], p[1], false);
    this.open(p[0], p[1]);
  }

  open(r, c) {
    const run = this.model.runs[c];
    if (!run) return;
    this.onOpen({ run: run.dag_run_id, task: r < 0 ? null : this.model.tasks[r].task_id });
  }

  key(e) {
    const cell = e.target.closest('td, th.rh');
    if (!cell || !this.focus) return;
    let [r, c] = this.focus;
    const page = 10;
    switch (e.key) {
      case 'ArrowUp': r--; break;
      case 'ArrowDown': r++; break;
      case 'ArrowLeft': c--; break;
      case 'ArrowRight': c++; break;
      case 'Home': if (e.ctrlKey) r = 0; c = 0; break;
      case 'End': if (e.ctrlKey) r = this.model.tasks.length - 1; c = this.model.runs.length - 1; break;
      case 'PageUp': r -= page; break;
      case 'PageDown': r += page; break;
      case 'Enter': case ' ': e.preventDefault(); this.open(r, c); return;
      default: return;
    }
    e.preventDefault();
    this.setFocus(r, c);
  }

  hover(e) {
    const cell = e.target.closest('td');
    if (!cell || cell.title) return;
    const p = this.pos(cell);
    if (p) cell.title = this.label(p[0], p[1]);
  }

  // Mark the selected run's column header and the selected cell; put the tab stop there.
  applySel(sel, move) {
    this.sel = { ...sel };
    if (!this.table) return;
    for (const el of this.table.querySelectorAll('.sel')) el.classList.remove('sel');
    const c = this.model.runs.findIndex((r) => r.dag_run_id === sel.run);
    const r = sel.task ? this.model.tasks.findIndex((t) => t.task_id === sel.task) : -1;
    if (c >= 0) {
      this.cell(-1, c)?.classList.add('sel');
      if (r >= 0) this.cell(r, c)?.classList.add('sel');
      this.setFocus(r, c, move);
    } else if (!this.focus || !this.cell(...this.focus)) {
      this.focus = null;
      this.setFocus(this.model.tasks.length ? 0 : -1, this.model.runs.length - 1, move);
    } else {
      this.setFocus(...this.focus, move);
    }
  }

  // One task instance changed state (from the event stream): recolour its cell.
  updateTi(runId, taskId, state) {
    const c = this.model.runs.findIndex((r) => r.dag_run_id === runId);
    const r = this.model.tasks.findIndex((t) => t.task_id === taskId);
    const el = c >= 0 && r >= 0 ? this.cell(r, c) : null;
    if (!el) return false;
    el.className = el.className.replace(/\b(st-\S+|absent)/g, '').trim();
    el.classList.add('st-' + (state || 'none'));
    el.removeAttribute('title');
    if (this.focus && this.focus[0] === r && this.focus[1] === c) el.setAttribute('aria-label', this.label(r, c));
    return true;
  }

  updateRun(run) {
    const c = this.model.runs.findIndex((r) => r.dag_run_id === run.dag_run_id);
    const el = c >= 0 ? this.cell(-1, c) : null;
    if (!el) return false;
    el.className = el.className.replace(/\bst-\S+/g, '').trim();
    el.classList.add('st-' + (run.state || 'none'));
    el.title = runTitle(run);
    return true;
  }
}

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ESC[c]);

function runTitle(r) {
  const d = durationOf(r.start_date, r.end_date);
  return `${r.dag_run_id}\n${r.state}${d != null ? ' · ' + duration(d) : ''}\nrun after ${utcText(r.run_after)}`;
}
