// ti — the side panel of the DAG page: a task instance (details, rendered fields such as the
// command, its tries, the selected try's log tailed while it runs, XComs, and the actions
// clear / mark success / mark failed) or, for a run header, the run (details, conf, clear,
// mark). The log is followed with the API's continuation token, so each poll returns only
// the lines written since the last one; polling stops once the try has finished.
import * as api from './api.js';
import { h, put, $, time, duration, badge, errBox, errText, notice, enc, pretty, FINISHED } from './util.js';

export class Panel {
  // el: the <aside>; onClose(): called when the user closes it.
  constructor(el, dagId, onClose) {
    this.el = el;
    this.dagId = dagId;
    this.onClose = onClose;
    this.key = null;
    this.tail = null;
    this.ti = null;
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); this.onClose(); }
    });
    el.addEventListener('click', (e) => this.click(e));
  }

  base(run, task) {
    return `/dags/${enc(this.dagId)}/dagRuns/${enc(run)}` + (task ? `/taskInstances/${enc(task)}` : '');
  }

  async show(run, task, tryNo, focus) {
    const key = `${run}\u0000${task || ''}\u0000${tryNo || ''}`;
    this.el.hidden = false;
    if (key === this.key) return;
    const sameTi = this.key && this.key.startsWith(`${run}\u0000${task || ''}\u0000`) && task;
    this.key = key;
    this.run = run;
    this.task = task;
    this.stopTail();
    if (sameTi && this.ti) { // only the try changed: keep the details, switch the log
      this.tryNo = tryNo || this.ti.try_number;
      this.renderTries();
      this.startTail();
      return;
    }
    put(this.el, h`<div class="panel-head"><h2 id="panel-title">${task || 'Run'}</h2>
      <button type="button" class="close" data-act="close" aria-label="Close panel">×</button></div>
      <p class="muted">Loading…</p>`);
    this.el.setAttribute('aria-labelledby', 'panel-title');
    // changes that arrive while loading are replayed after it (they are newer than the fetch)
    const buf = [];
    this.loading = buf;
    try {
      if (task) await this.loadTi(run, task, tryNo);
      else await this.loadRun(run);
      if (this.loading === buf) {
        this.loading = null;
        for (const ev of buf) this.onEvent(ev);
      }
    } catch (e) {
      if (this.loading === buf) this.loading = null;
      if (this.key === key) put(this.el, h`<div class="panel-head"><h2 id="panel-title">${task || run}</h2>
        <button type="button" class="close" data-act="close" aria-label="Close panel">×</button></div>${errBox(e)}`);
    }
    if (focus && this.key === key) $('#panel-title', this.el)?.focus();
  }

  hide() {
    this.stopTail();
    this.key = null;
    this.ti = null;
    this.el.hidden = true;
    this.el.textContent = '';
  }

  destroy() { this.stopTail(); }

  // ---- task instance -------------------------------------------------------------------
  async loadTi(run, task, tryNo) {
    const key = this.key;
    const b = this.base(run, task);
    const [ti, tries, xcoms] = await Promise.all([
      api.get(b),
      api.get(b + '/tries').catch(() => null),
      api.get(b + '/xcomEntries?limit=20').catch((e) => ({ error: e })),
    ]);
    if (key !== this.key) return;
    this.ti = ti;
    this.tries = tries?.task_instances || [];
    this.tryNo = tryNo || ti.try_number || 1;
    const may = api.can('User');
    put(this.el, h`<div class="panel-head"><h2 id="panel-title" tabindex="-1">${ti.task_display_name || task}</h2>
      <button type="button" class="close" data-act="close" aria-label="Close panel">×</button></div>
      <p class="sub"><span id="ti-state">${badge(ti.state)}</span> in run <a href="#/dags/${enc(this.dagId)}/grid?run=${enc(run)}">${run}</a></p>
      ${may ? h`<div class="actions" role="group" aria-label="Actions on this task instance">
        <button type="button" data-act="clear">Clear</button>
        <label class="check"><input type="checkbox" id="ti-downstream"> with downstream</label>
        <button type="button" data-act="success" class="ok">Mark success</button>
        <button type="button" data-act="failed" class="bad">Mark failed</button>
      </div><div id="ti-confirm"></div>` : ''}
      <dl class="kv" id="ti-details">${this.detailRows(ti)}</dl>
      <h3>Tries</h3><div id="ti-tries"></div>
      <h3 id="log-title">Log</h3>
      <pre class="log" id="ti-log" tabindex="0" aria-labelledby="log-title"></pre>
      <p class="muted small" id="ti-log-status"></p>
      <h3>Rendered fields</h3>${ti.rendered_fields && Object.keys(ti.rendered_fields).length
        ? h`<dl class="kv rendered">${Object.entries(ti.rendered_fields).map(([k, v]) => h`<dt>${k}</dt><dd><pre>${pretty(v)}</pre></dd>`)}</dl>`
        : h`<p class="muted" id="ti-no-rendered">Not recorded for this try (they are once it has rendered its templates).</p>`}
      <h3>XComs</h3><div id="ti-xcoms">${xcoms.error ? errBox(xcoms.error) : ''}</div>`);
    this.renderTries();
    this.startTail();
    if (!xcoms.error) this.loadXcoms(b, xcoms.xcom_entries || []);
  }

  detailRows(ti) {
    const d = ti.duration ?? null;
    return h`<dt>Try</dt><dd>${ti.try_number} of ${(ti.max_tries ?? 0) + 1}</dd>
      <dt>Operator</dt><dd>${ti.operator_name || ti.operator || ''}</dd>
      <dt>Started</dt><dd>${time(ti.start_date)}</dd>
      <dt>Ended</dt><dd>${time(ti.end_date)}</dd>
      <dt>Duration</dt><dd>${d != null ? duration(d) : ''}</dd>
      <dt>Queued</dt><dd>${time(ti.queued_when)}</dd>
      <dt>Pool</dt><dd>${ti.pool} (${ti.pool_slots} slot${ti.pool_slots === 1 ? '' : 's'})</dd>
      <dt>Queue</dt><dd>${ti.queue || ''}</dd>
      <dt>Host</dt><dd>${ti.hostname || ''}${ti.pid ? ` (pid ${ti.pid})` : ''}</dd>
      ${ti.note ? h`<dt>Note</dt><dd>${ti.note}</dd>` : ''}`;
  }

  renderTries() {
    const box = $('#ti-tries', this.el);
    if (!box) return;
    const nums = new Set(this.tries.map((t) => t.try_number));
    if (this.ti?.try_number) nums.add(this.ti.try_number);
    const list = [...nums].filter((n) => n > 0).sort((a, b) => a - b);
    if (!list.length) { put(box, h`<p class="muted">Not tried yet.</p>`); return; }
    const stateOf = (n) => (n === this.ti.try_number ? this.ti.state : this.tries.find((t) => t.try_number === n)?.state);
    put(box, h`<div class="tries" role="group" aria-label="Tries">${list.map((n) => h`<a class="try" href="${this.tryHref(n)}" aria-current="${n === this.tryNo ? 'true' : 'false'}">
      Try ${n} ${badge(stateOf(n))}</a>`)}</div>`);
  }

  tryHref(n) {
    const p = new URLSearchParams(location.hash.split('?')[1] || '');
    p.set('try', n);
    return location.hash.split('?')[0] + '?' + p.toString();
  }

  async loadXcoms(b, entries) {
    const box = $('#ti-xcoms', this.el);
    if (!entries.length) { put(box, h`<p class="muted">None.</p>`); return; }
    const vals = await Promise.all(entries.map((x) => api.get(`${b}/xcomEntries/${enc(x.key)}?map_index=${x.map_index ?? -1}`)
      .then((v) => v.value).catch((e) => ({ __error: errText(e) }))));
    if (!box.isConnected) return;
    put(box, h`<dl class="kv">${entries.map((x, i) => h`<dt>${x.key}</dt><dd><pre>${vals[i] && vals[i].__error ? vals[i].__error : pretty(vals[i])}</pre></dd>`)}</dl>`);
  }

  // ---- log tail ------------------------------------------------------------------------------
  startTail() {
    const pre = $('#ti-log', this.el);
    if (!pre || !this.ti) return;
    pre.textContent = '';
    const tail = { token: null, stopped: false, done: false, timer: 0, lines: 0, idle: 0 };
    this.tail = tail;
    const url = this.base(this.run, this.task) + `/logs/${this.tryNo}`;
    const status = $('#ti-log-status', this.el);
    const poll = async () => {
      if (tail.stopped) return;
      try {
        const r = await api.get(url + (tail.token ? '?token=' + enc(tail.token) : ''));
        if (tail.stopped) return;
        const lines = (r.content || []).map((m) => (typeof m === 'string' ? m : m.event ?? JSON.stringify(m)));
        if (lines.length) {
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.append(document.createTextNode(lines.join('\n') + '\n'));
          tail.lines += lines.length;
          if (atEnd) pre.scrollTop = pre.scrollHeight;
          tail.idle = 0;
        } else tail.idle++;
        if (r.continuation_token) tail.token = r.continuation_token;
      } catch (e) {
        if (tail.stopped) return;
        // no log yet (the try has not started): keep waiting while it may still start
        if (!(e.status === 404 && this.isLive())) {
          status.textContent = 'log: ' + errText(e);
          tail.done = true;
          return;
        }
      }
      const live = this.isLive();
      // after the try ends, one more poll picks up the last lines; then stop
      if (live || tail.idle < 1) {
        status.textContent = live ? 'Following the log…' : '';
        tail.timer = setTimeout(poll, live ? 1000 : 500);
      } else {
        tail.done = true;
        status.textContent = tail.lines ? '' : 'The log is empty.';
      }
    };
    poll();
  }

  // Is the try whose log is shown still going (so its log may grow)?
  isLive() {
    return !!this.ti && this.tryNo === (this.ti.try_number || 1) && !FINISHED.has(this.ti.state) && this.ti.state !== 'up_for_retry';
  }

  stopTail() {
    if (!this.tail) return;
    this.tail.stopped = true;
    clearTimeout(this.tail.timer);
    this.tail = null;
  }

  // ---- run -------------------------------------------------------------------------------------
  async loadRun(run) {
    const key = this.key;
    const r = await api.get(this.base(run));
    if (key !== this.key) return;
    this.runObj = r;
    const may = api.can('User');
    put(this.el, h`<div class="panel-head"><h2 id="panel-title" tabindex="-1">${run}</h2>
      <button type="button" class="close" data-act="close" aria-label="Close panel">×</button></div>
      <p class="sub"><span id="run-state">${badge(r.state)}</span> ${r.run_type} run</p>
      ${may ? h`<div class="actions" role="group" aria-label="Actions on this run">
        <button type="button" data-act="run-clear">Clear run</button>
        <label class="check"><input type="checkbox" id="run-only-failed"> only failed tasks</label>
        <button type="button" data-act="run-success" class="ok">Mark success</button>
        <button type="button" data-act="run-failed" class="bad">Mark failed</button>
      </div>` : ''}
      <dl class="kv">
        <dt>Run after</dt><dd>${time(r.run_after)}</dd>
        <dt>Logical date</dt><dd>${time(r.logical_date)}</dd>
        <dt>Queued</dt><dd>${time(r.queued_at)}</dd>
        <dt>Started</dt><dd>${time(r.start_date)}</dd>
        <dt>Ended</dt><dd>${time(r.end_date)}</dd>
        <dt>Duration</dt><dd>${r.duration != null ? duration(r.duration) : ''}</dd>
        <dt>Triggered by</dt><dd>${r.triggered_by || ''}${r.triggering_user_name ? ` (${r.triggering_user_name})` : ''}</dd>
        ${r.note ? h`<dt>Note</dt><dd>${r.note}</dd>` : ''}
      </dl>
      <h3>Configuration</h3><pre class="conf">${pretty(r.conf ?? {})}</pre>
      <p><a href="#/dags/${enc(this.dagId)}/gantt?run=${enc(run)}">Gantt chart of this run</a> ·
         <a href="#/dags/${enc(this.dagId)}/graph?run=${enc(run)}">Graph of this run</a></p>`);
  }

  // ---- actions ---------------------------------------------------------------------------------
  async click(e) {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const act = b.dataset.act;
    if (act === 'close') { this.onClose(); return; }
    b.disabled = true;
    try {
      await this.act(act);
    } catch (err) {
      notice(errText(err), true);
      const box = $('#ti-confirm', this.el);
      if (box) put(box, errBox(err));
    } finally {
      if (b.isConnected) b.disabled = false;
    }
  }

  async act(act) {
    const dag = `/dags/${enc(this.dagId)}`;
    const box = $('#ti-confirm', this.el);
    if (act === 'clear') {
      const body = {
        dag_run_id: this.run, task_ids: [this.task], only_failed: false, reset_dag_runs: true,
        include_downstream: !!$('#ti-downstream', this.el)?.checked, include_upstream: false,
      };
      const dry = await api.post(`${dag}/clearTaskInstances`, { ...body, dry_run: true });
      const tis = dry.task_instances || [];
      this.pendingClear = body;
      put(box, h`<div class="confirm" role="alertdialog" aria-labelledby="confirm-text">
        <p id="confirm-text">Clear ${tis.length} task instance${tis.length === 1 ? '' : 's'} so ${tis.length === 1 ? 'it runs' : 'they run'} again?</p>
        ${tis.length ? h`<ul class="small">${tis.slice(0, 20).map((t) => h`<li>${t.task_id} ${badge(t.state)}</li>`)}${tis.length > 20 ? h`<li>…and ${tis.length - 20} more</li>` : ''}</ul>` : ''}
        <button type="button" data-act="clear-confirm" class="primary">Confirm clear</button>
        <button type="button" data-act="cancel">Cancel</button></div>`);
      $('button[data-act=clear-confirm]', box).focus();
    } else if (act === 'clear-confirm') {
      const r = await api.post(`${dag}/clearTaskInstances`, { ...this.pendingClear, dry_run: false });
      put(box, '');
      notice(`Cleared ${r.task_instances?.length ?? ''} task instance(s) of ${this.run}`);
      this.refresh();
    } else if (act === 'cancel') {
      put(box, '');
    } else if (act === 'success' || act === 'failed') {
      const ti = await api.patch(this.base(this.run, this.task), { new_state: act });
      notice(`${this.task} marked ${act}`);
      const one = ti.task_instances ? ti.task_instances.find((t) => t.task_id === this.task) : ti;
      if (one?.state !== undefined) this.setTiState(one.state, one.try_number);
      this.refresh();
    } else if (act === 'run-clear') {
      await api.post(`${this.base(this.run)}/clear`, { dry_run: false, only_failed: !!$('#run-only-failed', this.el)?.checked });
      notice(`Cleared run ${this.run}`);
      this.refresh();
    } else if (act === 'run-success' || act === 'run-failed') {
      const state = act.slice(4);
      const r = await api.patch(this.base(this.run), { state });
      notice(`Run ${this.run} marked ${r.state}`);
      this.refresh();
    }
  }

  // Reload what the panel shows (keeps the panel open on the same task/run).
  refresh() {
    const { run, task } = this;
    const tryNo = null;
    this.key = null;
    this.ti = null;
    return this.show(run, task, tryNo, false);
  }

  setTiState(state, tryNumber) {
    if (!this.ti) return;
    const newTry = tryNumber && tryNumber !== this.ti.try_number;
    this.ti.state = state;
    if (tryNumber) this.ti.try_number = tryNumber;
    const el = $('#ti-state', this.el);
    if (el) put(el, badge(state));
    return newTry;
  }

  // A state change from the event stream. Returns nothing; updates what is shown.
  onEvent(ev) {
    if (ev.run_id !== this.run) return;
    if (this.loading) { this.loading.push(ev); return; }
    if (ev.type === 'dag_run' && !this.task) {
      const el = $('#run-state', this.el);
      if (el) put(el, badge(ev.state));
      if (this.runObj) this.runObj.state = ev.state;
      return;
    }
    if (ev.type !== 'task_instance' || ev.task_id !== this.task || !this.ti) return;
    const prevTry = this.ti.try_number;
    const newTry = this.setTiState(ev.state, ev.try_number);
    if (newTry && this.tryNo === prevTry) {
      // a new try started (retry or clear): follow it
      this.refresh();
      return;
    }
    this.renderTries();
    const det = $('#ti-details', this.el);
    if (FINISHED.has(ev.state) || ev.state === 'running') {
      // dates and duration changed: fetch them once
      api.get(this.base(this.run, this.task)).then((ti) => {
        if (this.ti && ti.task_id === this.task && det.isConnected) {
          this.ti = { ...ti };
          put(det, this.detailRows(ti));
        }
      }).catch(() => {});
    }
    if (this.tail && this.tail.done && this.isLive()) this.startTail();
  }
}
