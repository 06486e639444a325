"""Feed generators: per-symbol seq +1, positive cent prices, and the replay CSV validation."""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Callable, Iterator, Sequence

import pytest

from publisher import feed
from ticker.core.codec import decode_tick, tick_to_bytes
from ticker.core.ticks import Tick


def clock_ms(start: int = 1_764_089_400_000) -> Callable[[], int]:
    ticks = itertools.count(start)
    return lambda: next(ticks)


def walk(
    symbols: Sequence[str] = ("AAPL", "MSFT"), seed: int = 1, base: int = 5_000, **kw: float
) -> Iterator[Tick]:
    rng = random.Random(seed)
    prices = feed.start_prices(list(symbols), rng)
    return feed.random_walk(prices, rng, feed.SeqCounter(base), clock_ms(), **kw)


def test_seq_base_is_the_start_time_in_microseconds():
    assert feed.seq_base(1_764_089_400.123456) == 1_764_089_400_123_456


def test_seq_counter_is_per_symbol_and_grows_by_one():
    seqs = feed.SeqCounter(100)
    assert [seqs.take(s) for s in ("A", "B", "A", "A", "B")] == [100, 100, 101, 102, 101]


def test_random_walk_seq_starts_at_base_and_increments_by_exactly_one():
    ticks = list(itertools.islice(walk(symbols=("AAPL", "MSFT", "NVDA")), 3000))
    for symbol in ("AAPL", "MSFT", "NVDA"):
        seqs = [t.seq for t in ticks if t.symbol == symbol]
        assert seqs == list(range(5_000, 5_000 + 1000))


def test_random_walk_takes_symbols_in_turn_and_stamps_ts_when_made():
    ticks = list(itertools.islice(walk(), 6))
    assert [t.symbol for t in ticks] == ["AAPL", "MSFT"] * 3
    assert [t.ts for t in ticks] == [1_764_089_400_000 + i for i in range(6)]


def test_random_walk_prices_stay_positive_and_in_cents_even_when_wild():
    for tick in itertools.islice(walk(volatility=0.2), 20_000):
        assert tick.price >= 0.01
        assert round(tick.price, 2) == tick.price
        assert 0 < tick.extra["bid"] <= tick.price <= tick.extra["ask"]


def test_random_walk_starts_near_the_known_price_and_moves():
    ticks = [t for t in itertools.islice(walk(symbols=("AAPL",)), 500)]
    assert ticks[0].extra["open"] == 190.0
    assert abs(ticks[0].price - 190.0) < 1.0
    assert len({t.price for t in ticks}) > 10


def test_random_walk_is_reproducible_with_the_same_seed():
    first = [t.price for t in itertools.islice(walk(seed=42), 100)]
    again = [t.price for t in itertools.islice(walk(seed=42), 100)]
    assert first == again


def test_unknown_symbols_get_a_plausible_start_price():
    prices = feed.start_prices(["ZZZZ", "AAPL"], random.Random(3))
    assert prices["AAPL"] == 190.0
    assert 10.0 <= prices["ZZZZ"] <= 500.0


def test_walk_ticks_encode_to_the_contract_json():
    tick = next(walk())
    again = decode_tick(tick_to_bytes(tick))
    assert (again.symbol, again.price, again.seq, again.ts) == (
        tick.symbol,
        tick.price,
        tick.seq,
        tick.ts,
    )


def parse(text: str) -> tuple[list[feed.ReplayRow], list[feed.ReplayProblem]]:
    return feed.parse_replay(io.StringIO(text))


def test_replay_reads_required_and_optional_columns():
    rows, problems = parse("symbol,price,volume,delay_ms\naapl,189.5,300,\nMSFT,420,,250\n")
    assert problems == []
    assert [(r.line, r.symbol, r.price, r.extra, r.delay_ms) for r in rows] == [
        (2, "AAPL", 189.5, {"volume": 300.0}, 0.0),
        (3, "MSFT", 420.0, {}, 250.0),
    ]


def test_replay_reports_every_bad_row_with_its_line_number():
    text = (
        "symbol,price,bid\n"
        "AAPL,190,189.9\n"
        "BAD SYMBOL,1,\n"
        "\n"
        "MSFT,-3,\n"
        "GOOG,abc,\n"
        "NVDA,120\n"
        "TSLA,250,nan\n"
    )
    rows, problems = parse(text)
    assert [r.symbol for r in rows] == ["AAPL"]
    assert [p.line for p in problems] == [3, 5, 6, 7, 8]
    assert "invalid symbol" in str(problems[0])
    assert str(problems[1]).startswith("line 5: price must be positive")
    assert "not a number" in problems[2].message
    assert "expected 3 fields" in problems[3].message
    assert "finite" in problems[4].message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty file"),
        ("symbol,volume\nAAPL,1\n", "required column(s): price"),
        ("symbol,price,seq\nAAPL,1,5\n", "unknown column(s): seq"),
        ("symbol,price,price\nAAPL,1,2\n", "duplicate column(s): price"),
        ("symbol,price\n", "no data rows"),
    ],
)
def test_replay_rejects_a_bad_header_or_an_empty_file_on_line_one(text, needle):
    rows, problems = parse(text)
    assert rows == []
    assert problems[0].line == 1
    assert needle in problems[0].message


def test_replay_rejects_a_negative_delay():
    _, problems = parse("symbol,price,delay_ms\nAAPL,1,-5\n")
    assert "delay_ms must be between 0 and 60000" in str(problems[0])


@pytest.mark.parametrize("delay", ["1e12", "60001"])
def test_replay_rejects_a_delay_over_a_minute_with_its_line(delay):
    _, problems = parse(f"symbol,price,delay_ms\nAAPL,1,0\nMSFT,2,60000\nAAPL,1,{delay}\n")
    assert [p.line for p in problems] == [4]
    assert "delay_ms must be between 0 and 60000" in problems[0].message


def test_replay_steps_assign_fresh_seq_and_ts_in_file_order():
    rows, _ = parse("symbol,price,delay_ms\nAAPL,1.5,\nMSFT,2,100\nAAPL,1.6,\n")
    steps = list(feed.replay_steps(rows, feed.SeqCounter(7), clock_ms()))
    assert [s.delay_s for s in steps] == [0.0, 0.1, 0.0]
    ticks = [s.make() for s in steps]
    assert [(t.symbol, t.price, t.seq, t.ts) for t in ticks] == [
        ("AAPL", 1.5, 7, 1_764_089_400_000),
        ("MSFT", 2.0, 7, 1_764_089_400_001),
        ("AAPL", 1.6, 8, 1_764_089_400_002),
    ]


def test_walk_steps_make_ticks_only_when_called():
    made: list[int] = []

    def gen() -> Iterator[Tick]:
        while True:
            made.append(1)
            yield next(walk())

    steps = feed.walk_steps(gen())
    step = next(steps)
    assert made == []
    assert step.delay_s == 0.0
    assert step.make().symbol == "AAPL"
    assert made == [1]
