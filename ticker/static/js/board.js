// Board: the watchlist table. One row per symbol: last price (with the direction of its last
// move), change and % against the day's `open` (or the first price seen when ticks carry no
// `open`), bid, ask, volume and when the row last updated; sortable columns; a price chart per
// symbol on demand.
//
// Rules:
// - Data reaches the DOM through textContent and attributes only, never innerHTML.
// - Ticks only update the row models; the DOM is written in one pass in an animation frame
//   (rAF), at most every RENDER_EVERY_MS, and a cell only when its text changed: 2,000 ticks/s
//   cost what 10 passes/s cost. Ten updates a second is faster than anyone reads a price, and
//   keeps the main thread free (the page scrolls and types at full frame rate while it streams).
// - Nothing forces a layout, and a write re-lays out little: each value sits in a fixed-size,
//   `contain: strict` span (a relayout boundary), and columns have fixed widths.
// - A flash means "the price moved since the last pass", in the colour of that move, at most
//   once per FLASH_EVERY_MS per row, for FLASH_MS: a tint set in one pass and cleared in a later
//   one (two repaints, not an animation repainting every frame). The arrow beside the price
//   shows the same move.
// - Sorting by a live column re-sorts at most once per RESORT_MS, so rows do not jump per tick.
// - Charts use uPlot (vendored from npm): canvas, time on the x axis, cheap setData().

const RENDER_EVERY_MS = 100;
const FLASH_EVERY_MS = 2_000;
const FLASH_MS = 300;
const RESORT_MS = 1_000;
const CHART_POINTS = 600;
const CHART_HEIGHT = 220;
const NO_DATA = "no data yet";

const COLUMNS = [
  { key: "symbol", label: "Symbol", num: false },
  { key: "price", label: "Last", num: true },
  { key: "change", label: "Change", num: true },
  { key: "pct", label: "%", num: true },
  { key: "bid", label: "Bid", num: true, extra: true },
  { key: "ask", label: "Ask", num: true, extra: true },
  { key: "volume", label: "Volume", num: true, extra: true },
  { key: "ts", label: "Updated", num: true },
];

/** At least two decimals, but never hide precision the producer published. */
export function formatPrice(price) {
  const text = String(price);
  const dot = text.indexOf(".");
  return dot === -1 || text.length - dot - 1 < 2 ? price.toFixed(2) : text;
}

const signOf = (v) => (v > 0 ? "+" : v < 0 ? "−" : "±");
const volumeFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const finite = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

class Row {
  constructor(symbol, board) {
    this.symbol = symbol;
    this.board = board;
    this.price = null;
    this.shownPrice = null; // the price the last frame wrote: flashes compare with it
    this.open = null;
    this.openFromTick = false;
    this.bid = null;
    this.ask = null;
    this.volume = null;
    this.ts = null;
    this.dir = "flat";
    this.lastFlash = -Infinity;
    this.flashing = false;
    this.xs = []; // chart points: seconds, price
    this.ys = [];
    this.chart = null;
    this.chartRow = null;
    this.texts = new Map(); // cell -> last text written

    this.node = el("tr", "row");
    this.node.setAttribute("role", "row");
    this.node.dataset.symbol = symbol; // contract hook: its text includes the latest price
    this.node.dataset.trend = "flat";
    this.node.dataset.dir = "flat";
    this.node.dataset.empty = "true";
    const symCell = el("th", "sym");
    symCell.scope = "row";
    symCell.setAttribute("role", "rowheader");
    this.toggle = el("button", "sym-btn", symbol);
    this.toggle.type = "button";
    this.toggle.setAttribute("aria-expanded", "false");
    this.toggle.setAttribute("aria-controls", `chart-${symbol}`);
    this.toggle.title = `Show the ${symbol} chart`;
    symCell.append(this.toggle);
    const cell = (className, text) => {
      const td = el("td", className);
      td.setAttribute("role", "cell");
      td.append(el("span", "v", text));
      return td;
    };
    this.tds = {
      price: cell("price num", "—"),
      change: cell("change num", "—"),
      pct: cell("pct num", "—"),
      bid: cell("bid num extra", "—"),
      ask: cell("ask num extra", "—"),
      volume: cell("volume num extra", "—"),
      ts: cell("updated num", NO_DATA),
    };
    this.cells = Object.fromEntries(Object.entries(this.tds).map(([k, td]) => [k, td.firstChild]));
    const actions = el("td", "actions");
    actions.setAttribute("role", "cell");
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.title = `Remove ${symbol}`;
    remove.setAttribute("aria-label", `Remove ${symbol}`);
    actions.append(remove);
    this.remove = remove;
    this.node.append(symCell, ...Object.values(this.tds), actions);
  }

