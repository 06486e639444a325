"""Blocking Pub/Sub admin calls the broker and the janitor share.

Rules: every call carries a timeout and no automatic retry (the callers loop themselves, so a
dead emulator costs one timeout, not a minute of retries); run these with `asyncio.to_thread`
from async code. Subscriptions are created with the minimum expiration TTL (1 day; the emulator
ignores it), labelled `app=ticker`, and without message ordering (order comes from `seq`;
ordered delivery holds a key's next message until the previous one's ack, which capped ingest
near 1,000 msg/s).
"""

from __future__ import annotations

import contextlib
from enum import Enum

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

ADMIN_TIMEOUT = 5.0
EXPIRATION_TTL_SECONDS = 24 * 3600  # the minimum Pub/Sub allows
SUBSCRIPTION_PREFIX = "ticker-"  # every instance subscription; the janitor sweeps only these


class SubscriptionState(Enum):
    """What `subscription_state` found."""

    PRESENT = "present"
    MISSING = "missing"
    UNREACHABLE = "unreachable"


def ensure_topic(publisher: pubsub_v1.PublisherClient, topic_path: str) -> None:
    """Create the topic unless it exists."""
    with contextlib.suppress(gexc.AlreadyExists):
        publisher.create_topic(name=topic_path, retry=None, timeout=ADMIN_TIMEOUT)


def create_subscription(
    subscriber: pubsub_v1.SubscriberClient, subscription_path: str, topic_path: str
) -> None:
    """Create a subscription for one process (fails with AlreadyExists on a reused name)."""
    subscriber.create_subscription(
        request={
            "name": subscription_path,
            "topic": topic_path,
            "ack_deadline_seconds": 10,
            "expiration_policy": {"ttl": duration_pb2.Duration(seconds=EXPIRATION_TTL_SECONDS)},
            "labels": {"app": "ticker"},
        },
        retry=None,
        timeout=ADMIN_TIMEOUT,
    )


def delete_subscription(subscriber: pubsub_v1.SubscriberClient, subscription_path: str) -> bool:
    """Delete a subscription; True if it was deleted, False if it did not exist."""
    try:
        subscriber.delete_subscription(
            subscription=subscription_path, retry=None, timeout=ADMIN_TIMEOUT
        )
    except gexc.NotFound:
        return False
    return True


def subscription_state(
    subscriber: pubsub_v1.SubscriberClient, subscription_path: str, timeout: float = 2.0
) -> SubscriptionState:
    """Whether the subscription exists, is gone, or Pub/Sub cannot tell right now."""
    try:
        subscriber.get_subscription(subscription=subscription_path, retry=None, timeout=timeout)
    except gexc.NotFound:
        return SubscriptionState.MISSING
    except (gexc.GoogleAPICallError, gexc.RetryError):
        return SubscriptionState.UNREACHABLE
    return SubscriptionState.PRESENT


def topic_subscriptions(publisher: pubsub_v1.PublisherClient, topic_path: str) -> list[str]:
    """Full paths of every subscription attached to the topic."""
    pages = publisher.list_topic_subscriptions(
        request={"topic": topic_path}, retry=None, timeout=ADMIN_TIMEOUT
    )
    return [str(path) for path in pages]
