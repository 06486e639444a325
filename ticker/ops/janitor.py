"""`python -m ticker.ops.janitor`: delete the subscriptions of instances that are gone.

Why: every server process creates its own `ticker-*` subscription and deletes it on SIGTERM, but
a crashed process (kill -9, OOM, host failure) leaves it behind: real Pub/Sub keeps it for the
expiration TTL (1 day at least) and the emulator forever, and it keeps buying messages.

How it knows what is orphaned (identical on real Pub/Sub and the emulator, no labels needed):
every live server publishes a canary naming its current subscription every 2 s on the topic it
subscribes to (`ticker.broker.canary`). The janitor, per topic:
  1. lists the topic's `ticker-*`/`janitor-*` subscriptions: the candidates, fixed *before*
     listening, so one created during the sweep is never a candidate;
  2. opens its own temporary `janitor-*` subscription and publishes a canary of its own; no
     sweep happens unless that canary comes back (it proves the janitor can hear canaries);
  3. listens for `window` seconds (default 15 s, 7 canary intervals) and notes every canary;
  4. deletes the candidates no canary named, then its temporary subscription.
A live instance is never swept unless it failed to get a single canary through for the whole
window; even then its supervisor sees the subscription missing and recreates one under a new name
within seconds (a blip covered by client resume). Run it at any time, from anywhere, as often as
you like (concurrent janitors name their own temporary subscriptions in canaries too): e.g. every
10 minutes from Cloud Scheduler or the publisher's host. Exit codes: 0 swept, 1 could not sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from ticker.broker import admin
from ticker.broker.canary import canary_message, canary_source
from ticker.server.settings import Settings

log = logging.getLogger(__name__)
SWEPT_PREFIXES = (admin.SUBSCRIPTION_PREFIX, "janitor-")
DEFAULT_WINDOW = 15.0
HEAR_OWN_TIMEOUT = 20.0


class JanitorError(Exception):
    """The sweep could not be done safely (nothing was deleted for that topic)."""


def short_name(path: str) -> str:
    """`projects/p/subscriptions/x` -> `x`."""
    return path.rsplit("/", 1)[-1]


def orphaned(candidates: Iterable[str], alive: set[str]) -> list[str]:
    """The candidate paths that no canary named during the observation window."""
    return [path for path in candidates if short_name(path) not in alive]


@dataclass(slots=True)
class TopicReport:
    """What one topic's sweep found and did."""

    topic: str
    candidates: list[str] = field(default_factory=list)
    alive: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One human line for the CLI."""
        names = ", ".join(short_name(p) for p in self.deleted) or "-"
        return (
            f"{short_name(self.topic)}: {len(self.candidates)} candidates, "
            f"{len(self.alive)} live, deleted {len(self.deleted)}: {names}"
        )


class _Listener:
    """Collects canary sources from a temporary subscription (callbacks on client threads)."""

    def __init__(self, own: str) -> None:
        self.own = own
        self.heard_own = threading.Event()
        self._lock = threading.Lock()
        self._alive: set[str] = set()

    def __call__(self, message: Any) -> None:
        # Runs on a Pub/Sub client thread.
        try:
            source = canary_source(dict(message.attributes))
            if source is not None:
                with self._lock:
                    self._alive.add(source)
                if source == self.own:
                    self.heard_own.set()
        finally:
            message.ack()

    def alive(self) -> set[str]:
        with self._lock:
            return set(self._alive)


def sweep_topic(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    topic_path: str,
    window: float,
    *,
    dry_run: bool = False,
) -> TopicReport:
    """Sweep one topic as the module docstring describes; raise `JanitorError` if unsafe."""
    report = TopicReport(topic_path)
    listing = admin.topic_subscriptions(publisher, topic_path)
    report.candidates = [p for p in listing if short_name(p).startswith(SWEPT_PREFIXES)]
    project = topic_path.split("/")[1]
    own_id = f"janitor-{uuid.uuid4().hex[:12]}"
    own = str(subscriber.subscription_path(project, own_id))
    admin.create_subscription(subscriber, own, topic_path)
    listener = _Listener(own_id)
    future = subscriber.subscribe(own, callback=listener)
    try:
        _hear_own_canary(publisher, topic_path, listener)
        time.sleep(window)  # the observation window itself (a blocking CLI, not a test)
        report.alive = listener.alive()
        victims = orphaned(report.candidates, report.alive)
        for path in victims:
            if dry_run or admin.delete_subscription(subscriber, path):
                report.deleted.append(path)
    finally:
        future.cancel()
        with contextlib.suppress(gexc.GoogleAPICallError):
            admin.delete_subscription(subscriber, own)
    return report


def _hear_own_canary(
    publisher: pubsub_v1.PublisherClient, topic_path: str, listener: _Listener
) -> None:
    deadline = time.monotonic() + HEAR_OWN_TIMEOUT
    while time.monotonic() < deadline:
        data, attributes = canary_message(listener.own, time.time_ns() // 1_000_000)
        publisher.publish(topic_path, data, **attributes).result(timeout=admin.ADMIN_TIMEOUT)
        if listener.heard_own.wait(2.0):
            return
    raise JanitorError(f"{topic_path}: own canary not received in {HEAR_OWN_TIMEOUT:.0f}s")


def sweep(
    project: str, topics: Sequence[str], window: float = DEFAULT_WINDOW, *, dry_run: bool = False
) -> list[TopicReport]:
    """Sweep every topic (concurrently); raise `JanitorError` if any cannot be swept."""
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()

    def one(topic: str) -> TopicReport | None:
        path = str(publisher.topic_path(project, topic))
        try:
            return sweep_topic(publisher, subscriber, path, window, dry_run=dry_run)
        except gexc.NotFound:
            log.info("topic %s does not exist; nothing to sweep", path)
            return None
        except (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError) as exc:
            raise JanitorError(f"{path}: {type(exc).__name__}: {exc}") from exc

    try:
        with ThreadPoolExecutor(max(1, len(topics))) as pool:
            reports = list(pool.map(one, topics))
    finally:
        subscriber.close()
        publisher.stop()
    return [report for report in reports if report is not None]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: sweep the price topic and the control topic of the configured project."""
    settings = Settings.from_env(os.environ)
    parser = argparse.ArgumentParser(
        prog="python -m ticker.ops.janitor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--project", default=settings.project)
    parser.add_argument(
        "--topics", default=f"{settings.topic},{settings.control_topic}", help="comma list"
    )
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW, help="seconds to listen")
    parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    args = parser.parse_args(argv)
    topics = [t.strip() for t in args.topics.split(",") if t.strip()]
    try:
        reports = sweep(args.project, topics, args.window, dry_run=args.dry_run)
    except JanitorError as exc:
        print(f"janitor: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        print(("[dry run] " if args.dry_run else "") + report.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
