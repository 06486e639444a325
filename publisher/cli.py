"""`python -m publisher` (also `ticker-publish`): publish simulated or replayed ticks to Pub/Sub.

Rule: arguments and replay files are validated completely before anything is published.

Packing: the ticks made within `--pack-ms` (default 10 ms) go out as one message
`{"ticks": [...]}`, up to `--pack-max` bytes (default 1 MB; Pub/Sub takes at most 10 MB per
request); a lone tick goes out as a plain one-tick message with the attribute `symbol`. No
ordering keys: with them, Pub/Sub's publisher serialises each key (one request in flight) and
its subscriber holds a key's next message until the previous one's ack, and consumers order by
`seq` anyway. Packing is also what Pub/Sub bills: at least 1,000 bytes per request.

Exit codes: 0 when done (duration reached, replay finished, or stopped by Ctrl-C/SIGTERM
after flushing); 1 when Pub/Sub cannot be reached or used (or refuses: permission denied), or a
replay could not publish every row; 2 for bad arguments or a bad replay file.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from publisher import feed
from publisher.pacing import Clock, Pacer, Packer, RateMeter
from publisher.sink import PubSubSink, SinkUnavailableError
from ticker.core.codec import tick_to_bytes
from ticker.core.errors import InvalidTick
from ticker.core.ticks import normalise_symbol

PROG = "ticker-publish"
FLUSH_TIMEOUT = 10.0
MAX_PACK_BYTES = 9_000_000  # under Pub/Sub's 10 MB request limit, with room for the envelope
MIN_SLEEP = 0.001  # shorter waits only cost wake-ups: due ticks go out together (absolute pacing)
BURST = 1000  # ticks made per wake-up at most (then stop, progress and capacity are looked at)
# Pub/Sub topic ids: 3-255 characters, starting with a letter.
TOPIC_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")

EPILOG = """\
replay CSV: a header row is required and must contain the columns symbol,price; optional
columns are volume,bid,ask,open (numbers) and delay_ms (an extra wait before that row, in ms).
seq and ts are always assigned by the publisher. The whole file is checked first: every bad row
is reported with its line number and nothing is published (exit 2). Rows are paced by --rate.

environment: GOOGLE_CLOUD_PROJECT (default project), TICKER_TOPIC (default topic),
PUBSUB_EMULATOR_HOST (use the Pub/Sub emulator at host:port).

packing: ticks made within --pack-ms go out as one message {"ticks": [...]} (at most --pack-max
bytes); a lone tick as a one-tick message with the attribute symbol. No ordering keys.

