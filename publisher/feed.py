"""Tick sources for the publisher: a geometric random walk and a CSV replay.

Rule: nothing here does I/O, sleeps or reads the clock by itself; randomness, time and the seq
base are passed in, so the generators are deterministic under test and reusable by the server's
simulated feed.

Every tick gets its `seq` from a `SeqCounter` (per symbol, +1 per tick, starting at a base above any
earlier run: the process start time in microseconds) and its `ts` when the generator makes it.

Replay CSV format: a header row is required and must contain `symbol` and `price`; optional columns
are `volume`, `bid`, `ask`, `open` (numbers) and `delay_ms` (extra wait before the row, 0 to
`MAX_DELAY_MS` = 60,000: a longer pause is a typo, e.g. seconds as `1e12`, that would hang the job
without a word). `seq` and `ts` are never read from the file. Blank lines are ignored.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from ticker.core.errors import InvalidTick
from ticker.core.ticks import MAX_TS_MS, MIN_TS_MS, OPTIONAL_FIELDS, Tick, make_tick

#: Well-known tickers with roughly realistic start prices (USD).
DEFAULT_PRICES: dict[str, float] = {
    "AAPL": 190.0,
    "MSFT": 420.0,
    "GOOG": 175.0,
    "AMZN": 185.0,
    "NVDA": 120.0,
    "TSLA": 250.0,
    "META": 500.0,
    "NFLX": 650.0,
    "AMD": 160.0,
    "INTC": 31.0,
}
#: Standard deviation of one tick's log-return: small enough that a page looks like a market.
DEFAULT_VOLATILITY = 0.0005
MIN_PRICE = 0.01
REPLAY_COLUMNS = ("symbol", "price", *OPTIONAL_FIELDS, "delay_ms")
MAX_DELAY_MS = 60_000.0  # one minute between two rows at most


def seq_base(now_s: float) -> int:
    """Return the first seq for a run started at `now_s` (epoch seconds): its time in microseconds.

    Why: a restarted publisher must start above every seq it used before, without keeping state.
    """
    return int(now_s * 1_000_000)


class SeqCounter:
    """Hands out per-symbol seqs: `base` for a symbol's first tick, then exactly +1 per tick."""

    def __init__(self, base: int) -> None:
        self._base = base
        self._next: dict[str, int] = {}

    def take(self, symbol: str) -> int:
        """Return the symbol's next seq and advance it."""
        seq = self._next.get(symbol, self._base)
        self._next[symbol] = seq + 1
        return seq


def start_prices(symbols: Sequence[str], rng: random.Random) -> dict[str, float]:
    """Map each symbol to its start price: the default for well-known ones, else a random one."""
    return {s: DEFAULT_PRICES.get(s) or round(rng.uniform(10.0, 500.0), 2) for s in symbols}


def to_cents(price: float) -> float:
    """Round a price to cents, never below one cent (the contract wants positive prices)."""
    return max(round(price, 2), MIN_PRICE)


