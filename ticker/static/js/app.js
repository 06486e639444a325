// The live price page: wires the symbol picker, the board and the connection indicator to one
// TickerClient, and exposes that client as window.tickerClient for tests and debugging.

import { Board } from "./board.js";
import { TickerClient } from "./client.js";

// Same rule as the server (contract: 1-15 characters of A-Z 0-9 . -), checked here only to
// answer at once; the server checks again.
const SYMBOL_RE = /^[A-Z0-9.\-]{1,15}$/;

const config = JSON.parse(document.getElementById("ticker-config").textContent);
const notice = document.getElementById("notice");
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

function showStatus(client) {
  conn.root.dataset.state = client.state;
  conn.root.dataset.transport = client.transport;
  conn.state.textContent = client.state;
  conn.transport.textContent = client.transport;
  conn.latency.textContent = client.latencyMs === null ? "– ms" : `${client.latencyMs} ms`;
}

/** Keep ?symbols= in step with the board, so a reload or a shared link shows the same rows. */
function rememberSymbols() {
  const url = new URL(location.href);
  url.searchParams.set("symbols", [...board.rows.keys()].join(","));
  history.replaceState(null, "", url);
}

const board = new Board(document.getElementById("rows"), {
  onRemove(symbol) {
    board.remove(symbol);
    client.remove([symbol]);
    rememberSymbols();
  },
});

const client = new TickerClient({
  symbols: config.symbols,
  onTicks: (ticks) => board.update(ticks),
  onStatus: showStatus,
  onNotice: showNotice,
});

/** Why `symbol` cannot be added, or null when it can. */
function refusal(symbol) {
  if (!SYMBOL_RE.test(symbol)) return "A symbol is 1–15 characters of A–Z, 0–9, '.' and '-'.";
  if (board.has(symbol)) return `${symbol} is already shown.`;
  if (board.size >= config.maxSymbols) return `At most ${config.maxSymbols} symbols.`;
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
  return true;
}

document.getElementById("picker").addEventListener("submit", (ev) => {
  ev.preventDefault(); // a submit is how Enter and the Add button both arrive here
  const input = document.getElementById("picker-input");
  if (addSymbol(input.value)) input.value = "";
  input.focus();
});

config.symbols.forEach((symbol) => board.add(symbol));
window.tickerClient = client;
showStatus(client);
client.start();
