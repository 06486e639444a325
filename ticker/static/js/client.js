// TickerClient: one live feed of ticks for a changing set of symbols, over the best transport
// the browser and the network allow (contract: "WebSocket /ws" and "Fallbacks").
//
// Rules:
// - Resume state lives here, in memory, never on a server instance: `lastSeq` per symbol for
//   /ws (`since`), the opaque `cursor` for /sse and /poll. Any instance can serve a resume.
// - A tick whose seq is <= the last seen seq of its symbol is a duplicate and is dropped, so
//   callers see each symbol's ticks once and in order, whatever the transport or reconnects do.
// - Fallback is one way and automatic: websocket -> sse -> longpoll, taken when the API is
//   missing or when a transport fails FAILS_BEFORE_FALLBACK times without ever having worked.
// - Reconnects use exponential backoff with full jitter; a `reconnect` frame skips the wait.

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;
const HEALTHY_AFTER_MS = 5_000; // a connection open this long resets the backoff
const FAILS_BEFORE_FALLBACK = 2;
const BOUNCE_MS = 1_000; // a `reconnect` frame this soon after connecting is not obeyed at once
const LATENCY_WINDOW = 51;
// The server sends a heartbeat every `interval` s (15 by default, said in each heartbeat): a
// WebSocket silent for 2 intervals + 5 s is dead (a killed instance, a half-open TCP connection)
// even though no close event ever comes.
const silenceLimitMs = (intervalS) => 2 * intervalS * 1000 + 5_000;