exit codes: 0 done or stopped by Ctrl-C/SIGTERM; 1 Pub/Sub unreachable or refusing (permission
denied), or a replay with failed publishes; 2 bad arguments or replay file.
"""


@dataclass(frozen=True, slots=True)
class Options:
    """Validated command-line options."""

    symbols: list[str]
    rate: float
    duration: float
    replay: Path | None
    topic: str
    project: str
    progress_interval: float
    max_in_flight: int
    connect_timeout: float
    seed: int | None
    pack_ms: float = 10.0
    pack_max: int = 1_000_000


def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    ok = value > 0 if positive else value >= 0
    if not (math.isfinite(value) and ok):
        raise argparse.ArgumentTypeError(f"must be {'> 0' if positive else '>= 0'}, got {text}")
    return value


def _positive(text: str) -> float:
    return _number(text, positive=True)


def _non_negative(text: str) -> float:
    return _number(text, positive=False)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _pack_ms(text: str) -> float:
    value = _non_negative(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"must be <= 1000 (ms), got {text}")
    return value


def _pack_max(text: str) -> int:
    value = _positive_int(text)
    if not 200 <= value <= MAX_PACK_BYTES:
        raise argparse.ArgumentTypeError(
            f"must be between 200 and {MAX_PACK_BYTES} (Pub/Sub takes 10 MB at most), got {text}"
        )
    return value


def _symbols(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.split(","):
        try:
            symbol = normalise_symbol(raw)
        except InvalidTick as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if symbol not in out:
            out.append(symbol)
    return out


def _topic(text: str) -> str:
    if not TOPIC_RE.fullmatch(text) or text.startswith("goog"):
        raise argparse.ArgumentTypeError(
            f"invalid topic id {text!r}: 3-255 characters of A-Z a-z 0-9 - _ . ~ + %, "
            "starting with a letter, not with 'goog'"
        )
    return text


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser; defaults that come from the environment are read from `environ`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Publish simulated (random-walk) or replayed stock ticks to a Pub/Sub topic.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--symbols",
        type=_symbols,
        default=list(feed.DEFAULT_PRICES),
        metavar="AAPL,MSFT,...",
        help=f"symbols for the random walk (default: {','.join(feed.DEFAULT_PRICES)})",
    )
    source.add_argument("--replay", type=Path, metavar="FILE.csv", help="replay ticks from a CSV")
    parser.add_argument(
        "--rate", type=_positive, default=10.0, help="ticks/s in total (default 10)"
    )
    parser.add_argument(
        "--duration", type=_non_negative, default=0.0, help="seconds to run; 0 = until stopped"
    )
    parser.add_argument(
        "--topic", type=_topic, default=environ.get("TICKER_TOPIC") or "prices", help="topic id"
    )
    parser.add_argument(
        "--project",
        default=environ.get("GOOGLE_CLOUD_PROJECT") or "ticker-local",
        help="Google Cloud project id",
    )
    parser.add_argument(
        "--progress-interval", type=_positive, default=5.0, help="seconds between progress lines"
    )
    parser.add_argument(
        "--max-in-flight", type=_positive_int, default=1000, help="cap on unacknowledged publishes"
    )
    parser.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        help="seconds to wait for Pub/Sub at start",
    )
    parser.add_argument("--seed", type=int, help="seed the random walk (reproducible prices)")
    parser.add_argument(
        "--pack-ms",
        type=_pack_ms,
        default=10.0,
        help="pack the ticks made within this many ms into one message (0 = one tick per "
        "message; default 10, at most 1000)",
    )
    parser.add_argument(
        "--pack-max",
        type=_pack_max,
        default=1_000_000,
        help=f"bytes per packed message at most (default 1000000, 200..{MAX_PACK_BYTES})",
    )
    return parser


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Options:
    """Parse and validate; exits with status 2 and an argparse-style message on a bad argument."""
    parser = build_parser(environ)
    ns = parser.parse_args(argv)
    if not ns.project.strip():
        parser.error("--project must not be empty")
    if ns.replay is not None and not ns.replay.is_file():
        parser.error(f"--replay: file not found: {ns.replay}")
    return Options(
        symbols=ns.symbols,
        rate=ns.rate,
        duration=ns.duration,
        replay=ns.replay,
        topic=ns.topic,
        project=ns.project.strip(),
        progress_interval=ns.progress_interval,
        max_in_flight=ns.max_in_flight,
        connect_timeout=ns.connect_timeout,
        seed=ns.seed,
        pack_ms=ns.pack_ms,
        pack_max=ns.pack_max,
    )


def _say(message: str, out: TextIO | None = None) -> None:
    print(f"{PROG}: {message}", file=out or sys.stderr, flush=True)


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def load_replay(path: Path) -> list[feed.ReplayRow] | None:
    """Read and validate a replay file; report every bad line and return None if any."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows, problems = feed.parse_replay(fh)
    except (OSError, UnicodeDecodeError) as exc:
        _say(f"error: cannot read {path}: {exc}")
        return None
    for problem in problems:
        _say(f"{path}: {problem}")
    if problems:
        _say(f"error: {path}: {len(problems)} bad line(s); nothing published")
        return None
    return rows


def make_steps(opts: Options, rows: list[feed.ReplayRow] | None) -> Iterator[feed.Step]:
    """The tick source: the replay rows when given, else a random walk over the symbols."""
    seqs = feed.SeqCounter(feed.seq_base(time.time()))
    if rows is not None:
        return feed.replay_steps(rows, seqs, _epoch_ms)
    rng = random.Random(opts.seed)
    walk = feed.random_walk(feed.start_prices(opts.symbols, rng), rng, seqs, _epoch_ms)
    return feed.walk_steps(walk)


class Stop(threading.Event):
    """Set to stop the job; `reason` says why, for the summary."""

    reason = ""


