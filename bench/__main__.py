"""`python -m bench [--quick]`: run the scenarios and write the report (see bench/README.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.scenarios import FULL, QUICK, scenario_a, scenario_b, scenario_d
from bench.stacks import STACKS, ticker_at

FULL_STACKS = ("ticker", "naive-quart", "websockets", "socketio", "node-ws")
QUICK_STACKS = ("ticker", "naive-quart", "websockets", "socketio")
NEEDED_FDS = 24_000  # 10,000 clients + 10,000 server sockets + files, per process at most


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NEEDED_FDS if hard == resource.RLIM_INFINITY else min(NEEDED_FDS, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))  # inherited by every child


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N, fewer steps (~3 min)")
    parser.add_argument("--scenarios", default="ABCD", help="any of A B C D (default: ABCD)")
    parser.add_argument(
        "--stacks",
        help=f"comma list of: {', '.join(STACKS)}, ticker@REV (default: {', '.join(FULL_STACKS)};"
        f" quick: {', '.join(QUICK_STACKS)})",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the servers (e.g. TICKER_FLUSH_INTERVAL=0.01)",
    )
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this point of scenario C (repeatable; e.g. --point 20k; "
        "default: all of the profile's)",
    )
    parser.add_argument(
        "--feed-nice",
        type=int,
        metavar="N",
        help="scenario C: run the feed (the publisher and the emulator, which run elsewhere in "
        "production) at CPU priority N, the server, the hop and the load client at 0 (default "
        "10; 0: all alike)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="scenario C: run its points N times, round-robin, and report each figure's median "
        "(and the range of added p99); a single run's p99 varies 2-3x on a shared machine "
        "(default: 3, quick: 1)",
    )
    parser.add_argument(
        "--warmup-rounds",
        type=int,
        metavar="N",
        help="scenario C: rounds of its points to run first, counted in no figure, while the "
        "emulator's JIT settles (default: 2, quick: 0)",
    )
    parser.add_argument("--out", type=Path, default=report.RESULTS, help="results directory")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    profile = QUICK if args.quick else FULL
    default = QUICK_STACKS if args.quick else FULL_STACKS
    stacks = [s for s in (args.stacks or ",".join(default)).split(",") if s]
    for name in stacks:
        if name.startswith("ticker@"):
            ticker_at(name.split("@", 1)[1])
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        print(
            f"unknown stack(s): {', '.join(unknown)}; known: {', '.join(STACKS)}", file=sys.stderr
        )
        return 2
    env = dict(kv.split("=", 1) for kv in args.env)
    feed_nice = profile.c_feed_nice if args.feed_nice is None else args.feed_nice
    if not 0 <= feed_nice <= 19:
        print(f"--feed-nice must be 0..19, got {feed_nice}", file=sys.stderr)
        return 2
    repeat = profile.c_repeat if args.repeat is None else args.repeat
    if not 1 <= repeat <= 20:
        print(f"--repeat must be 1..20, got {repeat}", file=sys.stderr)
        return 2
    warmup = profile.c_warmup_rounds if args.warmup_rounds is None else args.warmup_rounds
    if not 0 <= warmup <= 5:
        print(f"--warmup-rounds must be 0..5, got {warmup}", file=sys.stderr)
        return 2
    if args.point:
        from bench.realpath import C_POINT_NAMES

        wrong = [p for p in args.point if p not in C_POINT_NAMES]
        if wrong:
            print(f"unknown C point(s): {wrong}; known: {list(C_POINT_NAMES)}", file=sys.stderr)
            return 2
    _raise_nofile()
    logdir = Path(tempfile.mkdtemp(prefix="ticker-bench-"))
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    results: dict[str, Any] = {
        "profile": profile.name,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
        "machine": report.machine(),
        "env": env,
        "scenarios": {},
    }
    sc = results["scenarios"]
    log(
        f"{profile.name} run: scenarios {args.scenarios}, stacks {', '.join(stacks)}; "
        f"logs in {logdir}"
    )
    if "A" in args.scenarios:
        sc["A"] = scenario_a(stacks, profile, logdir, log, env=env)
    if "B" in args.scenarios:
        sc["B"] = scenario_b(stacks, profile, logdir, log, env=env)
    if "C" in args.scenarios:
        from bench.realpath import scenario_c

        try:
            sc["C"] = scenario_c(
                profile,
                logdir,
                log,
                env=env,
                only=args.point,
                feed_nice=feed_nice,
                repeat=repeat,
                warmup_rounds=warmup,
            )
        except (RuntimeError, TimeoutError) as exc:
            log(f"scenario C skipped: {exc}")
    if "D" in args.scenarios:
        one = ((sc.get("A") or {}).get("ticker", {}).get("best") or {}).get("deliveries_per_s", 0)
        sc["D"] = scenario_d(profile, logdir, log, one, env=env)
    results["loadavg_end"] = os.getloadavg()
    results["duration_s"] = round(time.monotonic() - started)
    path = report.write(results, args.out)
    md = args.out / report.latest_name(results)
    log(f"wrote {path} and {md}")
    print(md.read_text())
    if not args.keep_logs:
        shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
