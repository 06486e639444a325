// Admin dashboard: renders the cluster view pushed over /admin/stream once a second.
//
// Rules: data reaches the DOM through textContent only (instance ids and symbols come from the
// network). The server keeps the 15-minute history and sends it on connect, so a reload or a
// reconnect redraws the whole window; afterwards each `stats` message adds one point.
// An instance that leaves stays in the table, greyed, with why and when, and a banner says so.
// A draining instance (SIGTERMed, saying goodbye to its clients) shows `draining` until it leaves.
// Instance rows sort by any column (click its header; again to reverse). Charts: hover values in
// the legend, time axis labels spaced to stay readable, and a y range that follows the data in
// view without letting one spike flatten the rest (the top is the 99th percentile, +15 %).

const WINDOW_S = 15 * 60;
const GONE_KEEP_S = 300;
const $ = (sel) => document.querySelector(sel);

const points = [];
const lastKnown = new Map(); // id -> last INST seen, to show a departed instance's last numbers
const charts = {};
let lastPointT = 0;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

// --- charts --------------------------------------------------------------------------------

/** [0, a robust top]: the 99th percentile of the values in view, so one spike stays a spike. */
function robustRange(u, dataMin, dataMax) {
  const [lo, hi] = [u.scales.x.min, u.scales.x.max];
  const xs = u.data[0];
  const values = [];
  for (let s = 1; s < u.data.length; s++) {
    u.data[s].forEach((v, i) => {
      if (v !== null && v !== undefined && xs[i] >= lo && xs[i] <= hi) values.push(v);
    });
  }
  if (!values.length) return [0, 1];
  values.sort((a, b) => a - b);
  const top = values[Math.min(values.length - 1, Math.floor(values.length * 0.99))];
  return [Math.min(0, dataMin ?? 0), Math.max(top * 1.15, 1)];
}

const chartWidth = (box) => Math.max(240, box.clientWidth);

function makeChart(id, series, digits = 0) {
  const box = $(id);
  const css = getComputedStyle(document.documentElement);
  const stroke = css.getPropertyValue("--muted").trim();
  const grid = { stroke: css.getPropertyValue("--line").trim() };
  const opts = {
    width: chartWidth(box),
    height: 180,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } }, // drag to zoom in time; double-click to reset
    scales: { x: { time: true }, y: { range: robustRange } },
    axes: [
      { stroke, grid, space: 90 },
      { stroke, grid, size: 56 },
    ],
    series: [
      {},
      ...series.map(([label, color]) => ({
        label,
        stroke: color,
        width: 2,
        spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? "–" : fmt(v, digits)),
      })),
    ],
  };
  return new uPlot(opts, [[], ...series.map(() => [])], box);
}

function setupCharts() {
  charts.connections = makeChart("#chart-connections", [["connections", "#60a5fa"], ["instances", "#f59e0b"]]);
  charts.ticks = makeChart("#chart-ticks", [["in", "#22c55e"], ["out", "#a78bfa"]]);
  charts.latency = makeChart("#chart-latency", [["p50", "#60a5fa"], ["p99", "#f43f5e"]], 1);
  window.addEventListener("resize", () => {
    for (const [key, chart] of Object.entries(charts)) {
      chart.setSize({ width: chartWidth($(`#chart-${key}`)), height: 180 });
    }
  });
}

let drawPending = false;
function drawCharts() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    const xs = points.map((p) => p.t);
    charts.connections.setData([xs, points.map((p) => p.connections), points.map((p) => p.instances)]);
    charts.ticks.setData([xs, points.map((p) => p.ticks_in_per_s), points.map((p) => p.ticks_sent_per_s)]);
    charts.latency.setData([xs, points.map((p) => p.p50), points.map((p) => p.p99)]);
  });
}

function addPoint(point) {
  if (!point || point.t <= lastPointT) return;
  lastPointT = point.t;
  points.push(point);
  const horizon = point.t - WINDOW_S;
  while (points.length && points[0].t < horizon) points.shift();
  drawCharts();
}

// --- tables and cards ---------------------------------------------------------------------

function instanceRow(inst, state, now) {
  const bt = inst.by_transport || {};
  const totals = inst.totals || {};
  const lat = inst.latency_ms || {};
  const errors = Object.entries(inst.errors_by_code || {}).map(([c, n]) => `${c}:${n}`).join(" ");
  const broker = inst.broker || {};
  const row = el("tr");
  row.dataset.instance = inst.id;
  row.dataset.state = state.kind;
  const cells = [
    [inst.id],
    [state.text, "state"],
    [inst.connections, "n"], [bt.websocket, "n"], [bt.sse, "n"], [bt.longpoll, "n"],
    [fmt(inst.ticks_in_per_s), "n"], [fmt(inst.ticks_sent_per_s), "n"], [fmt(inst.frames_sent_per_s), "n"],
    [fmt(totals.conflated, 0), "n"], [fmt(totals.stale, 0), "n"], [fmt(totals.duplicates, 0), "n"],
    [fmt(totals.malformed, 0), "n"], [errors || "–"], [fmt(lat.p50), "n"], [fmt(lat.p99), "n"],
    [broker.kind ? `${broker.kind} ${broker.healthy ? "ok" : "DOWN"}` : "–", broker.healthy ? "" : "bad"],
    [state.kind !== "gone" && inst.started_at ? duration(now - inst.started_at) : "–", "n"],
    [state.kind !== "gone" ? `${fmt(inst.age_s)}s ago` : "–", "n"],
  ];
  for (const [text, cls] of cells) row.append(el("td", text, cls));
  return row;
}

