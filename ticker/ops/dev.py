"""`make dev`: the whole service on a laptop with one command.

Starts the Pub/Sub emulator (when gcloud has it), the publisher job and the server on
http://127.0.0.1:8080; without an emulator the server runs its in-memory broker and simulated feed.
Prints the URLs and the admin token, and stops everything it started on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

from ticker.ops import procs
from ticker.ops.emulator import Emulator, emulator_available

READY_TIMEOUT = 60.0


def _stop(proc: subprocess.Popen[bytes], name: str, grace: float = 25.0) -> None:
    if proc.poll() is not None:
        return
    print(f"dev: stopping {name} (pid {proc.pid})", file=sys.stderr)
    procs.stop(proc, grace)


@contextlib.contextmanager
def _maybe_emulator(use: bool) -> Iterator[Emulator | None]:
    if not use:
        yield None
        return
    emulator = Emulator(project="ticker-local")
    print(f"dev: starting the Pub/Sub emulator on {emulator.host} ...", file=sys.stderr)
    emulator.start()
    try:
        yield emulator
    finally:
        print("dev: stopping the emulator", file=sys.stderr)
        emulator.cleanup()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ticker.ops.dev", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--rate", type=float, default=20.0, help="ticks/s in total (default 20)")
    parser.add_argument("--symbols", default="AAPL,MSFT,GOOG,AMZN,NVDA,TSLA,META,NFLX,AMD,INTC")
    parser.add_argument("--memory", action="store_true", help="skip the emulator")
    parser.add_argument("--emulator-only", action="store_true", help="run only the emulator")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run until Ctrl-C; return the exit code."""
    args = _parse(argv)
    if not args.emulator_only and procs.port_open(args.port):
        print(
            f"dev: port {args.port} is in use; stop what runs there or pass --port", file=sys.stderr
        )
        return 1
    use_emulator = not args.memory and emulator_available()
    if args.emulator_only and not use_emulator:
        print("dev: the Pub/Sub emulator is not installed (gcloud + java)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, _stop_requested)
    signal.signal(signal.SIGTERM, _stop_requested)
    try:
        with _maybe_emulator(use_emulator) as emulator:
            if args.emulator_only:
                assert emulator is not None
                print(f"export PUBSUB_EMULATOR_HOST={emulator.host}")
                _wait_forever()
                return 0
            return _serve(args, emulator)
    except KeyboardInterrupt:
        return 0


def _stop_requested(signum: int, _frame: object) -> None:
    """The first Ctrl-C or SIGTERM stops everything; later ones are ignored until that is done.

    Why: a terminal's SIGTERM reaches both make and dev, and GNU make passes its own on, so dev
    gets two; a second KeyboardInterrupt inside the cleanup skipped the children not yet stopped
    and left the server running. Every stop is bounded (SIGKILL after its grace), so ignoring
    cannot hang.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"dev: {signal.Signals(signum).name}: stopping everything it started", file=sys.stderr)
    raise KeyboardInterrupt


def _wait_forever(*procs: subprocess.Popen[bytes]) -> None:
    while True:
        for proc in procs:
            if proc.poll() is not None:
                print(f"dev: pid {proc.pid} exited with {proc.returncode}", file=sys.stderr)
                return
        time.sleep(0.5)


def _serve(args: argparse.Namespace, emulator: Emulator | None) -> int:
    env = dict(os.environ)
    env.setdefault("TICKER_ADMIN_TOKEN", secrets.token_urlsafe(18))
    env.setdefault("TICKER_TOPIC", "prices")
    if emulator is not None:
        env.update(
            PUBSUB_EMULATOR_HOST=emulator.host,
            GOOGLE_CLOUD_PROJECT=env.get("GOOGLE_CLOUD_PROJECT", "ticker-local"),
            TICKER_BROKER="pubsub",
        )
    else:
        env.update(TICKER_BROKER="memory", TICKER_SIM_SYMBOLS=args.symbols)
        env["TICKER_SIM_RATE"] = str(args.rate)
    base = f"http://127.0.0.1:{args.port}"
    server = procs.start(
        [sys.executable, "-m", "ticker.serve", "--bind", base.removeprefix("http://")],
        env=env,
        stdin=None,
    )
    children = {"server": server}
    try:
        try:
            procs.wait_ready(
                server,
                lambda: procs.http_status(base + "/readiness_check", timeout=1) == 200,
                within=READY_TIMEOUT,
                what="the server's readiness",
                every=0.3,
            )
        except (RuntimeError, TimeoutError) as exc:
            print(f"dev: the server did not become ready ({exc})", file=sys.stderr)
            return 1
        if emulator is not None:
            publisher = [sys.executable, "-m", "publisher", "--symbols", args.symbols]
            children["publisher"] = procs.start(
                [*publisher, "--rate", str(args.rate)], env=env, stdin=None
            )
        mode = (
            f"Pub/Sub emulator {emulator.host}" if emulator else "in-memory broker + simulated feed"
        )
        print(
            f"\n  ticker is running ({mode})\n"
            f"  live prices   {base}/\n"
            f"  admin         {base}/admin   token: {env['TICKER_ADMIN_TOKEN']}\n"
            f"  stats API     {base}/admin/api/stats\n"
            f"  metrics       {base}/metrics\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        _wait_forever(*children.values())
        return 1
    finally:
        for name, proc in reversed(children.items()):
            _stop(proc, name)


if __name__ == "__main__":
    sys.exit(main())
