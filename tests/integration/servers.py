"""Real server processes (`python -m ticker.serve`) and WebSocket clients for fault tests.

Rules: every process is started here on a free port and stopped by its own pid (never by name);
waits poll with timeouts, never sleep for synchronisation. A `WsClient` records every tick with
its arrival time, every `reconnect` frame and the close code, and pings so heartbeats never
close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from ticker.ops.emulator import PROJECT
from ticker.ops.procs import free_port

REPO = Path(__file__).resolve().parents[2]


def server_env(emulator_host: str, topic: str, instance: str, **extra: str) -> dict[str, str]:
    """The environment of one server process on the emulator."""
    env = dict(os.environ)
    env.update(
        PUBSUB_EMULATOR_HOST=emulator_host,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        TICKER_BROKER="pubsub",
        TICKER_TOPIC=topic,
        TICKER_INSTANCE_ID=instance,
        TICKER_ADMIN_TOKEN="test-admin-token",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `predicate` until truthy; return its value or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class ServerProcess:
    """One `python -m ticker.serve` process on 127.0.0.1:<free port>."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = Path(tempfile.mkstemp(prefix="ticker-server-", suffix=".log")[1])
        with self._log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ticker.serve", "--bind", f"127.0.0.1:{self.port}"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def get(self, path: str, timeout: float = 2.0) -> tuple[int | None, dict[str, Any]]:
        """(status, JSON body) of a GET; (None, {}) when nothing answers."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except (OSError, ValueError):
            return None, {}

    def readiness(self) -> tuple[int | None, dict[str, Any]]:
        return self.get("/readiness_check")

    def liveness(self) -> int | None:
        return self.get("/liveness_check")[0]

    def subscription(self) -> str:
        """The subscription id the server reports using now."""
        return str(self.readiness()[1].get("broker", {}).get("subscription", ""))

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_tail()}")
            return self.readiness()[0] == 200

        wait_for(ready, timeout, f"readiness of {self.base}\n{self.log_tail()}")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Make sure the process is gone (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


class PublisherProcess:
    """`python -m publisher` in the background, its output in a temporary file."""

    def __init__(self, emulator_host: str, topic: str, symbols: Iterable[str], rate: float,
                 duration: float = 0) -> None:  # fmt: skip
        env = dict(os.environ, PUBSUB_EMULATOR_HOST=emulator_host, PYTHONUNBUFFERED="1")
        cmd = [
            sys.executable, "-m", "publisher", "--project", PROJECT, "--topic", topic,
            "--symbols", ",".join(symbols), "--rate", str(rate), "--duration", str(duration),
        ]  # fmt: skip
        self._log = Path(tempfile.mkstemp(prefix="ticker-publisher-", suffix=".log")[1])
        with self._log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def output(self) -> str:
        return self._log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> str:
        """SIGTERM, then SIGKILL; return what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        text = self.output()
        self._log.unlink(missing_ok=True)
        return text


@dataclass
class WsClient:
    """A WebSocket client that records ticks `(symbol, seq, ts, arrived)` and control frames."""

    url: str
    origin: str
    symbols: list[str]
    ticks: list[tuple[str, int, int, float]] = field(default_factory=list)
    reconnects: list[float] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float | None = None
    _task: asyncio.Task[None] | None = None
    _ws: Any = None
    _subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Connect, subscribe, and keep reading in the background."""
        ws = await websockets.connect(self.url, origin=self.origin)  # type: ignore[arg-type]
        self._ws = ws
        await ws.send(json.dumps({"op": "subscribe", "symbols": self.symbols}))
        self._task = asyncio.create_task(self._run(ws))
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def _run(self, ws: Any) -> None:
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for raw in ws:
                self._record(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            pinger.cancel()
            self.close_code = ws.close_code
            self.closed_at = time.monotonic()

    def _record(self, msg: dict[str, Any]) -> None:
        now = time.time()
        if msg.get("type") == "ticks":
            for t in msg["ticks"]:
                self.ticks.append((t["symbol"], t["seq"], t["ts"], now))
        elif msg.get("type") == "reconnect":
            self.reconnects.append(time.monotonic())
        elif msg.get("type") == "subscribed":
            self._subscribed.set()

    async def _ping(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(5)
                await ws.send(json.dumps({"op": "ping"}))

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    async def stop(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def stop_clients(clients: Iterable[WsClient]) -> None:
    """Close every client (safe on clients already closed by the server)."""
    await asyncio.gather(*(c.stop() for c in clients))


async def connect_clients(server: ServerProcess, symbols: list[str], count: int) -> list[WsClient]:
    """`count` clients on `server`, each subscribed to `symbols`."""
    clients = [
        WsClient(f"ws://127.0.0.1:{server.port}/ws", server.base, symbols) for _ in range(count)
    ]
    await asyncio.gather(*(c.start() for c in clients))
    return clients


async def poll_until(predicate: Callable[[], Any], within: float, what: str) -> Any:
    """Async twin of `wait_for`, for tests that must keep their clients' loop running."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)
