// Baseline 3: Node socket.io, rooms per symbol, one `ticks` event per tick (encoded once per room).
// Protocol: emit "subscribe" {symbols} -> "subscribed" {symbols, recovered}; "ticks" {ticks: [tick]}.
// Usage: node socketio_server.js PORT  (TICKER_SIM_SYMBOLS, TICKER_SIM_RATE)
"use strict";

const http = require("http");
const { Server } = require("socket.io");
const { runFeed, feedConfig } = require("./feed");

const port = Number(process.argv[2] || 8080);
const server = http.createServer();
const io = new Server(server, { transports: ["websocket"], perMessageDeflate: false, serveClient: false });

io.on("connection", (socket) => {
  socket.on("subscribe", (msg) => {
    const symbols = (msg.symbols || []).map((s) => String(s).toUpperCase());
    socket.join(symbols);
    socket.emit("subscribed", { symbols, recovered: false });
  });
});

const { symbols, rate } = feedConfig();
runFeed(symbols, rate, (tick) => io.to(tick.symbol).emit("ticks", { ticks: [tick] }));
server.listen(port, "127.0.0.1", 4096);
