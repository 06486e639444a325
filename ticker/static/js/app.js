// The live price page: wires the symbol picker, the board and the connection indicator to one
// TickerClient, and exposes that client as window.tickerClient (and the board as
// window.tickerBoard) for tests and debugging.
//
// Rules:
// - The watchlist comes from `?symbols=` when the URL has one (a shared link wins), else from
//   localStorage, else the defaults; every change is written back to both.
// - The indicator carries the contract's data-connection-state and data-transport. It is not a
//   live region: a separate, visually hidden status announces state changes only (never prices,
//   which are read out on request with the "Read prices" button).

import { Board } from "./board.js";
import { TickerClient } from "./client.js";

// Same rule as the server (contract: 1-15 characters of A-Z 0-9 . -), checked here only to
// answer at once; the server checks again.
const SYMBOL_RE = /^[A-Z0-9.\-]{1,15}$/;
const STORAGE_KEY = "ticker.watchlist";
const STATE_WORDS = {
  live: "Live",
  behind: "Behind",
  connecting: "Connecting",
  reconnecting: "Reconnecting",
  offline: "Offline",
};

const config = JSON.parse(document.getElementById("ticker-config").textContent);
const notice = document.getElementById("notice");
const announcer = document.getElementById("announcer");
const table = document.getElementById("board");
const conn = {
  root: document.getElementById("conn"),
  state: document.getElementById("conn-state"),
  transport: document.getElementById("conn-transport"),
  latency: document.getElementById("conn-latency"),
};

function showNotice(message) {
  notice.textContent = message;
  notice.hidden = false;
}

function storedSymbols() {
  try {
    const list = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
    if (!Array.isArray(list)) return null;
    const valid = list.filter((s) => typeof s === "string" && SYMBOL_RE.test(s));
    return valid.length ? [...new Set(valid)].slice(0, config.maxSymbols) : null;
  } catch {
    return null; // storage disabled or garbage: the defaults will do
  }
}

/** Keep ?symbols= and localStorage in step with the board, so a reload shows the same rows. */
function rememberSymbols() {
  const symbols = [...board.rows.keys()];
  const url = new URL(location.href);
  url.searchParams.set("symbols", symbols.join(","));
  history.replaceState(null, "", url);
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(symbols));
  } catch {
    // private mode or quota: the URL still holds the list
  }
}

function formatLag(ms) {
  if (ms === null) return "– ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

let announcedState = null;
let announcedTransport = null;
function showStatus(client) {
  const { state, transport } = client;
  const root = conn.root;
  if (root.dataset.connectionState !== state) {
    root.dataset.connectionState = state;
    conn.state.textContent = state;
    table.dataset.stale = String(state === "reconnecting" || state === "offline");
  }
  if (root.dataset.transport !== transport) {
    root.dataset.transport = transport;
    conn.transport.textContent = transport;
  }
  // now - tick ts, recomputed four times a second: grows on its own when ticks stop.
  const lag = client.lagMs;
  const lagText = state === "live" || state === "behind" ? formatLag(lag) : lag === null ? "– ms" : `last tick ${formatLag(lag)} ago`;
  if (conn.latency.textContent !== lagText) conn.latency.textContent = lagText;
  if (state !== announcedState || transport !== announcedTransport) {
    const verb = STATE_WORDS[state] ?? state;
    const extra = state === "behind" ? `, prices are ${formatLag(lag)} late` : "";
    announcer.textContent = `Connection: ${verb} over ${transport}${extra}.`;
    announcedState = state;
    announcedTransport = transport;
  }
}

const board = new Board(table, {
  onRemove(symbol) {
    board.remove(symbol);
    client.remove([symbol]);
    rememberSymbols();
    announcer.textContent = `${symbol} removed.`;
  },
});

/** Why `symbol` cannot be added, or null when it can. */
function refusal(symbol) {
  if (!SYMBOL_RE.test(symbol)) return "A symbol is 1–15 characters of A–Z, 0–9, '.' and '-'.";
  if (board.has(symbol)) return `${symbol} is already shown.`;
  if (board.size >= config.maxSymbols) {
    return `The watchlist is full: at most ${config.maxSymbols} symbols. Remove one to add ${symbol}.`;
  }
  return null;
}

function addSymbol(raw) {
  const symbol = raw.trim().toUpperCase();
  const why = refusal(symbol);
  if (why) {
    showNotice(why);
    return false;
  }
  notice.hidden = true;
  board.add(symbol);
  client.add([symbol]);
  rememberSymbols();
  announcer.textContent = `${symbol} added.`;
  return true;
}

document.getElementById("picker").addEventListener("submit", (ev) => {
  ev.preventDefault(); // a submit is how Enter and the Add button both arrive here
  const input = document.getElementById("picker-input");
  if (addSymbol(input.value)) input.value = "";
  input.focus();
});

document.getElementById("read-prices").addEventListener("click", () => {
  announcer.textContent = board.summary() || "No symbols shown.";
});

// "/" jumps to the symbol box from anywhere but a text field.
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "/" || ev.target instanceof HTMLInputElement) return;
  ev.preventDefault();
  document.getElementById("picker-input").focus();
});

const symbols = config.fromQuery ? config.symbols : storedSymbols() ?? config.symbols;
const client = new TickerClient({
  symbols,
  onTicks: (ticks) => board.update(ticks),
  onStatus: showStatus,
  onNotice: showNotice,
});

symbols.forEach((symbol) => board.add(symbol));
if (!config.fromQuery && symbols !== config.symbols) rememberSymbols();
window.tickerClient = client;
window.tickerBoard = board;
showStatus(client);
client.start();