// Sort state of the instance table: column index and direction; null keeps the server's order.
const instanceSort = { col: null, dir: 1 };

function cellValue(row, col) {
  const text = row.children[col]?.textContent ?? "";
  const number = Number(text.replace(/[,\s]|s ago$|ms$/g, ""));
  return text !== "–" && text !== "" && Number.isFinite(number) ? number : text;
}

function sortInstanceRows(rows) {
  if (instanceSort.col === null) return rows;
  const { col, dir } = instanceSort;
  return [...rows].sort((a, b) => {
    const x = cellValue(a, col);
    const y = cellValue(b, col);
    if (typeof x === "number" && typeof y === "number") return dir * (x - y);
    return dir * String(x).localeCompare(String(y));
  });
}

function setupInstanceSort() {
  $("#instances thead").addEventListener("click", (ev) => {
    const button = ev.target.closest("button.sort");
    if (!button) return;
    const th = button.closest("th");
    const col = [...th.parentElement.children].indexOf(th);
    instanceSort.dir = instanceSort.col === col ? -instanceSort.dir : 1;
    instanceSort.col = col;
    for (const other of th.parentElement.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", instanceSort.dir > 0 ? "ascending" : "descending");
    const body = $("#instances tbody");
    body.replaceChildren(...sortInstanceRows([...body.children]));
  });
}

function renderInstances(cluster, now) {
  const body = $("#instances tbody");
  const rows = [];
  const liveIds = new Set();
  for (const inst of cluster.instances) {
    liveIds.add(inst.id);
    lastKnown.set(inst.id, inst);
    const state = inst.draining ? { kind: "draining", text: "draining" } : { kind: "live", text: "live" };
    rows.push(instanceRow(inst, state, now));
  }
  const alerts = $("#alerts");
  alerts.replaceChildren();
  for (const gone of cluster.departed || []) {
    if (liveIds.has(gone.id) || gone.ago_s > GONE_KEEP_S) continue;
    const why = gone.reason === "left" ? "shut down" : "stopped sending heartbeats";
    const text = `${gone.reason === "left" ? "left" : "LOST"} ${duration(gone.ago_s)} ago`;
    const last = gone.last || lastKnown.get(gone.id) || { id: gone.id };
    rows.push(instanceRow({ ...last, id: gone.id }, { kind: "gone", text }, now));
    const had = last.connections ? ` It had ${last.connections} connection(s); they are no longer counted.` : "";
    const banner = el("p", `Instance ${gone.id} ${why} and left the cluster ${duration(gone.ago_s)} ago.${had}`, "alert");
    banner.dataset.departed = gone.id;
    banner.setAttribute("role", "alert");
    alerts.append(banner);
  }
  body.replaceChildren(...sortInstanceRows(rows));
  const departed = (cluster.departed || []).filter((d) => d.ago_s <= GONE_KEEP_S).length;
  $("#departed-count").textContent = departed ? `${departed} left recently` : "";
}

function renderSymbols(symbols) {
  const entries = Object.entries(symbols).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const rows = entries.map(([symbol, count]) => {
    const row = el("tr");
    row.dataset.symbol = symbol;
    row.append(el("td", symbol), el("td", count, "n"));
    return row;
  });
  $("#symbols tbody").replaceChildren(...rows);
  $("#no-symbols").hidden = rows.length > 0;
}

function render(view) {
  const cluster = view.cluster;
  const now = view.time;
  $('[data-stat="cluster-connections"]').textContent = cluster.connections;
  $('[data-stat="cluster-instances"]').textContent = cluster.instances.length;
  $('[data-stat="ticks-in"]').textContent = fmt(cluster.ticks_in_per_s);
  $('[data-stat="ticks-out"]').textContent = fmt(cluster.ticks_sent_per_s);
  $('[data-stat="latency"]').textContent = `${fmt(cluster.latency_ms.p50)} / ${fmt(cluster.latency_ms.p99)} ms`;
  const bt = cluster.by_transport;
  $("#by-transport").textContent = `ws ${bt.websocket} · sse ${bt.sse} · poll ${bt.longpoll}`;
  renderInstances(cluster, now);
  renderSymbols(cluster.symbols);
  $("#updated").textContent = `updated ${new Date(now * 1000).toLocaleTimeString()}`;
}

// --- the stream ---------------------------------------------------------------------------

function setStatus(state, text) {
  const pill = $("#status");
  pill.dataset.state = state;
  pill.textContent = text;
}

let backoff = 500;
function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/admin/stream`);
  ws.addEventListener("open", () => {
    backoff = 500;
    setStatus("live", "live");
  });
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "history") {
      points.length = 0;
      lastPointT = 0;
      for (const point of msg.points) addPoint(point);
    } else if (msg.type === "stats") {
      render(msg.stats);
      addPoint(msg.point);
    }
  });
  ws.addEventListener("close", async () => {
    setStatus("down", "reconnecting…");
    // A refused handshake looks like any other close: ask the API whether the login still holds.
    const probe = await fetch("/admin/api/stats", { credentials: "same-origin" }).catch(() => null);
    if (probe && probe.status === 401) {
      location.assign("/admin/login");
      return;
    }
    setTimeout(connect, backoff + Math.random() * backoff);
    backoff = Math.min(backoff * 2, 8000);
  });
}

setupCharts();
setupInstanceSort();
connect();
