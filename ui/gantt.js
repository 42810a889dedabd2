// gantt — one run's task instances on a time axis: a light bar for the time spent queued
// (queued_when → start_date), a solid one for the run (start_date → end_date, or now while it
// runs), one row per task in the grid's order. SVG with classes only (the CSP forbids inline
// styles); each bar links to its task instance.
import { h, put, parseTime, duration, utcText } from './util.js';

const ROW = 24, LEFT = 220, RIGHT = 20, TOP = 28;

export function renderGantt(container, tasks, tis, hrefOf, width) {
  const rows = tasks.map((t) => ({ t, ti: tis?.get(t.task_id) })).filter((r) => r.ti);
  const times = [];
  for (const { ti } of rows) for (const k of ['queued_when', 'start_date', 'end_date']) {
    const v = parseTime(ti[k]);
    if (!Number.isNaN(v)) times.push(v);
  }
  if (!rows.length || !times.length) {
    put(container, h`<p class="empty">No task of this run has started yet.</p>`);
    return;
  }
  const now = Date.now();
  const running = rows.some(({ ti }) => ti.start_date && !ti.end_date);
  const t0 = Math.min(...times), t1 = Math.max(...times, running ? now : 0);
  const span = Math.max(1, t1 - t0);
  const W = Math.max(500, width || 900);
  const x = (t) => LEFT + ((t - t0) / span) * (W - LEFT - RIGHT);
  const ticks = [];
  for (let k = 0; k <= 5; k++) ticks.push(t0 + (span * k) / 5);
  const H = TOP + rows.length * ROW + 10;
  put(container, h`<div class="gantt-wrap"><svg class="gantt" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="group" aria-label="Gantt chart of ${rows.length} task instances">
    ${ticks.map((t) => h`<g class="tick"><line x1="${x(t)}" y1="${TOP - 6}" x2="${x(t)}" y2="${H}"/><text x="${x(t)}" y="${TOP - 10}">+${duration((t - t0) / 1000) || '0 s'}</text></g>`)}
    ${rows.map(({ t, ti }, i) => {
      const y = TOP + i * ROW;
      const q = parseTime(ti.queued_when), s = parseTime(ti.start_date);
      const e = ti.end_date ? parseTime(ti.end_date) : now;
      const dur = Number.isNaN(s) ? null : (e - s) / 1000;
      const label = `${t.task_id}: ${ti.state || 'no status'}${dur != null ? ', ' + duration(dur) : ''}`;
      return h`<a href="${hrefOf(t.task_id)}" class="gbar" aria-label="${label}">
        <title>${label}\nstarted ${utcText(ti.start_date)}\nended ${utcText(ti.end_date)}</title>
        <text class="gl" x="${LEFT - 8}" y="${y + 16}">${t.task_id.length > 28 ? t.task_id.slice(0, 27) + '…' : t.task_id}</text>
        ${!Number.isNaN(q) && !Number.isNaN(s) && s > q ? h`<rect class="queued-span" x="${x(q)}" y="${y + 5}" width="${Math.max(1, x(s) - x(q))}" height="${ROW - 10}"/>` : ''}
        ${!Number.isNaN(s) ? h`<rect class="st-${ti.state || 'none'}" x="${x(s)}" y="${y + 3}" width="${Math.max(2, x(e) - x(s))}" height="${ROW - 6}" rx="2"/>` : ''}
      </a>`;
    })}
  </svg></div>`);
}