class Job:
    """The publishing loop: paces steps, packs them into messages, reports, stops on request."""

    def __init__(
        self, opts: Options, sink: PubSubSink, stop: Stop, *, clock: Clock = time.monotonic
    ) -> None:
        self.opts = opts
        self.sink = sink
        self.stop = stop
        self._clock = clock
        self._started = clock()
        self._meter = RateMeter(clock)
        self._message_meter = RateMeter(clock)
        self._next_progress = self._started + opts.progress_interval
        self._pack = Packer(opts.pack_ms / 1000, opts.pack_max, clock)
        self._pacer: Pacer | None = None
        self._room = 0  # messages the in-flight window still takes in this burst

    def run(self, steps: Iterator[feed.Step]) -> int:
        """Publish until the steps run out, the duration ends or `stop` is set; return the count.

        Each wake-up makes every tick due by then in one burst (at most `BURST` ticks, and no
        more messages than the in-flight window has room for); the checks (stop, progress,
        errors, capacity) run once per wake-up, not once per tick.
        """
        pacer = self._pacer = Pacer(self.opts.rate, self._clock)
        end = self._started + self.opts.duration if self.opts.duration else math.inf
        made = 0
        pack = self._pack
        step = next(steps, None)
        if step is not None:
            pacer.delay(step.delay_s)
        while step is not None:
            if not self._wait_until_due(pacer, end):
                break
            budget = min(pacer.due(), BURST)
            self._room = self.sink.room()
            burst = 0
            while True:
                tick = step.make()
                encoded = tick_to_bytes(tick)
                if pack.would_overflow(encoded):
                    self._send()
                if pack.add(encoded, tick.symbol):
                    self._send()
                burst += 1
                step = next(steps, None)
                if step is None or burst >= budget or self._room <= 0 or step.delay_s:
                    break
            pacer.sent(burst)
            made += burst
            if step is not None:
                pacer.delay(step.delay_s)
        if step is None:
            self.stop.reason = self.stop.reason or "replay finished"
        if len(pack):
            self._send()
        return made

    def _send(self) -> None:
        self._room -= 1
        self.sink.publish_encoded(self._pack.take())

    def _wait_until_due(self, pacer: Pacer, end: float) -> bool:
        while not self.stop.is_set():
            now = self._clock()
            if now >= end:
                self.stop.reason = "duration reached"
                return False
            if self.sink.fatal:
                self.stop.reason = f"Pub/Sub refused: {self.sink.fatal}"
                return False
            if now >= self._next_progress:
                self.progress()
                # After a long block (e.g. recreating the topic), one line, not a backlog of them.
                self._next_progress = max(
                    self._next_progress + self.opts.progress_interval, now + 0.1
                )
            if self._pack.due():
                self._send()
            self._report_errors()
            self.sink.maintain()
            wait = min(
                pacer.wait_time(),
                self._pack.wait_time(),
                self._next_progress - now,
                end - now,
                0.25,
            )
            if wait > 0:
                self.stop.wait(max(wait, MIN_SLEEP))
            elif pacer.wait_time() > 0:
                continue  # the pack was due, not the tick
            elif self.sink.wait_for_capacity(0.25):
                return True
        return False

    def _report_errors(self) -> None:
        for reason in self.sink.new_errors():
            _say(f"error: Pub/Sub refused a message ({reason}); its ticks are counted in errors=")

    def progress(self) -> None:
        """Print one progress line to stderr."""
        st = self.sink.stats()
        line = (
            f"elapsed={self._clock() - self._started:.1f}s sent={st.published} "
            f"rate={self._meter.rate(st.published):.1f}/s "
            f"messages={st.messages} msg_rate={self._message_meter.rate(st.messages):.1f}/s "
            f"errors={st.failed} retries={st.retries} in_flight={st.in_flight}"
        )
        if self._pacer is not None and self._pacer.skipped:
            line += f" skipped={self._pacer.skipped} (fell behind by more than a second)"
        if st.problem:
            line += f" | publish failing: {st.problem}"
        _say(line)

    def finish(self) -> bool:
        """Flush pending publishes, stop the client and print the summary; True if all went out."""
        flushed = self.sink.flush(FLUSH_TIMEOUT)
        self.sink.close()
        self._report_errors()
        st = self.sink.stats()
        elapsed = self._clock() - self._started
        avg = st.published / elapsed if elapsed > 0 else 0.0
        _say(
            f"done ({self.stop.reason or 'stopped'}) in {elapsed:.1f}s: sent={st.published} "
            f"errors={st.failed} retries={st.retries} avg_rate={avg:.1f}/s "
            f"messages={st.messages} ticks_per_message="
            f"{st.published / st.messages if st.messages else 0:.1f}"
        )
        if self._pacer is not None and self._pacer.skipped:
            _say(
                f"warning: {self._pacer.skipped} tick(s) not made: the job fell more than a "
                "second behind its rate and restarted its schedule"
            )
        if not flushed:
            _say(f"warning: {st.in_flight} publish(es) still pending after {FLUSH_TIMEOUT:.0f}s")
        return flushed and st.failed == 0


def _install_signals(stop: Stop) -> dict[int, object]:
    """Ctrl-C/SIGTERM stop the job gracefully; a second one aborts at once (e.g. a stuck flush)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        stop.reason = f"stopped by {signal.Signals(signum).name}"
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the publisher job; return the exit status (argument errors exit with 2 via argparse).

    `environ` supplies the defaults of --topic and --project; the Pub/Sub client itself reads
    PUBSUB_EMULATOR_HOST and credentials from the process environment.
    """
    env = os.environ if environ is None else environ
    opts = parse_args(argv, env)
    rows = load_replay(opts.replay) if opts.replay else None
    if opts.replay and rows is None:
        return 2
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    where = f"emulator {emulator}" if emulator else "Google Cloud"
    stop = Stop()
    previous = _install_signals(stop)
    try:
        try:
            sink = PubSubSink(
                opts.project, opts.topic, max_in_flight=opts.max_in_flight, packed=opts.pack_ms > 0
            )
            created = sink.ensure_topic(timeout=opts.connect_timeout)
        except SinkUnavailableError as exc:
            _say(f"error: cannot use Pub/Sub ({where}): {exc}")
            return 1
        shown = ",".join(opts.symbols[:10]) + (
            f",... ({len(opts.symbols)} symbols)" if len(opts.symbols) > 10 else ""
        )
        what = f"{len(rows)} replay rows" if rows is not None else shown
        _say(
            f"publishing {what} at {opts.rate:g}/s to {sink.topic_path} via {where}"
            + (" (topic created)" if created else "")
        )
        job = Job(opts, sink, stop)
        job.run(make_steps(opts, rows))
        ok = job.finish()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
    if sink.fatal:
        _say(f"error: Pub/Sub refused to publish: {sink.fatal}")
        return 1
    return 1 if rows is not None and not ok else 0
