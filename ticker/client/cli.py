"""`python -m ticker.client` (also `ticker-client`): print a server's ticks, one per line.

Rules: ticks go to stdout (text, or `--json`: one JSON object per line, the tick as the server
sent it); events (subscribed, resync, reconnecting) go to stderr, so a pipe gets ticks only.

Exit codes: 0 when stopped (Ctrl-C, SIGTERM, `--count` reached, or the reader of the pipe
left); 1 when the server cannot be reached, refuses the connection or answers with an error
frame, each with one line saying why; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import orjson

from ticker.client.connection import DEFAULT_URL, connect
from ticker.client.events import Reconnecting, Resync, Subscribed, TickerClientError
from ticker.core.client_ops import MAX_RATE, MIN_RATE
from ticker.core.errors import InvalidTick
from ticker.core.ticks import Tick, normalise_symbol

PROG = "ticker-client"


def _symbol(raw: str) -> str:
    try:
        return normalise_symbol(raw)
    except InvalidTick as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"must be a number of ticks per second between {MIN_RATE:g} and {MAX_RATE:g}"
        )
    return value


def _count(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return int(raw)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, validated (argparse exits 2 with a message on bad input)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stream ticks from a ticker server's /ws and print them, one per line.",
    )
    parser.add_argument("symbols", nargs="+", type=_symbol, metavar="SYMBOL")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the /ws URL (default {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print each tick as a JSON object")
    parser.add_argument(
        "--max-rate", type=_rate, help="at most this many ticks per second per symbol (latest)"
    )
    parser.add_argument("--count", type=_count, help="exit after this many ticks")
    parser.add_argument(
        "--origin", help="send this Origin header (a browser stand-in; native clients send none)"
    )
    parser.add_argument("--quiet", action="store_true", help="no event lines on stderr")
    return parser.parse_args(argv)


def format_tick(tick: Tick, as_json: bool) -> str:
    """One output line for a tick."""
    if as_json:
        return orjson.dumps(tick.as_dict()).decode()
    stamp = time.strftime("%H:%M:%S", time.localtime(tick.ts / 1000))
    return f"{stamp}.{tick.ts % 1000:03d} {tick.symbol:<6} {tick.price:>12.4f}  seq {tick.seq}"


def _event_line(event: Subscribed | Resync | Reconnecting) -> str:
    if isinstance(event, Subscribed):
        rate = "" if event.max_rate is None else f", max {event.max_rate:g} ticks/s"
        resumed = ", resumed without a gap" if event.recovered else ""
        return f"subscribed to {','.join(event.symbols)}{rate}{resumed}"
    if isinstance(event, Resync):
        return f"resync {','.join(event.symbols)}: ticks were lost, a fresh price follows"
    return f"reconnecting in {event.delay:.1f} s: {event.reason}"


async def stream(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print ticks until stopped; return the exit code."""
    printed = 0
    async with connect(args.url, max_rate=args.max_rate, origin=args.origin) as client:
        async for event in client.events(args.symbols):
            if isinstance(event, Tick):
                out.write(format_tick(event, args.json) + "\n")
                out.flush()
                printed += 1
                if args.count is not None and printed >= args.count:
                    return 0
            elif not args.quiet:
                err.write(f"{PROG}: {_event_line(event)}\n")
                err.flush()
    return 0  # pragma: no cover - the event stream never ends by itself


async def _run(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # not on Windows
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await stream(args, sys.stdout, sys.stderr)
    except asyncio.CancelledError:
        return 0
    except TickerClientError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m ticker.client` and `ticker-client`."""
    args = parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `| head`: the reader left; keep the exit flush from failing too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
