"""The Pub/Sub thread -> event-loop bridge and the canary gate, on the real emulator.

Rules tested: the handler runs on the loop thread only; a message that cannot be handed over
(loop closed, callback error) is nacked and counted, never raised into the client library;
readiness needs a message on the stream (P7: a subscriber that silently receives nothing, e.g.
a float in FlowControl, keeps the instance unready; a working one is ready within 5 s).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import orjson
import pytest
from google.cloud import pubsub_v1

from tests.integration.brokers import Recorder, tick_bytes
from tests.support.timing import eventually
from ticker.broker.pubsub import PubSubBroker
from ticker.ops.emulator import PROJECT

pytestmark = pytest.mark.integration


@dataclass
class FakeMessage:
    """Just what the callback touches on a google `Message`."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    acked: bool = False
    nacked: bool = False

    def ack(self) -> None:
        self.acked = True

    def nack(self) -> None:
        self.nacked = True


@pytest.fixture
async def broker(emulator, unique_name):
    made = PubSubBroker(PROJECT, unique_name("bridge"), unique_name("ticker-bridge"))
    yield made
    await made.close()


async def test_handler_runs_on_the_loop_thread_in_arrival_order(broker):
    recorder = Recorder()
    await broker.start(recorder)
    for seq in range(1, 21):
        await broker.publish(tick_bytes("AAPL", seq), {"symbol": "AAPL"}, "AAPL")
    await eventually(lambda: len(recorder.messages) == 20, within=15, what="20 messages")
    assert recorder.threads == {threading.get_ident()}
    assert [orjson.loads(data)["seq"] for data, _ in recorder.messages] == list(range(1, 21))


async def test_message_is_nacked_when_the_loop_is_closed(broker):
    await broker.start(Recorder())
    closed = asyncio.new_event_loop()
    closed.close()
    broker._loop = closed  # as after shutdown: call_soon_threadsafe raises RuntimeError
    message = FakeMessage(b"x")
    await asyncio.to_thread(broker._on_message, message)
    assert (message.acked, message.nacked) == (False, True)


async def test_callback_errors_are_nacked_and_counted_not_raised(broker):
    await broker.start(Recorder())

    def fail(data, attributes):
        raise ValueError("injected")

    broker.inject_callback_fault = fail
    message = FakeMessage(b"x")
    await asyncio.to_thread(broker._on_message, message)
    assert message.nacked
    assert broker.stats()["callback_errors"] == 1


async def test_ready_within_5s_of_start_thanks_to_the_canary(broker):
    started = time.monotonic()
    await broker.start(Recorder())
    await eventually(broker.healthy, within=5, what="the first canary")
    print(f"P7: ready {time.monotonic() - started:.2f}s after start")


async def test_silent_subscriber_never_becomes_ready(emulator, unique_name):
    broken = pubsub_v1.types.FlowControl(max_messages=100, max_duration_per_lease_extension=10.0)
    broker = PubSubBroker(
        PROJECT, unique_name("bridge"), unique_name("ticker-silent"), flow_control=broken
    )
    try:
        await broker.start(Recorder())
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:  # observation window: it must stay unready throughout
            assert not broker.healthy()
            await asyncio.sleep(0.2)
        assert "waiting for the first message" in str(broker.problem())
        canaries = broker.stats()["canaries_published"]
        assert isinstance(canaries, int)
        assert canaries >= 2
    finally:
        await broker.close()
