// Board: one row per symbol with the latest price, the change since first seen, an up/down
// flash and a sparkline of recent ticks.
//
// Rules: data reaches the DOM through textContent and attributes only, never innerHTML. Prices
// are written at once (the contract's `data-symbol` hook must show the latest price); charts
// are redrawn at most once per animation frame, however many ticks arrive.
//
// Sparklines use uPlot (vendored from npm): ~50 kB, canvas, and its setData() is cheap enough
// to call for every frame on dozens of rows. lightweight-charts draws nicer financial charts
// but is ~4x the size and built for one big chart with axes, not many tiny inline ones.

const SPARK_POINTS = 120;
const SPARK_HEIGHT = 36;
const COLORS = { up: "#22c55e", down: "#f43f5e", flat: "#94a3b8" };

/** At least two decimals, but never hide precision the producer published. */
export function formatPrice(price) {
  const text = String(price);
  const dot = text.indexOf(".");
  return dot === -1 || text.length - dot - 1 < 2 ? price.toFixed(2) : text;
}

function formatChange(abs, pct) {
  const sign = abs > 0 ? "+" : abs < 0 ? "−" : "±";
  return `${sign}${Math.abs(abs).toFixed(2)} (${sign}${Math.abs(pct).toFixed(2)}%)`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

class Row {
  constructor(symbol, onRemove) {
    this.symbol = symbol;
    this.first = null; // first price this page saw: the base of "change"
    this.last = null;
    this.xs = [];
    this.ys = [];

    this.node = el("div", "row");
    this.node.setAttribute("role", "row");
    this.node.dataset.symbol = symbol; // contract hook: its text includes the latest price
    this.node.dataset.trend = "flat";
    this.price = el("span", "price num", "—");
    this.change = el("span", "change num", "—");
    this.spark = el("span", "spark");
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.title = `Remove ${symbol}`;
    remove.setAttribute("aria-label", `Remove ${symbol}`);
    remove.addEventListener("click", () => onRemove(symbol));
    const cells = [el("span", "sym", symbol), this.price, this.change, this.spark, el("span", "actions")];
    cells[4].append(remove);
    for (const cell of cells) cell.setAttribute("role", "cell");
    this.node.append(...cells);
    this.chart = null;
  }

  /** Call once the row is in the document, so the chart can measure its width. */
  mount() {
    if (!window.uPlot) return; // the page still works without charts
    const width = this.spark.clientWidth || 160;
    this.chart = new window.uPlot(
      {
        width,
        height: SPARK_HEIGHT,
        cursor: { show: false },
        legend: { show: false },
        select: { show: false },
        scales: { x: { time: false } },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: () => COLORS[this.node.dataset.trend], width: 1.5, points: { show: false } }],
      },
      [[], []],
      this.spark,
    );
    this.resizer = new ResizeObserver(() => {
      const w = this.spark.clientWidth;
      if (w && w !== this.chart.width) this.chart.setSize({ width: w, height: SPARK_HEIGHT });
    });
    this.resizer.observe(this.spark);
  }

  /** Apply one tick; returns true when the chart needs a redraw. */
  apply(tick) {
    const price = Number(tick.price);
    if (!Number.isFinite(price)) return false;
    if (this.first === null) this.first = price;
    const direction = this.last === null ? 0 : Math.sign(price - this.last);
    this.last = price;

    this.price.textContent = formatPrice(price);
    const abs = price - this.first;
    this.change.textContent = formatChange(abs, (abs / this.first) * 100);
    this.node.dataset.trend = abs > 0 ? "up" : abs < 0 ? "down" : "flat";
    if (direction) this.flash(direction > 0 ? "flash-up" : "flash-down");

    this.xs.push(tick.seq);
    this.ys.push(price);
    if (this.xs.length > SPARK_POINTS) {
      this.xs.shift();
      this.ys.shift();
    }
    return true;
  }

  flash(name) {
    // Removing the class, forcing a style flush, then adding it restarts the CSS animation.
    this.price.classList.remove("flash-up", "flash-down");
    void this.price.offsetWidth;
    this.price.classList.add(name);
  }

  draw() {
    this.chart?.setData([this.xs, this.ys]);
  }

  destroy() {
    this.resizer?.disconnect();
    this.chart?.destroy();
    this.node.remove();
  }
}

export class Board {
  constructor(container, { onRemove }) {
    this.container = container;
    this.onRemove = onRemove;
    this.rows = new Map();
    this.dirty = new Set();
    this.frame = 0;
  }

  has(symbol) {
    return this.rows.has(symbol);
  }

  get size() {
    return this.rows.size;
  }

  add(symbol) {
    if (this.rows.has(symbol)) return;
    const row = new Row(symbol, this.onRemove);
    this.rows.set(symbol, row);
    this.container.append(row.node);
    row.mount();
  }

  remove(symbol) {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.destroy();
    this.rows.delete(symbol);
    this.dirty.delete(row);
  }

  update(ticks) {
    for (const tick of ticks) {
      const row = this.rows.get(tick.symbol);
      if (row?.apply(tick)) this.dirty.add(row);
    }
    if (this.dirty.size && !this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        for (const row of this.dirty) row.draw();
        this.dirty.clear();
      });
    }
  }
}
