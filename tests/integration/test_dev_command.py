"""`make dev` (`python -m ticker.ops.dev`): everything it started stops with it, even when the
stop signal comes twice (a second Ctrl-C, or a terminal that signals make and dev together)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.timing import eventually_sync, timeout
from ticker.ops import procs
from ticker.ops.emulator import emulator_available


@pytest.mark.skipif(not emulator_available(), reason="needs the Pub/Sub emulator (gcloud + java)")
def test_a_second_stop_signal_does_not_orphan_the_server(tmp_path: Path) -> None:
    """With the emulator dev runs a publisher and a server: the second signal used to land while
    dev stopped the publisher, and the server was never told to stop."""
    port = procs.free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "ticker.ops.dev", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        eventually_sync(
            lambda: "ticker is running" in log.read_text(errors="replace"),
            within=90.0,
            what="dev running: emulator, server ready, publisher started",
        )
        eventually_sync(
            lambda: "ticker-publish: publishing" in log.read_text(errors="replace"),
            within=30.0,
            what="the publisher publishing",
        )
        time.sleep(1.0)  # in its loop: on SIGTERM it now flushes and reports, which takes a while
        # A terminal's SIGTERM reaches make and dev, and GNU make passes its own on; an
        # impatient user presses Ctrl-C again. Signals keep coming while dev stops its children.
        for _ in range(20):
            os.kill(dev.pid, signal.SIGTERM)
            time.sleep(0.05)
        dev.wait(timeout=timeout(60.0))
        text = log.read_text(errors="replace")
        assert "stopping server" in text, text[-2000:]
        assert not procs.port_open(port), "the server outlived `make dev`"
        assert "dev: stopping the emulator" in text
    finally:
        if dev.poll() is None:
            procs.signal_group(dev, signal.SIGKILL)
        # A server that outlived dev (the failure this test is about) leads its own session.
        for pid in re.findall(r"\[(\d+)\] \[INFO\] Running on", log.read_text(errors="replace")):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)
