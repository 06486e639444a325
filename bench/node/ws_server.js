// Extra reference: Node `ws` broadcast, one frame per tick encoded once, the contract's /ws protocol.
// Usage: node ws_server.js PORT  (TICKER_SIM_SYMBOLS, TICKER_SIM_RATE)
"use strict";

const { WebSocketServer } = require("ws");
const { runFeed, feedConfig } = require("./feed");

const port = Number(process.argv[2] || 8080);
const wss = new WebSocketServer({ host: "127.0.0.1", port, backlog: 4096, perMessageDeflate: false });
const subscribers = new Map(); // symbol -> Set<WebSocket>

wss.on("connection", (ws) => {
  const mine = [];
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.op !== "subscribe") return;
    for (const raw of msg.symbols) {
      const symbol = String(raw).toUpperCase();
      if (!subscribers.has(symbol)) subscribers.set(symbol, new Set());
      subscribers.get(symbol).add(ws);
      mine.push(symbol);
    }
    ws.send(JSON.stringify({ type: "subscribed", symbols: msg.symbols, recovered: false }));
  });
  ws.on("close", () => { for (const s of mine) subscribers.get(s).delete(ws); });
});

const { symbols, rate } = feedConfig();
runFeed(symbols, rate, (tick) => {
  const subs = subscribers.get(tick.symbol);
  if (!subs || subs.size === 0) return;
  const text = JSON.stringify({ type: "ticks", ticks: [tick] });
  for (const ws of subs) ws.send(text);
});