  /** Take one tick into the model (no DOM work); false when it carries no usable price. */
  apply(tick) {
    const price = finite(tick.price);
    if (price === null) return false;
    this.price = price;
    const open = finite(tick.open);
    if (open !== null && open > 0) {
      this.open = open;
      this.openFromTick = true;
    } else if (this.open === null) {
      this.open = price; // no day open in the feed: change since first seen
    }
    this.bid = finite(tick.bid) ?? this.bid;
    this.ask = finite(tick.ask) ?? this.ask;
    this.volume = finite(tick.volume) ?? this.volume;
    if (typeof tick.ts === "number") this.ts = tick.ts;
    if (this.ts !== null) {
      this.xs.push(this.ts / 1000);
      this.ys.push(price);
      if (this.xs.length > 2 * CHART_POINTS) {
        this.xs.splice(0, this.xs.length - CHART_POINTS);
        this.ys.splice(0, this.ys.length - CHART_POINTS);
      }
    }
    return true;
  }

  get change() {
    return this.price === null || this.open === null ? null : this.price - this.open;
  }

  get pct() {
    const change = this.change;
    return change === null || !this.open ? null : (change / this.open) * 100;
  }

  /** Sort value of `key`. */
  value(key) {
    if (key === "symbol") return this.symbol;
    if (key === "change") return this.change;
    if (key === "pct") return this.pct;
    return this[key];
  }

  _write(cell, text) {
    if (this.texts.get(cell) === text) return;
    this.texts.set(cell, text);
    cell.textContent = text;
  }

  /** Clear a flash that has lasted FLASH_MS; true while it still shows. */
  unflash(now) {
    if (!this.flashing) return false;
    if (now - this.lastFlash < FLASH_MS) return true;
    this.flashing = false;
    delete this.tds.price.dataset.flash;
    return false;
  }

  /** Write the model into the row's cells (called from the board's frame). */
  render(now) {
    if (this.price === null) return;
    const { cells } = this;
    if (this.node.dataset.empty) delete this.node.dataset.empty;
    if (this.shownPrice !== null && this.price !== this.shownPrice) {
      this.dir = this.price > this.shownPrice ? "up" : "down";
      if (this.node.dataset.dir !== this.dir) this.node.dataset.dir = this.dir;
      if (now - this.lastFlash >= FLASH_EVERY_MS) {
        this.lastFlash = now;
        this.flashing = true;
        this.tds.price.dataset.flash = this.dir;
        this.board.flashing.add(this);
      }
    }
    this.shownPrice = this.price;
    this._write(cells.price, formatPrice(this.price));
    const change = this.change;
    const trend = change > 0 ? "up" : change < 0 ? "down" : "flat";
    if (this.node.dataset.trend !== trend) this.node.dataset.trend = trend;
    this._write(cells.change, `${signOf(change)}${Math.abs(change).toFixed(2)}`);
    this._write(cells.pct, `${signOf(change)}${Math.abs(this.pct).toFixed(2)}%`);
    this._write(cells.bid, this.bid === null ? "—" : formatPrice(this.bid));
    this._write(cells.ask, this.ask === null ? "—" : formatPrice(this.ask));
    this._write(cells.volume, this.volume === null ? "—" : volumeFormat.format(this.volume));
    this._write(cells.ts, this.ts === null ? "—" : timeFormat.format(this.ts));
    if (this.chart) this.chart.setData([this.xs, this.ys]);
  }

