"""The publisher's Pub/Sub client: no batching delay on top of the publisher's own packing."""

from __future__ import annotations

import pytest

from publisher.sink import PubSubSink


@pytest.fixture(autouse=True)
def _emulator_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # no call is made: nothing listens


def test_packed_messages_go_out_one_request_each_without_waiting_for_more():
    sink = PubSubSink("p", "t", packed=True)
    try:
        assert sink._client.batch_settings.max_messages == 1  # full at once: committed now
    finally:
        sink.close()


def test_single_tick_messages_keep_the_clients_batching():
    sink = PubSubSink("p", "t")
    try:
        settings = sink._client.batch_settings
        assert (settings.max_messages, settings.max_latency) == (100, 0.01)
    finally:
        sink.close()