/** Full jitter: a uniform wait in [0, min(cap, base * 2^attempt)) (AWS architecture blog). */
export function backoffDelay(attempt) {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export class TickerClient {
  /**
   * @param {object} opts
   * @param {string[]} opts.symbols  initial symbols (already upper case)
   * @param {(ticks: object[]) => void} opts.onTicks  new ticks, in order per symbol
   * @param {(client: TickerClient) => void} opts.onStatus  state/transport/latency changed
   * @param {(message: string) => void} opts.onNotice  something the user should read
   */
  constructor({ symbols, onTicks, onStatus, onNotice }) {
    this.symbols = new Set(symbols);
    this.onTicks = onTicks;
    this.onStatus = onStatus;
    this.onNotice = onNotice;

    // Public, read by the page and by the e2e tests through window.tickerClient.
    this.transport = "websocket"; // websocket | sse | longpoll
    this.state = "connecting"; // connecting | live | reconnecting
    this.lastSeq = {}; // SYMBOL -> last seq accepted
    this.cursor = null; // opaque resume cursor of /sse and /poll
    this.ticksReceived = 0; // every tick that arrived, duplicates included
    this.duplicatesDropped = 0;
    this.gaps = 0; // unannounced seq jumps > 1 (legitimate when the server conflates for a slow client)
    this.resyncs = 0; // `resync` frames: the server said some ticks will never arrive
    this.recovered = null; // `recovered` of the last `subscribed` frame
    this.connects = 0; // successful (re)connections, any transport
    this.latencyMs = null; // rolling median of now - tick.ts

    this._latency = [];
    this._resyncing = new Set(); // symbols whose next tick may jump: announced by a `resync` frame
    this._attempt = 0; // consecutive failures, drives the backoff
    this._failsNeverOpened = 0; // failures of the current transport before it ever worked
    this._everOpened = false; // the current transport has worked at least once
    this._timer = null;
    this._healthyTimer = null;
    this._openedAt = 0;
    this._conn = null; // the live WebSocket / EventSource / poll AbortController
    this._silenceTimer = null;
    this.silenceLimitMs = silenceLimitMs(15); // from the server's heartbeat interval, once known
  }

  start() {
    if (!("WebSocket" in window)) this._fallBack("WebSocket is not available");
    else this._connect();
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
    if (frame.type === "ticks" || (frame.type === undefined && Array.isArray(frame.ticks))) {
      this._acceptTicks(frame.ticks);
    } else if (frame.type === "subscribed") {
      this.recovered = Boolean(frame.recovered);
    } else if (frame.type === "error") {
      this.onNotice(`Server: ${String(frame.message ?? frame.code ?? "error")}`);
    } else if (frame.type === "reconnect") {
      this._reconnectNow();
    } else if (frame.type === "resync" && Array.isArray(frame.symbols)) {
      // What follows for these symbols is a fresh snapshot. lastSeq stays: seqs only grow.
      this.resyncs += 1;
      frame.symbols.forEach((s) => this._resyncing.add(s));
    } else if (frame.type === "heartbeat" && this._conn instanceof WebSocket) {
      // The server closes a WebSocket that stays silent for 2 heartbeats + 5 s: answer each.
      if (Number(frame.interval) > 0) this.silenceLimitMs = silenceLimitMs(Number(frame.interval));
      if (this._conn.readyState === WebSocket.OPEN) this._conn.send('{"op":"ping"}');
    }
    // unknown types: ignored on purpose, the server may add more.
  }

  _acceptTicks(ticks) {
    if (!Array.isArray(ticks)) return;
    const fresh = [];
    const now = Date.now();
    for (const tick of ticks) {
      if (!tick || typeof tick.symbol !== "string" || typeof tick.seq !== "number") continue;
      this.ticksReceived += 1;
      // Ticks of a symbol just removed may still be in flight: not ours any more.
      if (!this.symbols.has(tick.symbol)) continue;
      const last = this.lastSeq[tick.symbol];
      if (last !== undefined && tick.seq <= last) {
        this.duplicatesDropped += 1;
        continue;
      }
      const announced = this._resyncing.delete(tick.symbol);
      if (last !== undefined && tick.seq > last + 1 && !announced) this.gaps += 1;
      this.lastSeq[tick.symbol] = tick.seq;
      if (typeof tick.ts === "number") this._sampleLatency(now - tick.ts);
      fresh.push(tick);
    }
    if (!fresh.length) return;
    if (this._latency.length) this.latencyMs = Math.round(median(this._latency));
    this.onTicks(fresh);
    this.onStatus(this);
  }

  // Snapshot and replayed ticks are old by design; a median over recent ticks shrugs them off
  // where a mean would not. It measures clock skew too when server and browser clocks differ.
  _sampleLatency(ms) {
    this._latency.push(ms);
    if (this._latency.length > LATENCY_WINDOW) this._latency.shift();
  }

  _since(symbols) {
    const since = {};
    for (const s of symbols) if (this.lastSeq[s] !== undefined) since[s] = this.lastSeq[s];
    return since;
  }

  // ---- connection lifecycle (shared) ----

  _setState(state) {
    this.state = state;
    this.onStatus(this);
  }

  _opened() {
    this._everOpened = true;
    this._failsNeverOpened = 0;
    this.connects += 1;
    this._openedAt = performance.now();
    this._setState("live");
    clearTimeout(this._healthyTimer);
    this._healthyTimer = setTimeout(() => (this._attempt = 0), HEALTHY_AFTER_MS);
  }

  /** The current connection is gone: retry with backoff, or fall back if it never worked. */
  _failed(why) {
    clearTimeout(this._healthyTimer);
    this._conn = null;
    const giveUp = !this._everOpened && ++this._failsNeverOpened >= FAILS_BEFORE_FALLBACK;
    if (giveUp && this.transport !== "longpoll") {
      this._fallBack(why);
      return;
    }
    this._setState("reconnecting");
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._connect(), backoffDelay(this._attempt++));
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

  _fallBack(why) {
    this._close();
    const next = this.transport === "websocket" && "EventSource" in window ? "sse" : "longpoll";
    console.info(`ticker: ${this.transport} unusable (${why}); using ${next}`);
    this.transport = next;
    this._everOpened = false;
    this._failsNeverOpened = 0;
    this._attempt = 0;
    this._setState("connecting");
    this._connect();
  }

  _connect() {
    clearTimeout(this._timer);
    if (this.transport === "websocket") this._connectWs();
    else if (this.transport === "sse") this._connectSse();
    else this._pollLoop();
  }

  /** (Re)arm the dead-peer watchdog of `ws`: any frame from the server proves it alive. */
  _watchSilence(ws) {
    clearTimeout(this._silenceTimer);
    this._silenceTimer = setTimeout(() => {
      if (this._conn !== ws) return;
      this._close();
      this._failed("the server went silent");
    }, this.silenceLimitMs);
  }

  /** Drop the current connection without triggering a retry. */
  _close() {
    clearTimeout(this._timer);
    clearTimeout(this._silenceTimer);
    clearTimeout(this._healthyTimer);
    const conn = this._conn;
    this._conn = null; // handlers check identity, so a late event of `conn` is ignored
    if (conn instanceof AbortController) conn.abort();
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
    this._conn = ws;
    ws.onopen = () => {
      if (this._conn !== ws) return;
      const symbols = [...this.symbols];
      this._sendWs({ op: "subscribe", symbols, since: this._since(symbols) });
      this._opened();
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
    const es = new EventSource(`/sse?${this._httpQuery()}`);
    this._conn = es;
    es.onopen = () => {
      if (this._conn === es) this._opened();
    };
    es.onmessage = (ev) => {
      if (this._conn !== es) return;
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
      // CONNECTING: the browser retries by itself. CLOSED: it gave up (HTTP error, wrong type).
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        this._failed("event stream closed");
      } else {
        this._setState("reconnecting");
      }
    };
  }

  /** Reopen the HTTP transport for a new symbol set, keeping the cursor. */
  _restartHttp() {
    this._close();
    if (this.symbols.size) this._connect();
  }

  // ---- Long polling ----

  async _pollLoop() {
    const ctl = new AbortController();
    this._conn = ctl;
    let first = true;
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
      if (first) {
        this._opened();
        first = false;
      }
      if (typeof body?.cursor === "string") this.cursor = body.cursor;
      this._handleFrame(body);
    }
  }
}
