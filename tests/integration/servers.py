"""The real stack on the emulator for fault tests: server environments and the publisher job.

Rules: every process is started through `ticker.ops.procs` in its own process group and stopped
by its own pid (never by name); servers are `tests.support.servers.launch`, clients are
`tests.support.wsclient`'s, waits are `tests.support.timing`'s.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tests.support.servers import REPO
from ticker.ops import procs
from ticker.ops.emulator import PROJECT


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
        self.proc = procs.start(cmd, env=env, cwd=REPO, log=self._log)

    def output(self) -> str:
        return self._log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> str:
        """SIGTERM, then SIGKILL; return what it printed."""
        procs.stop(self.proc, timeout)
        text = self.output()
        self._log.unlink(missing_ok=True)
        return text