def random_walk(
    prices: Mapping[str, float],
    rng: random.Random,
    seqs: SeqCounter,
    clock_ms: Callable[[], int],
    *,
    volatility: float = DEFAULT_VOLATILITY,
) -> Iterator[Tick]:
    """Yield ticks forever, one symbol after the other, each price a geometric random-walk step.

    The walk keeps unrounded prices so that rounding to cents does not make small moves stick.
    `open` is the start price; `bid`/`ask` sit a few basis points around the price.

    Cheap per tick (the publisher makes 20,000 a second): each symbol's first tick goes through
    `make_tick` (symbol, start price and clock checked once); later ones are built directly,
    since their price and spread are positive cents by construction, and only what could still
    be wrong (a price grown to infinity, a clock out of range) is checked inline, the slow path
    then naming the problem.
    """
    if not prices:
        raise ValueError("random_walk needs at least one symbol")
    current = dict(prices)
    gauss, uniform, exp = rng.gauss, rng.random, math.exp
    take = seqs.take
    checked: dict[str, str] = {}  # as given -> the validated (upper-case) symbol
    while True:
        for symbol, opened in prices.items():
            raw = current[symbol] * exp(gauss(0.0, volatility))
            current[symbol] = raw
            price = max(round(raw, 2), MIN_PRICE)
            half_spread = max(round(price * 0.0002, 2), MIN_PRICE)
            bid = max(round(price - half_spread, 2), MIN_PRICE)
            ask = round(price + half_spread, 2)
            volume = (1 + int(uniform() * 50)) * 100  # 100..5,000, as bench/node/feed.js
            seq, ts = take(symbol), clock_ms()
            name = checked.get(symbol)
            if name is None or not price < math.inf or not MIN_TS_MS <= ts <= MAX_TS_MS:
                tick = make_tick(
                    symbol, price, seq, ts, open=opened, bid=bid, ask=ask, volume=volume
                )
                checked[symbol] = tick.symbol
                yield tick
            else:
                yield Tick(name, price, seq, ts, volume, bid, ask, opened)


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One validated CSV row; `seq`/`ts` are assigned when it is replayed."""

    line: int
    symbol: str
    price: float
    extra: dict[str, float] = field(default_factory=dict)
    delay_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ReplayProblem:
    """A bad line of a replay file, reported to the user as `line N: message`."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def parse_replay(lines: Iterable[str]) -> tuple[list[ReplayRow], list[ReplayProblem]]:
    """Validate a whole replay CSV; return its rows and every problem found, with line numbers.

    Why whole-file: a replay is all or nothing; nothing is published from a file with a bad row.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return [], [ReplayProblem(1, "empty file: expected a header row 'symbol,price'")]
    columns = [c.strip().lower() for c in header]
    problems = _check_header(columns)
    if problems:
        return [], problems
    rows: list[ReplayRow] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        try:
            rows.append(_parse_row(reader.line_num, columns, cells))
        except (InvalidTick, ValueError) as exc:
            problems.append(ReplayProblem(reader.line_num, str(exc)))
    if not rows and not problems:
        problems.append(ReplayProblem(1, "no data rows after the header"))
    return rows, problems


def _check_header(columns: list[str]) -> list[ReplayProblem]:
    unknown = [c for c in columns if c not in REPLAY_COLUMNS]
    missing = [c for c in ("symbol", "price") if c not in columns]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"header lacks required column(s): {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown column(s): {', '.join(unknown)} (allowed: {', '.join(REPLAY_COLUMNS)})"
        )
    if dupes:
        problems.append(f"duplicate column(s): {', '.join(dupes)}")
    return [ReplayProblem(1, p) for p in problems]


def _parse_row(line: int, columns: list[str], cells: list[str]) -> ReplayRow:
    if len(cells) != len(columns):
        raise ValueError(f"expected {len(columns)} fields, got {len(cells)}")
    raw = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
    numbers = {c: _float(c, v) for c, v in raw.items() if c != "symbol" and v != ""}
    if "price" not in numbers:
        raise ValueError("price is empty")
    delay = numbers.pop("delay_ms", 0.0)
    if not 0 <= delay <= MAX_DELAY_MS:
        raise ValueError(
            f"delay_ms must be between 0 and {MAX_DELAY_MS:.0f}, got {raw['delay_ms']}"
        )
    # make_tick applies the checks a consumer will, so no replayed row is rejected downstream.
    tick = make_tick(raw["symbol"], numbers.pop("price"), 0, MIN_TS_MS, **numbers)
    return ReplayRow(line, tick.symbol, tick.price, dict(tick.extra), delay)


def _float(column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} must be finite, got {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Step:
    """One tick to publish: wait `delay_s` beyond the pacing, then `make()` it (stamping `ts`)."""

    delay_s: float
    make: Callable[[], Tick]


def walk_steps(walk: Iterator[Tick]) -> Iterator[Step]:
    """Turn a tick generator into steps without extra delay; ticks are made only when due.

    Every step is the same one (no delay, `make` is the walk's next), so none is built per tick.
    """
    step = Step(0.0, walk.__next__)
    while True:
        yield step


def replay_steps(
    rows: Iterable[ReplayRow], seqs: SeqCounter, clock_ms: Callable[[], int]
) -> Iterator[Step]:
    """Yield one step per row, in file order; each tick gets a fresh `seq` and `ts` when made."""
    for row in rows:
        yield Step(row.delay_ms / 1000.0, partial(_replay_tick, row, seqs, clock_ms))


def _replay_tick(row: ReplayRow, seqs: SeqCounter, clock_ms: Callable[[], int]) -> Tick:
    return make_tick(row.symbol, row.price, seqs.take(row.symbol), clock_ms(), **row.extra)
