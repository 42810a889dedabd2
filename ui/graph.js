// graph — a layered drawing of the DAG in SVG, left to right: each task's column is its
// longest distance from a root, rows within a column are ordered by the barycentre of their
// neighbours (a few sweeps each way cut most crossings) with the members of a task group
// kept together, and each task group is a labelled box around its members. Nodes are links
// (keyboard-focusable); their colour is the selected run's state of the task.
import { h, put } from './util.js';

const W = 190, H = 34, GX = 70, GY = 14, PAD = 10, LABEL = 16;

// Group ids enclosing a task, outermost first ("a.b.task" -> ["a", "a.b"]).
export function groupsOf(t) {
  if (t.task_group_id !== undefined) {
    const g = t.task_group_id;
    if (!g) return [];
    const parts = g.split('.');
    return parts.map((_, i) => parts.slice(0, i + 1).join('.'));
  }
  const parts = t.task_id.split('.');
  parts.pop();
  return parts.map((_, i) => parts.slice(0, i + 1).join('.'));
}

export function layout(tasks) {
  const ids = tasks.map((t) => t.task_id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const down = tasks.map((t) => (t.downstream_task_ids || []).map((d) => index.get(d)).filter((x) => x !== undefined));
  const up = tasks.map(() => []);
  down.forEach((ds, i) => ds.forEach((d) => up[d].push(i)));

  // longest path from a root, iteratively (Kahn) so a deep DAG cannot overflow the stack
  const layer = new Array(tasks.length).fill(0);
  const indeg = up.map((u) => u.length);
  const queue = [];
  indeg.forEach((d, i) => { if (!d) queue.push(i); });
  const topo = [];
  while (queue.length) {
    const i = queue.shift();
    topo.push(i);
    for (const d of down[i]) {
      layer[d] = Math.max(layer[d], layer[i] + 1);
      if (--indeg[d] === 0) queue.push(d);
    }
  }
  if (topo.length < tasks.length) { // a cycle (the loader refuses them): draw anyway
    const seen = new Set(topo);
    tasks.forEach((_, i) => { if (!seen.has(i)) topo.push(i); });
  }

  const tIndex = new Array(tasks.length);
  topo.forEach((i, k) => { tIndex[i] = k; });
  const nLayers = Math.max(0, ...layer) + 1;
  const cols = Array.from({ length: nLayers }, () => []);
  topo.forEach((i) => cols[layer[i]].push(i));
  const groups = tasks.map(groupsOf);
  const pos = new Array(tasks.length);
  const setPos = () => cols.forEach((col) => col.forEach((i, k) => { pos[i] = k; }));
  // first order: by group path then topological position, so group members start together
  for (const col of cols) col.sort((a, b) => cmpArr(groups[a], groups[b]) || tIndex[a] - tIndex[b]);
  setPos();
  const bary = (i, nb) => (nb[i].length ? nb[i].reduce((s, j) => s + pos[j], 0) / nb[i].length : pos[i]);
  for (let sweep = 0; sweep < 4; sweep++) {
    const forward = sweep % 2 === 0;
    const order = forward ? cols : cols.slice().reverse();
    for (const col of order) {
      const b = new Map(col.map((i) => [i, bary(i, forward ? up : down)]));
      // a group's key is the mean of its members' barycentres in this column
      const gkey = new Map();
      for (const i of col) for (const g of groups[i]) {
        const e = gkey.get(g) || [0, 0];
        e[0] += b.get(i); e[1]++;
        gkey.set(g, e);
      }
      const key = (i) => [...groups[i].map((g) => gkey.get(g)[0] / gkey.get(g)[1]), b.get(i)];
      const keys = new Map(col.map((i) => [i, key(i)]));
      col.sort((x, y) => {
        const gx = groups[x], gy = groups[y];
        // compare level by level while both are inside the same groups
        let k = 0;
        while (k < gx.length && k < gy.length && gx[k] === gy[k]) k++;
        const kx = keys.get(x)[Math.min(k, gx.length)], ky = keys.get(y)[Math.min(k, gy.length)];
        return kx - ky || x - y;
      });
      col.forEach((i, k) => { pos[i] = k; });
    }
  }

  // y: down each column, with room for the labels and padding of the groups entered/left
  const depthMax = Math.max(0, ...groups.map((g) => g.length));
  const top = PAD + depthMax * (PAD + LABEL);
  const ny = new Array(tasks.length);
  const colH = cols.map((col) => {
    let y = 0;
    col.forEach((i, k) => {
      if (k) {
        const a = groups[col[k - 1]], b = groups[i];
        let c = 0;
        while (c < a.length && c < b.length && a[c] === b[c]) c++;
        y += H + GY + (a.length - c) * PAD + (b.length - c) * (PAD + LABEL);
      }
      ny[i] = y;
    });
    return y + H;
  });
  const maxH = Math.max(H, ...colH);
  const nodes = tasks.map((t, i) => {
    const offset = (maxH - colH[layer[i]]) / 2; // centre short columns
    return { i, id: t.task_id, x: PAD + depthMax * PAD + layer[i] * (W + GX), y: top + offset + ny[i], groups: groups[i] };
  });
  const edges = [];
  down.forEach((ds, i) => ds.forEach((d) => edges.push([i, d])));
  // group boxes: bounding box of members, widened per nesting level
  const boxes = new Map();
  for (const n of nodes) n.groups.forEach((g, level) => {
    const b = boxes.get(g) || { id: g, level, x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    b.x0 = Math.min(b.x0, n.x); b.y0 = Math.min(b.y0, n.y);
    b.x1 = Math.max(b.x1, n.x + W); b.y1 = Math.max(b.y1, n.y + H);
    boxes.set(g, b);
  });
  // nested groups sit inside their parents: padding and label room grow with the levels below
  const inner = new Map();
  for (const n of nodes) n.groups.forEach((g, level) => inner.set(g, Math.max(inner.get(g) || 0, n.groups.length - level)));
  const groupBoxes = [...boxes.values()].map((b) => {
    const d = inner.get(b.id), p = PAD * d;
    return { ...b, x: b.x0 - p, y: b.y0 - p - LABEL * d, w: b.x1 - b.x0 + 2 * p, h: b.y1 - b.y0 + 2 * p + LABEL * d };
  }).sort((a, b) => a.level - b.level);
  const width = Math.max(...nodes.map((n) => n.x + W), 0) + PAD * (depthMax + 1);
  const height = Math.max(...nodes.map((n) => n.y + H), 0) + PAD * (depthMax + 1);
  return { nodes, edges, groupBoxes, width, height };
}

function cmpArr(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length - b.length;
}

const short = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

// Draw into container. stateOf(task_id) -> state or undefined; hrefOf(task_id) -> link.
export function renderGraph(container, tasks, stateOf, hrefOf, selected) {
  if (!tasks.length) {
    put(container, h`<p class="empty">This DAG has no tasks.</p>`);
    return null;
  }
  const L = layout(tasks);
  const edgePath = ([a, b]) => {
    const s = L.nodes[a], t = L.nodes[b];
    const x1 = s.x + W, y1 = s.y + H / 2, x2 = t.x - 4, y2 = t.y + H / 2, mx = (x1 + x2) / 2;
    return `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
  };
  put(container, h`<div class="graph-wrap"><svg class="graph" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}" role="group" aria-label="Graph of ${tasks.length} tasks">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>
    ${L.groupBoxes.map((b) => h`<g class="tg"><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/><text x="${b.x + 8}" y="${b.y + 13}">${b.id.split('.').pop()}</text></g>`)}
    ${L.edges.map((e) => h`<path class="edge" d="${edgePath(e)}" marker-end="url(#arrow)"/>`)}
    ${L.nodes.map((n) => {
      const st = stateOf(n.id);
      const label = n.groups.length ? n.id.slice(n.groups[n.groups.length - 1].length + 1) || n.id : n.id;
      return h`<a href="${hrefOf(n.id)}" class="node st-${st === undefined ? 'absent' : st || 'none'}${n.id === selected ? ' sel' : ''}" data-task="${n.id}" aria-label="${n.id}: ${st === undefined ? 'not run' : st || 'no status'}">
        <title>${n.id} — ${st === undefined ? 'not in the selected run' : st || 'no status'}</title>
        <rect x="${n.x}" y="${n.y}" width="${W}" height="${H}" rx="5"/>
        <text x="${n.x + 10}" y="${n.y + H / 2 + 4}">${short(label, 24)}</text></a>`;
    })}
  </svg></div>`);
  return L;
}

// Recolour one node after a state change (no relayout).
export function updateNode(container, taskId, state) {
  const a = container.querySelector(`a.node[data-task="${CSS.escape(taskId)}"]`);
  if (!a) return;
  a.setAttribute('class', a.getAttribute('class').replace(/\bst-\S+/, 'st-' + (state || 'none')));
  a.setAttribute('aria-label', `${taskId}: ${state || 'no status'}`);
  a.querySelector('title').textContent = `${taskId} — ${state || 'no status'}`;
}
