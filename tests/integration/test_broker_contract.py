"""One scenario suite for every broker: the in-memory one is trusted only as far as it passes
the same tests as Pub/Sub on the real emulator (broadcaster's contract-test idea).

Scenarios: per-symbol order; duplicates delivered and tolerated (the hub counts them);
close() releases the subscription; bad bytes never stop delivery; canaries never reach the handler;
health is one value (`Broker.health()`) with what each broker knows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from google.cloud import pubsub_v1

from dashboard.stats import broker_health
from tests.integration.brokers import Recorder, tick_bytes
from tests.support.timing import eventually
from ticker.broker import admin
from ticker.broker.admin import SubscriptionState
from ticker.broker.base import Broker
from ticker.broker.canary import canary_message
from ticker.broker.memory import InMemoryBroker, MemoryBus
from ticker.broker.pubsub import PubSubBroker
from ticker.ops.emulator import PROJECT
from ticker.server.runtime import Runtime
from ticker.server.settings import Settings

pytestmark = pytest.mark.integration
TIMEOUT = 15.0


@pytest.fixture(params=["memory", "pubsub"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "pubsub":
        request.getfixturevalue("emulator")
    return str(request.param)


@pytest.fixture
async def new_broker(kind, unique_name) -> AsyncIterator[Callable[[], Broker]]:
    """Brokers on one fresh topic (a fresh subscription each); all closed afterwards."""
    topic, bus, made = unique_name("contract"), MemoryBus(), []

    def make() -> Broker:
        broker: Broker
        if kind == "memory":
            broker = InMemoryBroker(topic, bus)
        else:
            broker = PubSubBroker(PROJECT, topic, unique_name("ticker-contract"))
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


async def started(broker: Broker, handler) -> Broker:
    await broker.start(handler)
    await eventually(broker.healthy, within=TIMEOUT, what="a healthy stream")
    return broker


async def test_each_symbols_messages_arrive_in_order(new_broker):
    recorder = Recorder()
    broker = await started(new_broker(), recorder)
    sent = [(symbol, seq) for seq in range(1, 31) for symbol in ("AAPL", "MSFT")]
    for symbol, seq in sent:
        await broker.publish(tick_bytes(symbol, seq), {"symbol": symbol}, symbol)
    await eventually(
        lambda: len(recorder.messages) >= len(sent), within=TIMEOUT, what="every message"
    )
    got = [orjson.loads(data) for data, _ in recorder.messages]
    for symbol in ("AAPL", "MSFT"):
        assert [m["seq"] for m in got if m["symbol"] == symbol] == list(range(1, 31))


async def test_duplicates_are_tolerated_and_counted(new_broker):
    runtime = Runtime.build(Settings(sim_rate=0), broker=new_broker())
    await runtime.start()
    await eventually(runtime.broker.healthy, within=TIMEOUT, what="a healthy stream")
    for seq in (1, 1, 2, 2, 3):
        await runtime.broker.publish(tick_bytes("AAPL", seq), {"symbol": "AAPL"}, "AAPL")
    counters = runtime.hub.counters
    await eventually(lambda: counters.ticks_in >= 5, within=TIMEOUT, what="all five deliveries")
    assert (counters.ticks_accepted, counters.duplicates) == (3, 2)


async def test_close_releases_the_subscription(new_broker, kind):
    recorder = Recorder()
    broker = await started(new_broker(), recorder)
    await broker.close()
    if isinstance(broker, PubSubBroker):
        subscriber = pubsub_v1.SubscriberClient()
        state = admin.subscription_state(subscriber, broker.subscription_path)
        subscriber.close()
        assert state is SubscriptionState.MISSING
    else:
        assert isinstance(broker, InMemoryBroker)
        assert broker not in broker.bus.topics[broker.topic]
    await broker.close()  # twice is fine


async def test_bad_bytes_never_stop_delivery(new_broker):
    runtime = Runtime.build(Settings(sim_rate=0), broker=new_broker())
    await runtime.start()
    await eventually(runtime.broker.healthy, within=TIMEOUT, what="a healthy stream")
    for data in (b"\xff\xfe not json", b"{}", b"[1,2]", tick_bytes("AAPL", 7)):
        await runtime.broker.publish(data, {"symbol": "AAPL"}, "AAPL")
    counters = runtime.hub.counters
    await eventually(lambda: counters.ticks_accepted == 1, within=TIMEOUT, what="the good tick")
    assert counters.malformed == 3


async def test_canaries_never_reach_the_handler(new_broker):
    recorder = Recorder()
    broker = await started(new_broker(), recorder)
    data, attributes = canary_message("someone-else", 0)
    await broker.publish(data, attributes, "")
    await broker.publish(tick_bytes("AAPL", 1), {"symbol": "AAPL"}, "AAPL")
    await eventually(lambda: recorder.messages, within=TIMEOUT, what="the tick")
    assert all("ticker_canary" not in attrs for _, attrs in recorder.messages)


async def test_health_is_one_value_with_what_the_broker_knows(new_broker, kind):
    broker = new_broker()
    assert not broker.health().healthy  # not started yet
    await started(broker, Recorder())
    health = broker.health()
    assert (health.healthy, health.problem) == (True, None)
    view = broker_health(Runtime.build(Settings(sim_rate=0, broker=kind), broker=broker))
    if isinstance(broker, PubSubBroker):
        assert (health.resubscribes, health.callback_errors) == (0, 0)
        assert health.subscription == broker.subscription_path
        assert view == {
            "kind": "pubsub",
            "healthy": True,
            "subscription": broker.subscription_path,
            "resubscribes": 0,
            "callback_errors": 0,
        }
    else:
        assert (health.subscription, health.resubscribes, health.callback_errors) == (None,) * 3
        assert view == {"kind": "memory", "healthy": True}
    await broker.close()
    assert not broker.health().healthy
    assert broker.health().problem is not None
