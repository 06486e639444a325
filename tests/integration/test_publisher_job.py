"""`python -m publisher` against the real emulator: counts, seqs, message shape, exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from ticker.core.codec import decode_message
from ticker.core.ticks import Tick
from ticker.ops.emulator import PROJECT, running_emulator
from ticker.ops.procs import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def publisher_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "publisher", "--project", PROJECT, *args]


def run_publisher(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        publisher_cmd(*args),
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_subscription(topic: str, sub: str) -> str:
    """Create the topic (if needed) and a subscription to it; return the subscription path."""
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(PROJECT, topic)
    sub_path = subscriber.subscription_path(PROJECT, sub)
    with contextlib.suppress(gexc.AlreadyExists):
        publisher.create_topic(name=topic_path)
    subscriber.create_subscription(request={"name": sub_path, "topic": topic_path})
    subscriber.close()
    publisher.transport.close()
    return str(sub_path)


def pull_all(
    sub_path: str,
    *,
    at_least: int = 1,
    quiet: float = 2.0,
    timeout: float = 30.0,
    enough: int | None = None,
) -> list[pubsub_v1.types.PubsubMessage]:
    """Pull and ack until `at_least` messages came and then nothing more for `quiet` seconds
    (or, for a stream that never goes quiet, until `enough` came)."""
    subscriber = pubsub_v1.SubscriberClient()
    received: list[pubsub_v1.types.PubsubMessage] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                resp = subscriber.pull(
                    request={"subscription": sub_path, "max_messages": 500}, timeout=2, retry=None
                )
            except gexc.DeadlineExceeded:
                resp = None
            if resp and resp.received_messages:
                received.extend(m.message for m in resp.received_messages)
                subscriber.acknowledge(
                    request={
                        "subscription": sub_path,
                        "ack_ids": [m.ack_id for m in resp.received_messages],
                    }
                )
                last_new = time.monotonic()
                if enough is not None and len(received) >= enough:
                    break
            elif len(received) >= at_least and time.monotonic() - last_new >= quiet:
                break
            else:
                time.sleep(0.1)
    finally:
        subscriber.close()
    return received


def all_ticks(messages: list[pubsub_v1.types.PubsubMessage]) -> list[Tick]:
    out: list[Tick] = []
    for msg in messages:
        decoded = decode_message(msg.data)
        assert decoded.problems == []
        out += decoded.ticks
    return out


def by_symbol(messages: list[pubsub_v1.types.PubsubMessage]) -> dict[str, list[Tick]]:
    out: dict[str, list[Tick]] = {}
    for tick in all_ticks(messages):
        out.setdefault(tick.symbol, []).append(tick)
    return out


def assert_contract_shape(msg: pubsub_v1.types.PubsubMessage) -> None:
    obj = json.loads(msg.data.decode("utf-8"))
    assert msg.ordering_key == ""  # consumers order by seq; no ordering keys
    if "ticks" in obj:  # packed: no symbol attribute, each tick has the contract's shape
        ticks = obj["ticks"]
        assert len(ticks) > 1
    else:
        ticks = [obj]
        assert msg.attributes["symbol"] == obj["symbol"]
    for tick in ticks:
        assert {"symbol", "price", "seq", "ts"} <= tick.keys()
        assert isinstance(tick["seq"], int)
        assert isinstance(tick["ts"], int)
        assert isinstance(tick["price"], float)
        assert tick["price"] > 0


def test_publishes_paced_ticks_with_contiguous_seqs(emulator, unique_name):
    topic = unique_name("prices")
    sub_path = make_subscription(topic, unique_name("sub"))
    started_ms = time.time_ns() // 1_000_000
    result = run_publisher(
        "--symbols", "aapl,MSFT", "--rate", "50", "--duration", "2", "--topic", topic,
        "--progress-interval", "0.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    messages = pull_all(sub_path, at_least=1)

    assert 85 <= len(all_ticks(messages)) <= 115
    for msg in messages:
        assert_contract_shape(msg)
    ticks = by_symbol(messages)
    assert set(ticks) == {"AAPL", "MSFT"}
    for symbol_ticks in ticks.values():
        seqs = sorted(t.seq for t in symbol_ticks)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gap or duplicate"
        assert seqs[0] >= started_ms * 1000  # above any seq of an earlier run
        assert all(t.ts >= started_ms for t in symbol_ticks)
    assert "elapsed=" in result.stderr
    assert "rate=" in result.stderr
    assert f"done (duration reached) in 2.0s: sent={len(all_ticks(messages))} errors=0" in (
        result.stderr
    )


def test_unreachable_pubsub_exits_1_with_one_clear_line():
    env = dict(os.environ, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = run_publisher("--duration", "1", env=env, timeout=30)
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ticker-publish: error: cannot use Pub/Sub (emulator 127.0.0.1:")


def test_replay_with_a_bad_row_names_the_line_and_publishes_nothing(
    emulator, unique_name, tmp_path
):
    topic = unique_name("prices")
    sub_path = make_subscription(topic, unique_name("sub"))
    csv = tmp_path / "ticks.csv"
    csv.write_text("symbol,price\nAAPL,190.1\nMSFT,not-a-price\nGOOG,175\n")
    result = run_publisher("--replay", str(csv), "--topic", topic)
    assert result.returncode == 2
    assert "line 3: price is not a number: 'not-a-price'" in result.stderr
    assert "nothing published" in result.stderr
    assert pull_all(sub_path, at_least=0, quiet=1.0) == []


def test_replay_publishes_exactly_the_rows_in_order(emulator, unique_name, tmp_path):
    topic = unique_name("prices")
    sub_path = make_subscription(topic, unique_name("sub"))
    rows = [
        ("AAPL", 190.01, "100", "189.99", "190.03"),
        ("MSFT", 420.5, "", "", ""),
        ("AAPL", 190.02, "200", "", ""),
        ("NVDA", 120.0, "", "119.9", "120.1"),
        ("MSFT", 420.25, "300", "", ""),
        ("AAPL", 189.97, "", "", ""),
    ]
    csv = tmp_path / "ticks.csv"
    csv.write_text(
        "symbol,price,volume,bid,ask\n" + "".join(f"{','.join(map(str, r))}\n" for r in rows)
    )
    result = run_publisher("--replay", str(csv), "--rate", "50", "--topic", topic)
    assert result.returncode == 0, result.stderr
    assert "done (replay finished)" in result.stderr
    assert "sent=6 errors=0" in result.stderr

    messages = pull_all(sub_path, at_least=1)
    assert len(all_ticks(messages)) == len(rows)
    for msg in messages:
        assert_contract_shape(msg)
    # Rows are 20 ms apart at 50/s, so ts (ms, stamped when made) gives the publishing order.
    ticks = sorted(all_ticks(messages), key=lambda t: t.ts)
    assert [(t.symbol, t.price) for t in ticks] == [(r[0], r[1]) for r in rows]
    assert ticks[0].extra == {"volume": 100.0, "bid": 189.99, "ask": 190.03}
    assert ticks[1].extra == {}
    base = ticks[0].seq
    assert [t.seq - base for t in ticks] == [0, 0, 1, 0, 1, 2]


def test_sigterm_stops_cleanly_after_flushing(emulator, unique_name):
    topic = unique_name("prices")
    sub_path = make_subscription(topic, unique_name("sub"))
    cmd = publisher_cmd("--rate", "40", "--topic", topic, "--progress-interval", "0.5")
    with subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            assert "publishing" in proc.stderr.readline()
            assert "elapsed=" in proc.stderr.readline()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "done (stopped by SIGTERM)" in err
    sent = int(err.split("sent=")[-1].split()[0])
    assert sent > 0
    assert len(all_ticks(pull_all(sub_path, at_least=1))) == sent


def test_keeps_going_through_an_emulator_crash_and_resumes(emulator, unique_name, monkeypatch):
    """kill -9 the emulator mid-run and restart it empty: the job reports the outage, recreates
    the topic and publishes again without exiting."""
    # A private emulator, as this one gets killed; `emulator` is requested for its skip/fail rule.
    with running_emulator() as emu:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emu.host)
        topic = unique_name("prices")
        cmd = publisher_cmd("--symbols", "AAPL", "--rate", "20", "--topic", topic)
        cmd += ["--progress-interval", "0.5"]
        proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []

        def read_until(needle: str) -> None:
            assert proc.stderr is not None
            while True:
                line = proc.stderr.readline()
                assert line, f"publisher exited early; output:\n{''.join(lines)}"
                lines.append(line)
                if needle in line:
                    return

        try:
            read_until("elapsed=")
            emu.kill()
            read_until("publish failing")
            emu.start()
            sub_path = make_subscription(topic, unique_name("sub"))
            messages = pull_all(sub_path, enough=5, timeout=30)
            assert len(messages) >= 5, "".join(lines)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()  # reap and close the pipe
        assert proc.returncode == 0, "".join(lines) + err
        assert "done (stopped by SIGTERM)" in err


def test_packs_ticks_at_rate_and_keeps_every_seq(emulator, unique_name):
    """2,000 ticks/s over 200 symbols for 2 s: packed messages, every tick once, seqs contiguous."""
    topic = unique_name("prices")
    sub_path = make_subscription(topic, unique_name("sub"))
    symbols = ",".join(f"S{i:03d}" for i in range(200))
    result = run_publisher(
        "--symbols", symbols, "--rate", "2000", "--duration", "2", "--topic", topic,
        "--pack-ms", "20", "--progress-interval", "0.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "msg_rate=" in result.stderr
    messages = pull_all(sub_path, at_least=1)
    ticks = all_ticks(messages)
    assert 3800 <= len(ticks) <= 4200
    assert len(messages) < len(ticks) / 5  # packed: ~40 ticks per 20 ms window
    for msg in messages:
        assert_contract_shape(msg)
    for symbol_ticks in by_symbol(messages).values():
        seqs = sorted(t.seq for t in symbol_ticks)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert f"sent={len(ticks)} errors=0" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pack-max", "20000000"], "argument --pack-max: must be between 200 and 9000000"),
        (["--pack-ms", "5000"], "argument --pack-ms: must be <= 1000"),
    ],
)
def test_pack_arguments_are_checked(args, message):
    result = run_publisher(*args, "--duration", "1", timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
