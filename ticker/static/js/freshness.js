// Freshness: is what the page shows current? Decided from evidence, recomputed continuously.
//
// Rules:
// - Lag = arrival time - tick `ts`, one sample per frame (its newest tick), taken when the page
//   handles the frame: a network that delays ticks and a main thread that cannot keep up both
//   show as lag. The shown lag is the median of the samples of the last WINDOW_MS.
// - Ticks right after a (re)connect or a subscribe are the snapshot and replays: old by design,
//   so samples taken within GRACE_MS of one are not counted.
// - `behind` when that median exceeds BEHIND_MS, or when ticks stop for much longer than they
//   used to come (max(STALL_MIN_MS, STALL_GAPS x the usual gap)): a quiet feed stays `live`, a
//   stalled busy one does not. With no recent sample the lag shown is the age of the newest
//   tick (now - its ts), which grows by itself: never a frozen number.
// - Clock skew between the producer and the browser counts as lag; on one machine it is ~0.

export const BEHIND_MS = 2_000;
const WINDOW_MS = 2_000;
const GRACE_MS = 1_500;
const STALL_MIN_MS = 3_000;
const STALL_GAPS = 10;
const MAX_SAMPLES = 512;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export class Freshness {
  constructor() {
    this.samples = []; // [arrival ms, lag ms], oldest first
    this.newestTs = null; // the newest tick `ts` seen
    this.lastTickAt = null; // when the last tick frame arrived
    this.gapMs = null; // smoothed time between tick frames
    this.graceUntil = 0;
  }

  /** A connection proved itself, or a subscribe was answered: a snapshot follows. */
  connected(now) {
    this.graceUntil = now + GRACE_MS;
    this.samples.length = 0;
  }

  resubscribed(now) {
    this.graceUntil = now + GRACE_MS;
  }

  heartbeat() {
    // Heartbeats prove the connection (the client's watchdog), not that ticks are current.
  }

  /** A frame of `count` new ticks whose newest `ts` is `newestTs` arrived at `now`. */
  ticks(now, newestTs, count) {
    if (this.newestTs === null || newestTs > this.newestTs) this.newestTs = newestTs;
    if (this.lastTickAt !== null) {
      const gap = now - this.lastTickAt;
      this.gapMs = this.gapMs === null ? gap : 0.9 * this.gapMs + 0.1 * gap;
    }
    this.lastTickAt = now;
    if (now < this.graceUntil || count <= 0) return;
    this.samples.push([now, Math.max(0, now - newestTs)]);
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES);
  }

  /** now - ts of the newest tick seen, or null before any. */
  ageMs(now) {
    return this.newestTs === null ? null : Math.max(0, now - this.newestTs);
  }

  /** {lagMs, behind, stalled} at `now`, for a connection that is open. */
  verdict(now) {
    const from = now - WINDOW_MS;
    let drop = 0;
    while (drop < this.samples.length && this.samples[drop][0] < from) drop += 1;
    if (drop) this.samples.splice(0, drop);
    if (this.samples.length) {
      const lagMs = median(this.samples.map((s) => s[1]));
      return { lagMs, behind: lagMs > BEHIND_MS, stalled: false };
    }
    const usual = this.gapMs === null ? null : Math.max(STALL_MIN_MS, STALL_GAPS * this.gapMs);
    const stalled = usual !== null && this.lastTickAt !== null && now - this.lastTickAt > usual;
    return { lagMs: this.ageMs(now), behind: stalled, stalled };
  }
}
