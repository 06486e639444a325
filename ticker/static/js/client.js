// TickerClient: one live feed of ticks for a changing set of symbols, over the best transport
// the browser and the network allow (contract: "WebSocket /ws" and "Fallbacks").
//
// Rules:
// - Resume state lives here, in memory, never on a server instance: `lastSeq` per symbol for
//   /ws (`since`), the opaque `cursor` for /sse and /poll. Any instance can serve a resume.
// - A tick whose seq is <= the last seen seq of its symbol is a duplicate and is dropped, so
//   callers see each symbol's ticks once and in order, whatever the transport or reconnects do.
// - Fallback is one way and automatic: websocket -> sse -> longpoll. A transport is skipped when
//   its API is not a constructor (`typeof`, not `in`: a property set to undefined, a WebView
//   stub), and abandoned on evidence: it failed FAILS_BEFORE_FALLBACK times without ever
//   working, or it never brought a single frame (not even a heartbeat) within FIRST_FRAME_MS of
//   being opened (a proxy that buffers text/event-stream, a WebSocket a middlebox swallows).
// - Reconnects use exponential backoff with full jitter; a `reconnect` frame skips the wait.
// - Freshness is computed, never assumed (see Freshness below): `state` is `live` only while
//   recent ticks arrived with a small lag.

import { Freshness } from "./freshness.js";

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;
const HEALTHY_AFTER_MS = 5_000; // a connection open this long resets the backoff
const FAILS_BEFORE_FALLBACK = 2;
const FIRST_FRAME_MS = 4_000; // an opened transport must bring a frame this soon, or it is left
const BOUNCE_MS = 1_000; // a `reconnect` frame this soon after connecting is not obeyed at once
const OFFLINE_AFTER_FAILS = 2; // consecutive failed attempts before `reconnecting` says `offline`
const STATUS_EVERY_MS = 250; // how often the shown lag and state are recomputed
// The server sends a heartbeat every `interval` s (15 by default, said in each heartbeat): a
// connection silent for 2 intervals + 5 s is dead (a killed instance, a half-open TCP connection)
// even though no close event ever comes.
const silenceLimitMs = (intervalS) => 2 * intervalS * 1000 + 5_000;

