// Load client for the ticker benchmark: N WebSocket clients, each subscribed to K of S symbols.
//
// Rules: one process, one event loop, no work per tick beyond JSON.parse and a histogram bump.
// Latency per tick = receive time - tick.ts (epoch ms from the producer; same machine clock).
// Protocol "ticker" is the contract's /ws; "socketio" is Engine.IO v4 + Socket.IO v5 spoken
// directly over `ws`, so both stacks are measured with the same cheap client.
//
// Lifecycle (stdout is one JSON object per line):
//   connect all -> {"event":"ready",...}; then a line on stdin {"cmd":"measure","t0":ms,"t1":ms,
//   "grace":ms} -> count ticks whose ts is in [t0, t1) until t1 + grace -> {"event":"result",...}.
"use strict";

const WebSocket = require("ws");
const readline = require("readline");

const BUCKET_MS = 0.1; // histogram resolution
const MAX_MS = 60000;

function parseArgs(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return {
    url: out.url,
    proto: out.proto || "ticker",
    clients: Number(out.clients || 100),
    offset: Number(out.offset || 0), // global index of this process's first client
    symbols: (out.symbols || "").split(","),
    per: Number(out.per || 1),
    concurrency: Number(out.concurrency || 100),
    deflate: (out.deflate || "offer") === "offer",
    connectTimeout: Number(out["connect-timeout"] || 120000),
    // Clients come from 127.1.x.y, `perAddress` per source address, like many users behind few
    // NATs: servers that cap connections per address (the ticker does) see a realistic spread.
    perAddress: Number(out["per-address"] || 10),
  };
}

const opts = parseArgs(process.argv);
const hist = new Float64Array(Math.ceil(MAX_MS / BUCKET_MS) + 1);
const stats = {
  connected: 0, failed: 0, subscribed: 0, closedEarly: 0, frames: 0, ticks: 0,
  received: 0, gaps: 0, reordered: 0, bytes: 0, deflate: 0, errors: [],
};
let t0 = Infinity;
let t1 = Infinity;
const now = () => performance.timeOrigin + performance.now();
const PING = JSON.stringify({ op: "ping" });

function symbolsFor(index) {
  const out = [];
  for (let j = 0; j < opts.per; j++) out.push(opts.symbols[(index * opts.per + j) % opts.symbols.length]);
  return out;
}

const windows = []; // per client: symbol -> [first, last] seq of in-window ticks

function newClientState() {
  const state = { lastSeq: new Map(), win: new Map() };
  windows.push(state.win);
  return state;
}

// Per symbol, the most ticks any client saw the producer make in the window (last - first + 1):
// what a subscriber was owed, even if the feed ran ahead of or behind its nominal rate.
function produced() {
  const out = {};
  for (const win of windows) {
    for (const [symbol, [first, last]] of win) {
      const n = last - first + 1;
      if (!(out[symbol] >= n)) out[symbol] = n;
    }
  }
  return out;
}

function onTicks(ticks, state) {
  const lastSeq = state.lastSeq;
  const t = now();
  stats.ticks += ticks.length;
  for (let i = 0; i < ticks.length; i++) {
    const tick = ticks[i];
    const prev = lastSeq.get(tick.symbol);
    if (prev !== undefined) {
      if (tick.seq <= prev) stats.reordered++;
      else if (tick.seq !== prev + 1) stats.gaps++;
    }
    lastSeq.set(tick.symbol, tick.seq);
    if (tick.ts >= t0 && tick.ts < t1) {
      stats.received++;
      const range = state.win.get(tick.symbol);
      if (range === undefined) state.win.set(tick.symbol, [tick.seq, tick.seq]);
      else if (tick.seq > range[1]) range[1] = tick.seq;
      const ms = t - tick.ts;
      const b = ms <= 0 ? 0 : Math.min(hist.length - 1, Math.floor(ms / BUCKET_MS));
      hist[b]++;
    }
  }
}

function sourceAddress(index) {
  const a = Math.floor(index / opts.perAddress) + 1;
  return `127.1.${a >> 8}.${a & 255}`;
}

function socketOptions(index) {
  const origin = opts.url.replace(/^ws/, "http").replace(/^(https?:\/\/[^/]+).*$/, "$1");
  return { perMessageDeflate: opts.deflate, localAddress: sourceAddress(index), origin };
}

