// The Node baselines' tick source: the same random walk, seq scheme and pacing as the Python feeds
// (publisher/feed.py + publisher/pacing.py): round-robin over symbols, absolute deadlines, all due
// ticks per wake-up (2 ms minimum sleep), restart after a stall over 1 s.
"use strict";

const DEFAULT_PRICES = { AAPL: 190, MSFT: 420, GOOG: 175, AMZN: 185, NVDA: 120, TSLA: 250, META: 500 };
const cents = (p) => Math.max(Math.round(p * 100) / 100, 0.01);

function gauss() {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function runFeed(symbols, rate, onTick) {
  if (!(rate > 0) || symbols.length === 0) return;
  const base = Date.now() * 1000;
  const open = symbols.map((s) => DEFAULT_PRICES[s] || Math.round((10 + Math.random() * 490) * 100) / 100);
  const current = open.slice();
  const seqs = symbols.map(() => base);
  let i = 0;
  let origin = performance.now();
  let count = 0;
  const interval = 1000 / rate;
  const step = () => {
    for (let n = 0; n < 5000; n++) {
      const now = performance.now();
      const deadline = origin + count * interval;
      if (now < deadline) break;
      if (now - deadline > 1000) { origin = now; count = 0; }
      const k = i++ % symbols.length;
      current[k] *= Math.exp(gauss() * 0.0005);
      const price = cents(current[k]);
      const half = Math.max(cents(price * 0.0002), 0.01);
      onTick({
        symbol: symbols[k], price, seq: seqs[k]++, ts: Date.now(), open: open[k],
        bid: cents(price - half), ask: Math.round((price + half) * 100) / 100,
        volume: (1 + Math.floor(Math.random() * 50)) * 100,
      });
      count++;
    }
    setTimeout(step, Math.max(2, origin + count * interval - performance.now()));
  };
  step();
}

function feedConfig() {
  const symbols = (process.env.TICKER_SIM_SYMBOLS || "AAPL").split(",").filter(Boolean);
  return { symbols, rate: Number(process.env.TICKER_SIM_RATE || 20) };
}

module.exports = { runFeed, feedConfig };
