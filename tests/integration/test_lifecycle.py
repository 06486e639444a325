"""Instance lifecycle against real server processes on the emulator (RELIABILITY L1, P4, P5).

L1: SIGTERM -> readiness 503 at once, every WebSocket gets `reconnect` then close 1012 within
2 s, the subscription is deleted, the process exits within 20 s.
P4: after kill -9 and a restart, the new process has a new subscription and every tick
published after it is ready reaches a client in < 1 s with no seq gap (a reused name shares
ticks with the dead process's zombie stream: gaps and ~60 s lateness, so this fails).
P5: 20 start/SIGTERM cycles each delete their subscription in <= 5 s; after 3 kill -9 cycles
the janitor deletes exactly the orphans and never a live instance's subscription.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.cloud import pubsub_v1

from tests.integration.servers import PublisherProcess, server_env
from tests.support.servers import REPO, Server, launch
from tests.support.timing import eventually, eventually_sync
from tests.support.wsclient import WsClient, connect_clients, stop_clients
from ticker.broker import admin
from ticker.broker.admin import SubscriptionState
from ticker.ops.emulator import PROJECT

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN"]


def subscription_gone(sub_id: str) -> bool:
    subscriber = pubsub_v1.SubscriberClient()
    try:
        path = subscriber.subscription_path(PROJECT, sub_id)
        return admin.subscription_state(subscriber, path) is SubscriptionState.MISSING
    finally:
        subscriber.close()


def instance_subscriptions(topic: str) -> set[str]:
    publisher = pubsub_v1.PublisherClient()
    try:
        paths = admin.topic_subscriptions(publisher, publisher.topic_path(PROJECT, topic))
    finally:
        publisher.stop()
    return {p.rsplit("/", 1)[-1] for p in paths if "/ticker-" in p}


async def test_sigterm_drains_clients_then_deletes_subscription_and_exits(emulator, unique_name):
    topic = unique_name("prices")
    server = launch(server_env(emulator.host, topic, unique_name("l1")))
    publisher = PublisherProcess(emulator.host, topic, SYMBOLS, rate=40)
    clients: list[WsClient] = []
    try:
        await asyncio.to_thread(server.wait_ready)
        sub = server.subscription()
        clients += await connect_clients(server.url, SYMBOLS[:2], 15)
        await eventually(
            lambda: all(c.ticks for c in clients), within=15, what="a tick at every client"
        )

        signalled = time.monotonic()
        server.terminate()
        status, body = await asyncio.to_thread(
            eventually_sync,
            lambda: _not_ready(server),
            within=0.5,
            what="readiness to flip",
            every=0.05,
        )
        assert (status, body.get("reason")) == (503, "draining")

        await eventually(
            lambda: all(c.closed for c in clients), within=5, what="every client closed"
        )
        for client in clients:
            assert client.reconnects, "no reconnect frame before the close"
            assert client.closed_at is not None
            assert client.reconnects[0] <= client.closed_at
            assert client.close_code == 1012
            assert client.closed_at - signalled <= 2.0
        await asyncio.to_thread(
            eventually_sync, lambda: subscription_gone(sub), within=5, what="deletion", every=0.05
        )
        deleted_after = time.monotonic() - signalled
        assert await asyncio.to_thread(server.wait_exit, 20) == 0
        exited_after = time.monotonic() - signalled
        print(f"L1: subscription deleted {deleted_after:.1f}s, exit {exited_after:.1f}s")
        assert exited_after <= 20
    finally:
        await stop_clients(clients)
        server.stop()
        publisher.stop()


def _not_ready(server: Server) -> tuple[int | None, dict[str, object]] | None:
    status, body = server.readiness()
    return None if status == 200 else (status, body)


async def test_restart_after_kill_gets_a_fresh_subscription_and_every_tick_on_time(
    emulator, unique_name
):
    topic, instance = unique_name("prices"), unique_name("p4")
    publisher = PublisherProcess(emulator.host, topic, SYMBOLS, rate=40)
    first = launch(server_env(emulator.host, topic, instance))
    second: Server | None = None
    client: WsClient | None = None
    try:
        await asyncio.to_thread(first.wait_ready)
        old_sub = first.subscription()
        first.kill()  # its streaming pull stays registered on the emulator (a zombie)
        second = launch(server_env(emulator.host, topic, instance))
        await asyncio.to_thread(second.wait_ready)
        assert second.subscription() != old_sub
        (client,) = await connect_clients(second.url, SYMBOLS, 1)
        since_ms = time.time() * 1000
        await asyncio.sleep(6)  # the observation window itself, not a synchronisation
        after = [t for t in client.ticks if t[2] >= since_ms]
        late = [t for t in after if t[3] * 1000 - t[2] >= 1000]
        assert len(after) >= 40 * 6 * 0.7, f"only {len(after)} ticks in 6 s"
        assert not late, f"{len(late)} of {len(after)} ticks arrived >= 1 s late"
        for symbol in SYMBOLS:
            seqs = [t[1] for t in client.ticks if t[0] == symbol]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gap in {symbol}"
    finally:
        if client is not None:
            await client.stop()
        first.stop()
        if second is not None:
            second.stop()
        publisher.stop()


def _sigterm_cycle(env: dict[str, str]) -> tuple[str, float]:
    server = launch(env)
    try:
        server.wait_ready(30)
        sub = server.subscription()
        signalled = time.monotonic()
        server.terminate()
        eventually_sync(
            lambda: subscription_gone(sub), within=5, what=f"deletion of {sub}", every=0.1
        )
        deleted_after = time.monotonic() - signalled
        assert server.wait_exit(20) == 0
        return sub, deleted_after
    finally:
        server.stop()


def _killed(env: dict[str, str]) -> str:
    server = launch(env)
    try:
        server.wait_ready(30)
        sub = server.subscription()
        server.kill()
        return sub
    finally:
        server.stop()


def test_sigterm_cycles_clean_up_and_janitor_sweeps_only_the_dead(emulator, unique_name):
    topic = unique_name("prices")
    env = server_env(emulator.host, topic, unique_name("p5"))
    live = launch(server_env(emulator.host, topic, unique_name("live")))
    try:
        with ThreadPoolExecutor(5) as pool:
            cycles = list(pool.map(lambda _: _lane(env, 4), range(5)))
            dead = set(pool.map(lambda _: _killed(env), range(3)))
        durations = [d for lane in cycles for _, d in lane]
        assert len(durations) == 20
        print(f"P5: SIGTERM -> subscription deleted: max {max(durations):.1f}s")
        live.wait_ready()
        live_sub = live.subscription()
        assert instance_subscriptions(topic) == dead | {live_sub}

        swept = subprocess.run(
            [sys.executable, "-m", "ticker.ops.janitor", "--project", PROJECT,
             "--topics", f"{topic},{topic}-control", "--window", "6"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert swept.returncode == 0, swept.stderr
        print("janitor:", swept.stdout.strip().replace("\n", " | "))
        assert instance_subscriptions(topic) == {live_sub}
        assert len(instance_subscriptions(f"{topic}-control")) == 1  # the live one's presence
        assert live.readiness()[0] == 200
        assert live.subscription() == live_sub
    finally:
        live.stop()


def _lane(env: dict[str, str], cycles: int) -> list[tuple[str, float]]:
    return [_sigterm_cycle(env) for _ in range(cycles)]