function openTicker(index, done) {
  const ws = new WebSocket(opts.url, socketOptions(index));
  const state = newClientState();
  let ready = false;
  ws.on("open", () => {
    stats.connected++;
    if (ws.extensions) stats.deflate++;
    ws.send(JSON.stringify({ op: "subscribe", symbols: symbolsFor(index) }));
  });
  ws.on("message", (data) => {
    stats.frames++;
    stats.bytes += data.length;
    const msg = JSON.parse(data);
    if (msg.type === "ticks") onTicks(msg.ticks, state);
    else if (msg.type === "heartbeat") ws.send(PING); // as the ticker's own page does
    else if (msg.type === "subscribed" && !ready) {
      ready = true;
      stats.subscribed++;
      done();
    }
  });
  watch(ws, () => ready, done);
}

function openSocketIO(index, done) {
  const base = opts.url.replace(/\/$/, "");
  const ws = new WebSocket(`${base}/socket.io/?EIO=4&transport=websocket`, socketOptions(index));
  const state = newClientState();
  let ready = false;
  ws.on("open", () => {
    stats.connected++;
    if (ws.extensions) stats.deflate++;
  });
  ws.on("message", (data) => {
    stats.frames++;
    stats.bytes += data.length;
    const text = data.toString();
    if (text.startsWith("42")) {
      const [event, body] = JSON.parse(text.slice(2));
      if (event === "ticks") onTicks(body.ticks, state);
      else if (event === "subscribed" && !ready) {
        ready = true;
        stats.subscribed++;
        done();
      }
    } else if (text === "2") ws.send("3"); // Engine.IO ping -> pong
    else if (text[0] === "0") ws.send("40"); // open -> connect to the main namespace
    else if (text.startsWith("40")) ws.send("42" + JSON.stringify(["subscribe", { symbols: symbolsFor(index) }]));
  });
  watch(ws, () => ready, done);
}

function watch(ws, isReady, done) {
  ws.on("error", (err) => {
    if (stats.errors.length < 5) stats.errors.push(String(err.message || err));
  });
  ws.on("close", () => {
    if (isReady()) stats.closedEarly++;
    else { stats.failed++; done(); } // connectAll counts each client once
  });
}

function connectAll(onAll) {
  const open = opts.proto === "socketio" ? openSocketIO : openTicker;
  let next = 0;
  let finished = 0;
  const launch = () => {
    if (next >= opts.clients) return;
    const index = opts.offset + next++;
    let counted = false;
    open(index, () => {
      if (counted) return;
      counted = true;
      finished++;
      if (finished === opts.clients) onAll();
      else launch();
    });
  };
  for (let i = 0; i < Math.min(opts.concurrency, opts.clients); i++) launch();
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function result(cpuStart, wallStart) {
  const cpu = process.cpuUsage(cpuStart);
  const wall = now() - wallStart;
  const sparse = {};
  for (let i = 0; i < hist.length; i++) if (hist[i]) sparse[i] = hist[i];
  const line = JSON.stringify({
    event: "result", ...stats, bucket_ms: BUCKET_MS, hist: sparse, produced: produced(),
    cpu_s: (cpu.user + cpu.system) / 1e6, wall_s: wall / 1000,
    rss_mb: process.memoryUsage().rss / 1048576,
  });
  // Pipes are asynchronous in Node: exit only once the (possibly large) line is flushed.
  process.stdout.write(line + "\n", () => process.exit(0));
}

const started = now();
const connectTimer = setTimeout(() => {
  emit({ event: "ready", ...stats, timeout: true, connect_s: (now() - started) / 1000 });
}, opts.connectTimeout);
connectAll(() => {
  clearTimeout(connectTimer);
  emit({ event: "ready", ...stats, connect_s: (now() - started) / 1000 });
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === "measure") {
    t0 = cmd.t0;
    t1 = cmd.t1;
    const waitStart = Math.max(0, t0 - now());
    setTimeout(() => {
      const cpuStart = process.cpuUsage();
      const wallStart = now();
      stats.frames = 0; stats.ticks = 0; stats.bytes = 0;
      setTimeout(() => result(cpuStart, wallStart), t1 + cmd.grace - now());
    }, waitStart);
  } else if (cmd.cmd === "quit") process.exit(0);
});