  /** A short spoken summary, for "read prices". */
  summary() {
    if (this.price === null) return `${this.symbol}: ${NO_DATA}`;
    const pct = this.pct;
    const moved = pct > 0 ? "up" : pct < 0 ? "down" : "unchanged";
    return `${this.symbol} ${formatPrice(this.price)}, ${moved} ${Math.abs(pct).toFixed(2)} percent`;
  }

  toggleChart() {
    if (this.chart || this.chartRow) this.closeChart();
    else this.openChart();
  }

  openChart() {
    const cols = this.node.children.length;
    this.chartRow = el("tr", "chart-row");
    this.chartRow.setAttribute("role", "row");
    const cell = el("td");
    cell.setAttribute("role", "cell");
    cell.colSpan = cols;
    const box = el("div", "chart");
    box.id = `chart-${this.symbol}`;
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", `${this.symbol} price over time`);
    cell.append(box);
    this.chartRow.append(cell);
    this.node.after(this.chartRow);
    this.toggle.setAttribute("aria-expanded", "true");
    this.node.dataset.open = "true";
    if (!window.uPlot) {
      box.textContent = "Charts are unavailable (the chart library did not load).";
      return;
    }
    const css = getComputedStyle(document.documentElement);
    const axis = { stroke: css.getPropertyValue("--muted").trim(), grid: { stroke: css.getPropertyValue("--line").trim() } };
    this.chart = new window.uPlot(
      {
        width: Math.max(240, box.clientWidth),
        height: CHART_HEIGHT,
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true } },
        axes: [{ ...axis, space: 80 }, { ...axis, size: 64 }],
        series: [
          { label: "time" },
          { label: this.symbol, stroke: css.getPropertyValue("--accent").trim(), width: 1.5, points: { show: false } },
        ],
      },
      [this.xs, this.ys],
      box,
    );
    this.resizer = new ResizeObserver(() => {
      const w = box.clientWidth;
      if (this.chart && w && Math.abs(w - this.chart.width) > 4) this.chart.setSize({ width: w, height: CHART_HEIGHT });
    });
    this.resizer.observe(box);
  }

  closeChart() {
    this.resizer?.disconnect();
    this.chart?.destroy();
    this.chart = null;
    this.chartRow?.remove();
    this.chartRow = null;
    this.toggle.setAttribute("aria-expanded", "false");
    delete this.node.dataset.open;
  }

  destroy() {
    this.closeChart();
    this.node.remove();
  }
}

export class Board {
  /**
   * @param {HTMLTableElement} table  with an empty <thead> and <tbody>
   * @param {{onRemove: (symbol: string) => void}} opts
   */
  constructor(table, { onRemove }) {
    this.table = table;
    this.body = table.tBodies[0];
    this.onRemove = onRemove;
    this.rows = new Map();
    this.dirty = new Set();
    this.flashing = new Set(); // rows whose flash must be cleared by a later pass
    this.scheduled = false;
    this.lastRender = -Infinity;
    this.frames = 0; // render passes done, for tests
    this.sort = { key: null, dir: 1 };
    this.lastSort = 0;
    this._buildHead();
    this.body.addEventListener("click", (ev) => this._onClick(ev));
    this.body.addEventListener("keydown", (ev) => this._onKey(ev));
  }

  has(symbol) {
    return this.rows.has(symbol);
  }

  get size() {
    return this.rows.size;
  }

  add(symbol) {
    if (this.rows.has(symbol)) return;
    const row = new Row(symbol, this);
    this.rows.set(symbol, row);
    this.body.append(row.node);
  }

  remove(symbol) {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.destroy();
    this.rows.delete(symbol);
    this.dirty.delete(row);
    this.flashing.delete(row);
  }

  /** Take ticks into the models; the DOM follows at the next animation frame. */
  update(ticks) {
    for (const tick of ticks) {
      const row = this.rows.get(tick.symbol);
      if (row?.apply(tick)) this.dirty.add(row);
    }
    this._schedule();
  }

