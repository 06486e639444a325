"""The bare emulator hop: publish -> subscriber callback latency, on a subscription of its own.

Rule: speaks the load client's line protocol (prints `ready`, takes `measure`, prints `result`), so
the harness measures it in the same window as the server's clients. It reads one-tick and packed
messages alike (one orjson call per message, as the server), and counts per window the messages,
the ticks and the bytes, which give what Pub/Sub bills (at least 1,000 bytes per message). Run:
PUBSUB_EMULATOR_HOST=... python -m bench.hop PROJECT TOPIC
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any

import orjson
from google.cloud import pubsub_v1

BUCKET_MS = 0.1


class Hop:
    """Counts messages whose `ts` falls in the window, in a latency histogram."""

    def __init__(self) -> None:
        self.t0 = float("inf")
        self.t1 = float("inf")
        self.hist: dict[int, int] = {}
        self.received = 0
        self.messages = 0
        self.window_messages = 0
        self.window_bytes = 0
        self.window_billed = 0
        self.lock = threading.Lock()

    def callback(self, message: Any) -> None:
        # Runs on a Pub/Sub client thread.
        now = time.time() * 1000
        message.ack()
        data = message.data
        obj = orjson.loads(data)
        stamps = [t["ts"] for t in obj["ticks"]] if "ticks" in obj else [obj["ts"]]
        size = len(data) + sum(len(k) + len(v) for k, v in message.attributes.items())
        with self.lock:
            self.messages += 1
            if self.t0 <= stamps[0] < self.t1:
                self.window_messages += 1
                self.window_bytes += size
                self.window_billed += max(1000, size)
            for ts in stamps:
                if self.t0 <= ts < self.t1:
                    self.received += 1
                    bucket = max(0, int((now - ts) / BUCKET_MS))
                    self.hist[bucket] = self.hist.get(bucket, 0) + 1


def main(project: str, topic: str) -> None:
    hop = Hop()
    subscriber = pubsub_v1.SubscriberClient()
    topic_path = pubsub_v1.PublisherClient.topic_path(project, topic)
    sub_path = subscriber.subscription_path(project, f"bench-hop-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(request={"name": sub_path, "topic": topic_path})
    flow = pubsub_v1.types.FlowControl(max_messages=2000)
    future = subscriber.subscribe(sub_path, callback=hop.callback, flow_control=flow)
    print(json.dumps({"event": "ready"}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] != "measure":
            break
        hop.t0, hop.t1 = cmd["t0"], cmd["t1"]
        time.sleep(max(0.0, (hop.t1 + cmd["grace"]) / 1000 - time.time()))
        with hop.lock:
            result = {
                "received": hop.received,
                "messages": hop.messages,
                "window_messages": hop.window_messages,
                "window_bytes": hop.window_bytes,
                "window_billed": hop.window_billed,
                "hist": hop.hist,
            }
        print(json.dumps({"event": "result", "bucket_ms": BUCKET_MS, **result}), flush=True)
        break
    future.cancel()
    subscriber.delete_subscription(subscription=sub_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