/** Full jitter: a uniform wait in [0, min(cap, base * 2^attempt)) (AWS architecture blog). */
export function backoffDelay(attempt) {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/** Transports this browser can construct, best first. */
export function usableTransports(scope = globalThis) {
  const order = [];
  if (typeof scope.WebSocket === "function") order.push("websocket");
  if (typeof scope.EventSource === "function") order.push("sse");
  if (typeof scope.fetch === "function" && typeof scope.AbortController === "function") order.push("longpoll");
  return order;
}

export class TickerClient {
  /**
   * @param {object} opts
   * @param {string[]} opts.symbols  initial symbols (already upper case)
   * @param {(ticks: object[]) => void} opts.onTicks  new ticks, in order per symbol
   * @param {(client: TickerClient) => void} opts.onStatus  state/transport/lag may have changed
   * @param {(message: string) => void} opts.onNotice  something the user should read
   */
  constructor({ symbols, onTicks, onStatus, onNotice }) {
    this.symbols = new Set(symbols);
    this.onTicks = onTicks;
    this.onStatus = onStatus;
    this.onNotice = onNotice;
    this.transports = usableTransports();

    // Public, read by the page and by the e2e tests through window.tickerClient.
    this.transport = this.transports[0] ?? "longpoll"; // websocket | sse | longpoll
    this.state = "connecting"; // connecting | live | behind | reconnecting | offline
    this.lastSeq = {}; // SYMBOL -> last seq accepted
    this.cursor = null; // opaque resume cursor of /sse and /poll
    this.ticksReceived = 0; // every tick that arrived, duplicates included
    this.framesReceived = 0; // every frame of any kind (ticks, heartbeats, control)
    this.duplicatesDropped = 0;
    this.gaps = 0; // unannounced seq jumps > 1 (legitimate when the server conflates for a slow client)
    this.resyncs = 0; // `resync` frames: the server said some ticks will never arrive
    this.recovered = null; // `recovered` of the last `subscribed` frame
    this.connects = 0; // successful (re)connections, any transport
    this.fallbacks = []; // [{from, to, why}] in order
    this.freshness = new Freshness();
    this.lagMs = null; // now - ts of recent ticks (median), or the age of the newest tick
    this.latencyMs = null; // kept for older callers: same as lagMs

    this._resyncing = new Set(); // symbols whose next tick may jump: announced by a `resync` frame
    this._attempt = 0; // consecutive failures, drives the backoff
    this._failsNeverOpened = 0; // failures of the current transport before it ever worked
    this._everOpened = false; // the current transport has brought frames at least once
    this._connected = false; // the current connection is open and has proven itself
    this._timer = null;
    this._healthyTimer = null;
    this._firstFrameTimer = null;
    this._openedAt = 0;
    this._conn = null; // the live WebSocket / EventSource / poll AbortController
    this._silenceTimer = null;
    this.silenceLimitMs = silenceLimitMs(15); // from the server's heartbeat interval, once known
    this._statusTimer = null;
    this._quietRestart = false; // an HTTP stream reopened for new symbols: not a disconnection
  }

  start() {
    this._statusTimer = setInterval(() => this._refresh(), STATUS_EVERY_MS);
    addEventListener("online", () => this._refresh());
    addEventListener("offline", () => this._refresh());
    if (!this.transports.length) {
      this.onNotice("This browser can open no connection to the server (no WebSocket, EventSource or fetch).");
      this._setState("offline");
      return;
    }
    this._connect();
  }

  /** Show more symbols; returns those that were new. */
  add(symbols) {
    const fresh = symbols.filter((s) => !this.symbols.has(s));
    if (!fresh.length) return fresh;
    fresh.forEach((s) => this.symbols.add(s));
    if (this.transport === "websocket") {
      this._sendWs({ op: "subscribe", symbols: fresh, since: this._since(fresh) });
    } else {
      this._restartHttp();
    }
    return fresh;
  }

  remove(symbols) {
    const gone = symbols.filter((s) => this.symbols.delete(s));
    if (!gone.length) return;
    // Forget the cursor so that adding the symbol again starts from a fresh snapshot.
    gone.forEach((s) => delete this.lastSeq[s]);
    if (this.transport === "websocket") this._sendWs({ op: "unsubscribe", symbols: gone });
    else this._restartHttp();
  }

  // ---- frames and ticks (shared by every transport) ----

  _handleFrame(frame) {
    if (!frame || typeof frame !== "object") return;
    this.framesReceived += 1;
    this._proven();
    if (frame.type === "ticks" || (frame.type === undefined && Array.isArray(frame.ticks))) {
      // A long-poll answer with `"resync": true` carries the snapshot of its symbols.
      if (frame.resync === true && Array.isArray(frame.ticks)) {
        frame.ticks.forEach((t) => t && typeof t.symbol === "string" && this._resyncing.add(t.symbol));
      }
      this._acceptTicks(frame.ticks);
    } else if (frame.type === "subscribed") {
      this.recovered = Boolean(frame.recovered);
      this.freshness.resubscribed(Date.now());
    } else if (frame.type === "error") {
      this.onNotice(`Server: ${String(frame.message ?? frame.code ?? "error")}`);
    } else if (frame.type === "reconnect") {
      this._reconnectNow();
    } else if (frame.type === "resync" && Array.isArray(frame.symbols)) {
      // What follows for these symbols is a fresh snapshot, taken whatever its seq: after a
      // producer's seq was poisoned (or reset) the server re-bases onto a lower lineage.
      this.resyncs += 1;
      frame.symbols.forEach((s) => this._resyncing.add(s));
    } else if (frame.type === "heartbeat") {
      if (Number(frame.interval) > 0) this.silenceLimitMs = silenceLimitMs(Number(frame.interval));
      this.freshness.heartbeat(Date.now(), Number(frame.ts));
      // The server closes a WebSocket that stays silent for 2 heartbeats + 5 s: answer each.
      if (typeof WebSocket === "function" && this._conn instanceof WebSocket && this._conn.readyState === WebSocket.OPEN) {
        this._conn.send('{"op":"ping"}');
      }
    }
    // unknown types: ignored on purpose, the server may add more.
  }

  _acceptTicks(ticks) {
    if (!Array.isArray(ticks)) return;
    const fresh = [];
    let newestTs = -Infinity;
    for (const tick of ticks) {
      if (!tick || typeof tick.symbol !== "string" || typeof tick.seq !== "number") continue;
      this.ticksReceived += 1;
      // Ticks of a symbol just removed may still be in flight: not ours any more.
      if (!this.symbols.has(tick.symbol)) continue;
      const last = this.lastSeq[tick.symbol];
      const announced = this._resyncing.delete(tick.symbol);
      if (last !== undefined && tick.seq <= last && !announced) {
        this.duplicatesDropped += 1;
        continue;
      }
      if (last !== undefined && tick.seq > last + 1 && !announced) this.gaps += 1;
      this.lastSeq[tick.symbol] = tick.seq;
      if (typeof tick.ts === "number" && tick.ts > newestTs) newestTs = tick.ts;
      fresh.push(tick);
    }
    if (!fresh.length) return;
    // One lag sample per frame: the newest tick's, taken as the frame is handled, so a main
    // thread that cannot keep up shows up as lag too.
    if (newestTs > -Infinity) this.freshness.ticks(Date.now(), newestTs, fresh.length);
    this.onTicks(fresh);
  }

  _since(symbols) {
    const since = {};
    for (const s of symbols) if (this.lastSeq[s] !== undefined) since[s] = this.lastSeq[s];
    return since;
  }

  // ---- state ----

  /** Recompute the shown state and lag from the evidence (every STATUS_EVERY_MS, and on change). */
  _refresh() {
    if (this._quietRestart && !this._connected) return;
    const now = Date.now();
    let state;
    if (this._connected) {
      const verdict = this.freshness.verdict(now);
      state = verdict.behind ? "behind" : "live";
      this.lagMs = verdict.lagMs;
    } else if (!this.connects) {
      state = navigator.onLine === false ? "offline" : "connecting";
      this.lagMs = this.freshness.ageMs(now);
    } else {
      const offline = navigator.onLine === false || this._attempt >= OFFLINE_AFTER_FAILS;
      state = offline ? "offline" : "reconnecting";
      this.lagMs = this.freshness.ageMs(now);
    }
    this.latencyMs = this.lagMs === null ? null : Math.round(this.lagMs);
    this.state = state;
    this.onStatus(this);
  }

  _setState(state) {
    this.state = state;
    this.onStatus(this);
  }

  // ---- connection lifecycle (shared) ----

  /** A connection object exists: it must bring its first frame within FIRST_FRAME_MS. */
  _opening(conn) {
    this._conn = conn;
    this._openedAt = performance.now();
    clearTimeout(this._firstFrameTimer);
    this._firstFrameTimer = setTimeout(() => {
      if (this._conn !== conn || this._connected) return;
      this._close();
      this._failed(`no frame within ${FIRST_FRAME_MS / 1000} s`, { noFrames: true });
    }, FIRST_FRAME_MS);
  }

  /** The first frame of this connection arrived: it works. */
  _proven() {
    if (this._connected) return;
    clearTimeout(this._firstFrameTimer);
    this._quietRestart = false;
    this._connected = true;
    this._everOpened = true;
    this._failsNeverOpened = 0;
    this.connects += 1;
    clearTimeout(this._healthyTimer);
    this._healthyTimer = setTimeout(() => (this._attempt = 0), HEALTHY_AFTER_MS);
    this.freshness.connected(Date.now());
    this._refresh();
  }

  /** The current connection is gone: retry with backoff, or fall back if it never worked. */
  _failed(why, { noFrames = false } = {}) {
    clearTimeout(this._healthyTimer);
    clearTimeout(this._firstFrameTimer);
    this._conn = null;
    this._connected = false;
    this._quietRestart = false;
    const next = this._nextTransport();
    // A transport that opened but never brought a frame is left at once; one that errors before
    // opening gets FAILS_BEFORE_FALLBACK tries.
    const giveUp = !this._everOpened && (noFrames || ++this._failsNeverOpened >= FAILS_BEFORE_FALLBACK);
    if (giveUp && next) {
      this._fallBack(next, why);
      return;
    }
    this._attempt += 1;
    this._refresh();
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), backoffDelay(this._attempt));
  }

  /** The server is closing this connection on purpose: reconnect at once, resuming. */
  _reconnectNow() {
    const bounced = performance.now() - this._openedAt < BOUNCE_MS;
    this._close();
    // A draining instance that keeps taking connections would otherwise bounce us in a tight loop.
    if (bounced) this._failed("reconnect frame right after connecting");
    else {
      this._setState("reconnecting");
      this._connect();
    }
  }

  _nextTransport() {
    const at = this.transports.indexOf(this.transport);
    return this.transports[at + 1] ?? null;
  }

  _fallBack(next, why) {
    this._close();
    console.info(`ticker: ${this.transport} unusable (${why}); using ${next}`);
    this.fallbacks.push({ from: this.transport, to: next, why });
    this.transport = next;
    this._everOpened = false;
    this._failsNeverOpened = 0;
    this._attempt = 0;
    this._refresh();
    this._connect();
  }

  _connect() {
    clearTimeout(this._timer);
    if (this.transport === "websocket") this._connectWs();
    else if (this.transport === "sse") this._connectSse();
    else this._pollLoop();
  }

  /** (Re)arm the dead-peer watchdog of `conn`: any frame from the server proves it alive. */
  _watchSilence(conn) {
    clearTimeout(this._silenceTimer);
    this._silenceTimer = setTimeout(() => {
      if (this._conn !== conn) return;
      this._close();
      this._failed("the server went silent");
    }, this.silenceLimitMs);
  }

  /** Drop the current connection without triggering a retry. */
  _close() {
    clearTimeout(this._timer);
    clearTimeout(this._silenceTimer);
    clearTimeout(this._healthyTimer);
    clearTimeout(this._firstFrameTimer);
    const conn = this._conn;
    this._conn = null; // handlers check identity, so a late event of `conn` is ignored
    this._connected = false;
    if (conn && typeof conn.abort === "function") conn.abort(); // a long poll's AbortController
    else if (conn) conn.close();
  }

  // ---- WebSocket ----

  _connectWs() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/ws`);
    } catch (err) {
      this._failed(String(err));
      return;
    }
    this._opening(ws);
    ws.onopen = () => {
      if (this._conn !== ws) return;
      const symbols = [...this.symbols];
      this._sendWs({ op: "subscribe", symbols, since: this._since(symbols) });
      this._watchSilence(ws);
    };
    ws.onmessage = (ev) => {
      if (this._conn !== ws) return;
      this._watchSilence(ws);
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return; // not ours to fix; the server never sends this
      }
      this._handleFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this._conn === ws) this._failed(`closed ${ev.code}`);
    };
  }

  _sendWs(message) {
    const ws = this._conn;
    // Not open yet: onopen subscribes to the whole current set, so nothing is lost.
    if (ws instanceof WebSocket && ws.readyState === WebSocket.OPEN && message.symbols.length) {
      ws.send(JSON.stringify(message));
    }
  }

  // ---- Server-sent events ----

  _httpQuery() {
    let q = `symbols=${encodeURIComponent([...this.symbols].join(","))}`;
    if (this.cursor) q += `&cursor=${encodeURIComponent(this.cursor)}`;
    return q;
  }

  _connectSse() {
    // EventSource sends Last-Event-ID itself on its own reconnects; `cursor` carries it across
    // the reopens we do (symbol changes, reconnect frames, fallbacks).
    let es;
    try {
      es = new EventSource(`/sse?${this._httpQuery()}`);
    } catch (err) {
      this._failed(String(err));
      return;
    }
    this._opening(es);
    es.onopen = () => {
      if (this._conn === es) this._watchSilence(es);
    };
    es.onmessage = (ev) => {
      if (this._conn !== es) return;
      this._watchSilence(es);
      if (ev.lastEventId) this.cursor = ev.lastEventId;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      this._handleFrame(frame);
    };
    es.onerror = () => {
      if (this._conn !== es) return;
      // Our own retries, not the browser's: they keep the backoff, the watchdogs and the cursor.
      es.close();
      this._close();
      this._failed("event stream error");
    };
  }

  /** Reopen the HTTP transport for a new symbol set, keeping the cursor. */
  _restartHttp() {
    // Not a loss of connection: the shown state stays as it was until the new stream proves itself.
    this._quietRestart = this._connected;
    this._close();
    if (this.symbols.size) this._connect();
  }

  // ---- Long polling ----

  async _pollLoop() {
    const ctl = new AbortController();
    this._opening(ctl);
    while (this._conn === ctl) {
      let body;
      try {
        const resp = await fetch(`/poll?${this._httpQuery()}`, { signal: ctl.signal, cache: "no-store" });
        body = await resp.json().catch(() => null);
        if (!resp.ok) {
          if (body?.type === "error") this._handleFrame(body);
          throw new Error(`HTTP ${resp.status}`);
        }
      } catch (err) {
        if (this._conn !== ctl) return; // aborted on purpose
        this._failed(String(err));
        return;
      }
      if (this._conn !== ctl) return;
      if (typeof body?.cursor === "string") this.cursor = body.cursor;
      // A poll that answered empty after its wait is the long-poll heartbeat.
      this._handleFrame(body);
    }
  }
}