  _schedule() {
    if ((!this.dirty.size && !this.flashing.size) || this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastRender + RENDER_EVERY_MS - performance.now();
    const frame = () => requestAnimationFrame(() => this._render());
    if (wait > 0) setTimeout(frame, wait);
    else frame();
  }

  _render() {
    this.scheduled = false;
    this.frames += 1;
    const now = performance.now();
    this.lastRender = now;
    for (const row of this.flashing) if (!row.unflash(now)) this.flashing.delete(row);
    for (const row of this.dirty) row.render(now);
    this.dirty.clear();
    this._schedule(); // flashes still to clear
    if (this.sort.key && this.sort.key !== "symbol" && now - this.lastSort >= RESORT_MS) this._applySort(now);
  }

  /** Summaries of every row, for a screen reader's "read prices". */
  summary() {
    return [...this._ordered()].map((row) => row.summary()).join(". ");
  }

  // ---- sorting ----

  _buildHead() {
    const tr = el("tr");
    tr.setAttribute("role", "row");
    this.heads = new Map();
    for (const col of COLUMNS) {
      const th = el("th", `col-${col.key}${col.num ? " num" : ""}${col.extra ? " extra" : ""}`);
      th.scope = "col";
      th.setAttribute("role", "columnheader");
      const button = el("button", "sort", col.label);
      button.type = "button";
      button.dataset.sort = col.key;
      button.title = `Sort by ${col.label === "%" ? "change %" : col.label.toLowerCase()}`;
      button.addEventListener("click", () => this.sortBy(col.key));
      th.append(button);
      tr.append(th);
      this.heads.set(col.key, th);
    }
    const last = el("th");
    last.scope = "col";
    last.setAttribute("role", "columnheader");
    last.append(el("span", "visually-hidden", "Remove"));
    tr.append(last);
    this.table.tHead.append(tr);
  }

  /** Sort by `key`; the same key again flips the direction. */
  sortBy(key) {
    const dir = this.sort.key === key ? -this.sort.dir : key === "symbol" ? 1 : -1;
    this.sort = { key, dir };
    for (const [k, th] of this.heads) {
      if (k === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    this._applySort(performance.now());
  }

  *_ordered() {
    if (!this.sort.key) {
      yield* this.rows.values();
      return;
    }
    const { key, dir } = this.sort;
    const rows = [...this.rows.values()];
    rows.sort((a, b) => {
      const x = a.value(key);
      const y = b.value(key);
      if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1; // no data: last
      if (typeof x === "string") return dir * x.localeCompare(y);
      return dir * (x - y) || a.symbol.localeCompare(b.symbol);
    });
    yield* rows;
  }

  _applySort(now) {
    this.lastSort = now;
    const wanted = [...this._ordered()];
    const current = [...this.body.querySelectorAll(":scope > tr.row")];
    if (wanted.every((row, i) => current[i] === row.node)) return;
    const focused = document.activeElement;
    for (const row of wanted) {
      this.body.append(row.node);
      if (row.chartRow) this.body.append(row.chartRow);
    }
    if (focused instanceof HTMLElement && this.body.contains(focused)) focused.focus();
  }

  // ---- pointer and keyboard ----

  _rowOf(target) {
    const tr = target.closest?.("tr.row");
    return tr ? this.rows.get(tr.dataset.symbol) : undefined;
  }

  _onClick(ev) {
    const row = this._rowOf(ev.target);
    if (!row) return;
    if (ev.target.closest(".remove")) this.onRemove(row.symbol);
    else row.toggleChart(); // the whole row is the target for a pointer; its button for keys
  }

  /** Up/Down move between rows' symbol buttons; Delete removes the focused row. */
  _onKey(ev) {
    const row = this._rowOf(ev.target);
    if (!row) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      const order = [...this.body.querySelectorAll(":scope > tr.row .sym-btn")];
      const at = order.indexOf(row.toggle);
      const next = order[at + (ev.key === "ArrowDown" ? 1 : -1)];
      if (next) {
        next.focus();
        ev.preventDefault();
      }
    } else if (ev.key === "Delete" && ev.target === row.toggle) {
      const order = [...this.body.querySelectorAll(":scope > tr.row .sym-btn")];
      const next = order[order.indexOf(row.toggle) + 1] ?? order[order.indexOf(row.toggle) - 1];
      this.onRemove(row.symbol);
      next?.focus();
      ev.preventDefault();
    }
  }
}
