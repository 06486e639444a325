"""One connected client, whatever its transport: its symbols, its bounded outbox, its wake-up.

Rules:
- The hub calls `offer`/`push_control` synchronously on the event-loop thread; only the
  transport's writer awaits (`next_batch`). A session never holds state a client depends on
  across instances: the client's resume cursor is `outbox.last_seq`, which it also keeps itself.
- The session is the one record of what went out (`sent`), for every transport alike. A frame is
  one message the client receives, whatever it carries: a WebSocket message, an SSE event, a
  long-poll answer; ticks, control frames and heartbeats all count (a frame is what costs a
  write, which is what the flush pacing and the fast paths are about). Each tick counts once.
  Latency is recorded once per frame that carries ticks, from its oldest tick's `ts` (the worst
  of the batch) to the write. The direct write in `offer` (one tick, one frame) records the same,
  inlined because it runs once per tick, and is also counted apart (`direct_sent`). A control
  frame for an idle writer with nothing pending goes out at once too (`direct_text`), counted as
  a frame but not as the last one for the pacing.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from ticker.core.codec import reconnect_frame, resync_frame, ticks_frame
from ticker.core.latency import LatencyWindow
from ticker.core.outbox import Outbox

Transport = Literal["websocket", "sse", "longpoll"]
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)  # the one list: stats, metrics, hub
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Batch:
    """What the writer sends next: control frames first, then one ticks frame (if any)."""

    control: list[str]
    ticks: list[str]
    oldest_ts: int

    def frames(self) -> list[str]:
        """The batch as text frames, ticks joined into a single frame."""
        if self.ticks:
            return [*self.control, ticks_frame(self.ticks)]
        return self.control


class Session:
    """A client's subscriptions and pending output; transports own the socket, not this."""

    def __init__(
        self,
        transport: Transport,
        peer: str,
        outbox_limit: int,
        control_limit: int = 32,
        clock: Callable[[], float] = time.monotonic,
        latency: LatencyWindow | None = None,
    ):
        self.id = next(_ids)
        self.transport: Transport = transport
        self.peer = peer
        self.symbols: set[str] = set()
        self.outbox = Outbox(limit=outbox_limit, clock=clock)  # the clock paces max_rate symbols
        # A list and a future made only while waiting: an empty deque and an asyncio.Event cost
        # ~1.7 KB per connection, which 10,000 quiet clients feel.
        self._control: list[str] = []
        self._control_limit = control_limit
        self._waiter: asyncio.Future[None] | None = None  # the writer's, while it waits for work
        # Set by a transport that can write a one-tick frame synchronously (WebSocket): it
        # returns the time.monotonic() of the write, or 0.0 when it cannot write right now
        # (socket backed up, closing, a frame went out too recently). See `offer`.
        self.direct: Callable[[str], float] | None = None
        # Its twin for control frames (heartbeat, pong, replies): writes one text frame now, or
        # returns False (socket backed up, closing). Used only when nothing is ahead of the frame.
        self.direct_text: Callable[[str], bool] | None = None
        self.latency = latency  # the instance's publish-to-send record (None: not recorded)
        self.last_frame_at = 0.0  # time.monotonic() of the last frame sent (pacing)
        self.close_code: int | None = None  # set by `end`: close once what is pending is sent
        self.resynced: set[str] = set()  # symbols with a gap since the transport last looked
        self._unverified: dict[str, int] = {}  # symbol -> resume seq this instance could not check
        self.frames_sent = 0
        self.ticks_sent = 0
        self.direct_sent = 0  # of which written straight by `offer` (one tick per frame)

    def offer(self, symbol: str, seq: int, encoded: str, ts: int) -> None:
        """Queue a tick for this client (no await); wakes the writer on the first pending tick.

        When the writer is idle with nothing pending and the transport can write directly, the
        tick goes out at once as its own frame: nothing is ahead of it, so order holds, and no
        task wakes up for it (a quiet client costs one write per tick, not a writer's round).
        """
        if self._unverified and symbol in self._unverified:
            self._verify(symbol, seq)
        outbox, direct = self.outbox, self.direct
        if (
            direct is not None
            and self._waiter is not None
            and not outbox
            and not self._control
            and (not outbox.paced or symbol not in outbox.paced)  # max_rate: through the pacing
        ):
            if seq <= outbox.last_seq.get(symbol, -1):
                return
            written_at = direct(encoded)
            if written_at:  # `sent(1, 1, ts)`, inlined: this runs once per tick
                outbox.last_seq[symbol] = seq
                self.last_frame_at = written_at
                self.frames_sent += 1
                self.ticks_sent += 1
                self.direct_sent += 1
                if self.latency is not None:
                    self.latency.record(time.time() * 1000 - ts)
                return
        if outbox.offer(symbol, seq, encoded, ts):
            self._wake()

    def sent(self, frames: int, ticks: int = 0, oldest_ts: int = 0) -> None:
        """Record that `frames` frames carrying `ticks` ticks (oldest: `oldest_ts`) went out now.

        Every transport calls this once per write, as it hands the write over (see the module's
        rule); `last_frame_at` paces the direct path.
        """
        self.frames_sent += frames
        self.last_frame_at = time.monotonic()
        if ticks:
            self.ticks_sent += ticks
            if self.latency is not None:
                self.latency.record(time.time() * 1000 - oldest_ts)

    def push_control(self, frame: str) -> None:
        """Queue a control frame (subscribed, error, reconnect...). Oldest drop past the bound.

        With the writer idle and nothing pending, a transport that can write directly sends it
        at once instead: nothing is ahead of it, so order holds, and the writer's task is not
        woken for it (a heartbeat and the page's pong per client per interval were two task
        rounds each). A close (`end`) always goes through the writer, which then closes.
        """
        if (
            self.direct_text is not None
            and self._waiter is not None
            and self.close_code is None
            and not self._control
            and not self.outbox
            and self.direct_text(frame)
        ):
            # Counted, but not as the last frame for the pacing (`last_frame_at`): the next
            # tick (a snapshot after `subscribed`) must not wait an interval for it.
            self.frames_sent += 1
            return
        control = self._control
        control.append(frame)
        if len(control) > self._control_limit:
            del control[0]
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def writer_idle(self) -> bool:
        """Whether the writer waits for work with nothing in hand (see `offer`)."""
        return self._waiter is not None

    def verify_resume(self, symbol: str, since: int) -> None:
        """Resume after `since` although this instance has no history of `symbol` yet.

        Why: an instance that has not received the symbol's next tick yet (it lags the instance
        that issued the cursor, or the symbol is quiet) cannot tell a gap from a lag. The first
        newer tick decides: `since + 1` means nothing was lost, anything later means a resync.
        """
        self.outbox.last_seq[symbol] = since
        self._unverified[symbol] = since

    def _verify(self, symbol: str, seq: int) -> None:
        since = self._unverified[symbol]
        if seq > since:
            del self._unverified[symbol]
            if seq != since + 1:
                self.resync([symbol])

    def resync(self, symbols: list[str]) -> None:
        """Tell the client that ticks of `symbols` were lost; a snapshot tick follows."""
        self.resynced.update(symbols)
        self.push_control(resync_frame(symbols))

    def end(self, code: int, reason: str) -> None:
        """Ask the transport to send a `reconnect` frame, then close with `code`."""
        if self.close_code is None:
            self.close_code = code
            self.push_control(reconnect_frame(reason))

    def has_pending(self) -> bool:
        """Whether anything waits to be sent now (a held max_rate tick once it is due)."""
        outbox = self.outbox
        return bool(self._control) or bool(outbox) or (bool(outbox.paced) and outbox.due())

    async def wait_pending(self) -> None:
        """Wait until something is pending; meanwhile the writer counts as idle (see `offer`).

        With max_rate ticks held, one timer wakes the writer at the earliest due time (one
        deadline per session, none per symbol).
        """
        loop = asyncio.get_running_loop()
        while not self.has_pending():
            due = self.outbox.next_due() if self.outbox.paced else None
            timer = None
            if due is not None:  # fires after wait_wake has made its waiter
                timer = loop.call_later(max(0.0, due - self.outbox.clock()), self._wake)
            try:
                await self.wait_wake()
            finally:
                if timer is not None:
                    timer.cancel()

    async def wait_wake(self) -> None:
        """Wait for the next wake-up (a control frame, or a tick into an empty outbox)."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def next_batch(self) -> Batch:
        """Wait until something is pending, then take all of it."""
        await self.wait_pending()
        return self.take_now()

    def only_ticks(self) -> bool:
        """Whether ticks are all this session can have to send: no control frame, no close, no
        max_rate symbol (a held tick falls due without a new offer, so its writer must watch)."""
        return not self._control and self.close_code is None and not self.outbox.paced

    def take_ticks(self) -> tuple[list[str], int] | None:
        """Take the pending ticks (and their oldest `ts`) when ticks are all there is to send.

        For a write that bypasses the writer (the flush clock's sweep): None when nothing is
        pending, or something only the writer handles is (a control frame, a close).
        """
        if self._control or self.close_code is not None or not self.outbox:
            return None
        return self.outbox.take()

    def take_now(self) -> Batch:
        """Take whatever is pending without waiting (long polling answers)."""
        control, self._control = self._control, []
        ticks, oldest = self.outbox.take()
        return Batch(control, ticks, oldest)

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.transport} {self.peer} {len(self.symbols)} symbols>"
