"""Pieces of the real stack for integration tests: a server on Pub/Sub, the publisher job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from tests.support.servers import REPO, Server
from tests.support.timing import timeout

PROJECT = "ticker-test"


def start_pubsub_server(start_server: Any, emulator: Any, topic: str, **env: str) -> Server:
    server: Server = start_server(
        TICKER_BROKER="pubsub",
        PUBSUB_EMULATOR_HOST=emulator.host,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        TICKER_TOPIC=topic,
        **env,
    )
    server.wait_ready(20)
    return server


def run_publisher(emulator: Any, topic: str, symbols: str, rate: int, duration: int) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "publisher", "--symbols", symbols, "--rate", str(rate),
         "--duration", str(duration), "--topic", topic, "--project", PROJECT],
        cwd=REPO, capture_output=True, text=True, timeout=timeout(60),
        env={**os.environ, "PUBSUB_EMULATOR_HOST": emulator.host},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    sent = re.findall(r"sent=(\d+)", out.stderr)
    assert sent, out.stderr
    return int(sent[-1])
