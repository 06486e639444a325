"""Start, stop, kill and restart the real Pub/Sub emulator for integration tests.

Rule: the emulator runs in its own process group (gcloud starts a Java child) and is only ever
stopped by signalling that group by pid, so a test never leaves a JVM behind and never touches
other processes.

    with running_emulator() as emu:
        env = {"PUBSUB_EMULATOR_HOST": emu.host}
        emu.kill()      # SIGKILL, for fault tests
        emu.restart()   # same port, empty state (topics and subscriptions are gone)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ticker.ops import procs

PROJECT = "ticker-test"
START_TIMEOUT = float(os.environ.get("TICKER_EMULATOR_START_TIMEOUT", "60"))


def emulator_available() -> bool:
    """Whether gcloud, Java and the Pub/Sub emulator component are installed."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return False
    sdk_root = Path(gcloud).resolve().parent.parent
    return (sdk_root / "platform" / "pubsub-emulator").is_dir()


def start_command(host: str, project: str, data_dir: str | Path) -> list[str]:
    """The command that starts the emulator on `host` (the benchmarks pin it with taskset)."""
    return [
        "gcloud", "beta", "emulators", "pubsub", "start",
        f"--host-port={host}", f"--project={project}", f"--data-dir={data_dir}",
    ]  # fmt: skip


def answers(host: str) -> bool:
    """Whether an emulator on `host` (host:port) is up: its root answers `Ok`."""
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as resp:
            return bool(resp.read().strip() == b"Ok")
    except (urllib.error.URLError, OSError):
        return False


class Emulator:
    """One emulator process on a fixed port; `start()` after `stop()`/`kill()` reuses the port."""

    def __init__(self, port: int | None = None, project: str = PROJECT) -> None:
        self.port = port or procs.free_port()
        self.project = project
        self.host = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._data_dir = tempfile.mkdtemp(prefix="pubsub-emulator-")
        self._log_path = Path(self._data_dir) / "emulator.log"

    def start(self) -> None:
        """Start the emulator and wait until it answers; raise RuntimeError with its log if not."""
        if self.running:
            return
        cmd = start_command(self.host, self.project, self._data_dir)
        self._proc = procs.start(cmd, log=self._log_path)
        try:
            procs.wait_ready(
                self._proc,
                lambda: answers(self.host),
                within=START_TIMEOUT,
                what="the emulator answering",
                every=0.2,
            )
        except (RuntimeError, TimeoutError):
            self.kill()
            raise RuntimeError(
                f"Pub/Sub emulator did not start on {self.host}:\n{self.log_tail()}"
            ) from None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            procs.signal_group(self._proc, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM to the group), escalating to SIGKILL after `timeout` s."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._proc.wait(timeout)
        self._wait_port_closed(timeout)
        # The JVM may outlive the gcloud wrapper by a moment; make sure the whole group is gone.
        self._signal_group(signal.SIGKILL)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the whole group at once, like a crash."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait(10)
        self._wait_port_closed(10)
        self._proc = None

    def restart(self) -> None:
        """Stop if running, then start again on the same port (with empty state)."""
        self.stop()
        self.start()

    def _wait_port_closed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):  # best effort: a restart reports its own failure
            procs.wait_until(
                lambda: not procs.port_open(self.port), within=timeout, what="the port closed"
            )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the emulator's output, for failure messages."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no emulator log)"
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        """Stop and remove the data directory."""
        self.stop()
        shutil.rmtree(self._data_dir, ignore_errors=True)


@contextlib.contextmanager
def running_emulator(port: int | None = None) -> Iterator[Emulator]:
    """Run an emulator for the duration of the block; always stopped afterwards."""
    emu = Emulator(port)
    try:
        emu.start()
        yield emu
    finally:
        emu.cleanup()
