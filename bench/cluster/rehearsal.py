"""What App Engine does to a running cluster, done to the local one and measured.

Rules:
- Each scenario acts on a running `Cluster` with a `Crowd` of clients connected through the
  front end and returns a JSON-able dict of figures; it never asserts (the test does that).
- Blocking steps (starting processes, polling other processes) run in threads so the clients'
  event loop keeps reading; waits poll with deadlines, never fixed sleeps for synchronisation
  (a fixed settle time before a final count is said as such).
- Times are seconds from the scenario's own start (`t0`), monotonic.
"""

from __future__ import annotations

import asyncio
import http.client
import signal
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from bench.cluster.clients import Crowd, move_summary, percentile
from bench.cluster.stack import Cluster, Instance

Log = Callable[[str], None]
SETTLE_S = 3.0  # ticks keep flowing this long before the final counts, so gaps would show


async def until(check: Callable[[], Any], within: float, every: float = 0.1) -> float | None:
    """Seconds until `check()` held, or None when it did not within `within`."""
    start = time.monotonic()
    while time.monotonic() - start <= within:
        if check():
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(every)
    return None


def base_name(inst: Instance) -> str:
    return inst.id.rsplit("-v", 1)[0]


async def view_matches(cluster: Cluster, crowd: Crowd, within: float) -> dict[str, Any]:
    """How long until the dashboard total equals the clients connected, on every live instance."""
    want_instances = len(cluster.instances)
    start = time.monotonic()
    last: dict[str, Any] = {}
    while time.monotonic() - start <= within:
        view = await asyncio.to_thread(cluster.cluster_view)
        if view is not None:
            c = view["cluster"]
            last = {"total": c["connections"], "instances": len(c["instances"])}
            if c["connections"] == crowd.connected() and len(c["instances"]) == want_instances:
                return {"within_s": round(time.monotonic() - start, 2), **last}
        await asyncio.sleep(0.2)
    return {"within_s": None, **last, "clients_connected": crowd.connected()}


def final_counts(crowd: Crowd) -> dict[str, Any]:
    return {**crowd.totals(), "behind": crowd.behind(), "by_slot": crowd.by_slot()}


async def server_side(cluster: Cluster) -> dict[str, Any]:
    """What the instances themselves counted (the dashboard's per-instance totals): conflation
    for clients that fell behind explains seq jumps a client sees without a `resync`."""
    view = await asyncio.to_thread(cluster.cluster_view)
    if view is None:
        return {}
    totals = [i.get("totals") or {} for i in view["cluster"]["instances"]]
    return {
        "conflated": sum(int(t.get("conflated") or 0) for t in totals),
        "feed_gaps": sum(int(t.get("gaps") or 0) for t in totals),
        "instances_in_view": len(totals),
    }


async def caught_up(crowd: Crowd, within: float = 30.0) -> float | None:
    """Seconds until no client is more than 3 ticks behind the crowd's latest (None: never)."""
    return await until(lambda: crowd.behind() == 0, within, every=0.5)


async def rolling_deploy(cluster: Cluster, crowd: Crowd, log: Log) -> dict[str, Any]:
    """Replace every instance, one at a time: start the new one, wait for it, SIGTERM the old."""
    t0 = time.monotonic()
    before = final_counts(crowd)
    steps = []
    for old in sorted(cluster.instances.values(), key=lambda i: i.id):
        step_start = time.monotonic()
        new = await asyncio.to_thread(cluster.start_instance, base_name(old))
        ready_s = time.monotonic() - step_start
        rotation_s = await asyncio.to_thread(cluster.wait_in_rotation, [new.slot.name])
        on_old = crowd.by_slot().get(old.slot.name, 0)
        term = time.monotonic()
        cluster.signal_instance(old, signal.SIGTERM)
        exit_code = await asyncio.to_thread(old.proc.wait, 30)
        exit_s = time.monotonic() - term
        cluster.forget(old)
        back_s = await until(lambda: crowd.connected() == len(crowd.clients), 60)
        step: dict[str, Any] = {
            "old": old.id, "new": new.id, "clients_on_old": on_old,
            "new_ready_s": round(ready_s, 2), "new_in_rotation_s": round(rotation_s, 2),
            "old_exit_s": round(exit_s, 2), "old_exit_code": exit_code,
            "all_back_s": back_s, "moves": move_summary(crowd.moves_since(term), term),
        }  # fmt: skip
        steps.append(step)
        log(
            f"rolling: {old.id} -> {new.id}: {on_old} clients moved, all back in {back_s}s, "
            f"reconnect p50/p99 {step['moves']['reconnect_ms']['p50']}/"
            f"{step['moves']['reconnect_ms']['p99']} ms"
        )
    await asyncio.sleep(SETTLE_S)
    caught = await caught_up(crowd)
    view = await view_matches(cluster, crowd, 15)
    return {
        "caught_up_s": caught,
        "server": await server_side(cluster),
        "before": before,
        "steps": steps,
        "moves": move_summary(crowd.moves_since(t0), t0),
        "after": final_counts(crowd),
        "dashboard": view,
        "took_s": round(time.monotonic() - t0, 1),
    }


async def crash(cluster: Cluster, crowd: Crowd, log: Log, ttl: float) -> dict[str, Any]:
    """SIGKILL one instance; watch clients move and the dashboard forget it; then replace it."""
    victim = max(cluster.instances.values(), key=lambda i: crowd.by_slot().get(i.slot.name, 0))
    share = crowd.by_slot().get(victim.slot.name, 0)
    view0 = await asyncio.to_thread(cluster.cluster_view)
    total0 = view0["cluster"]["connections"] if view0 else None
    t0 = time.monotonic()
    cluster.signal_instance(victim, signal.SIGKILL)
    await asyncio.to_thread(victim.proc.wait, 10)
    cluster.forget(victim)
    timeline: list[dict[str, Any]] = []
    victim_gone = total_right = None
    while time.monotonic() - t0 < ttl + 15:
        view = await asyncio.to_thread(cluster.cluster_view)
        now = round(time.monotonic() - t0, 2)
        if view is not None:
            c = view["cluster"]
            present = any(i["id"].startswith(victim.id) for i in c["instances"])
            timeline.append({"t": now, "total": c["connections"], "victim_in_view": present,
                             "clients_connected": crowd.connected()})  # fmt: skip
            if not present and victim_gone is None:
                victim_gone = now
            if victim_gone is not None and c["connections"] == crowd.connected() == len(
                crowd.clients
            ):
                total_right = now
                break
        await asyncio.sleep(0.25)
    back_s = await until(lambda: crowd.connected() == len(crowd.clients), 60)
    moves = move_summary(crowd.moves_since(t0), t0)
    log(
        f"crash: killed {victim.id} ({share} clients); it left the view after {victim_gone}s "
        f"(ttl {ttl}s); total right after {total_right}s; reconnect p50/p99 "
        f"{moves['reconnect_ms']['p50']}/{moves['reconnect_ms']['p99']} ms"
    )
    replacement = await asyncio.to_thread(cluster.start_instance, base_name(victim))
    await asyncio.to_thread(cluster.wait_in_rotation, [replacement.slot.name])
    await asyncio.sleep(SETTLE_S)
    return {
        "victim": victim.id, "share": share, "total_before": total0, "ttl_s": ttl,
        "victim_left_view_s": victim_gone, "total_right_s": total_right,
        "all_back_s": back_s, "moves": moves, "timeline": timeline,
        "after": final_counts(crowd), "replacement": replacement.id,
    }  # fmt: skip


async def scale_out(cluster: Cluster, crowd: Crowd, log: Log, to: int, add: int) -> dict[str, Any]:
    """Start instances up to `to`; time until the cluster view shows them; spread new clients."""
    t0 = time.monotonic()
    names = [f"i{n}" for n in range(len(cluster.instances) + 1, to + 1)]
    started = [cluster.start_instance(name, wait=False) for name in names]
    ready_at = {}
    for inst in started:
        await asyncio.to_thread(cluster.wait_instance_ready, inst)
        ready_at[inst.id] = time.monotonic()

    def shows_all() -> bool:
        view = cluster.cluster_view()
        return view is not None and len(view["cluster"]["instances"]) == to

    shown = await until_thread(shows_all, 30)
    rotation_s = await asyncio.to_thread(cluster.wait_in_rotation, [i.slot.name for i in started])
    before = crowd.by_slot()
    new = await crowd.add(add)
    spread = Counter(c.slot for c in new if c.slot)
    new_slots = {i.slot.name for i in started}
    on_new = sum(n for slot, n in spread.items() if slot in new_slots)
    await asyncio.sleep(SETTLE_S)
    caught = await caught_up(crowd)
    view = await view_matches(cluster, crowd, 15)
    log(
        f"scale-out to {to}: the view showed {to} instances {shown}s after the last became "
        f"ready; {on_new}/{add} new clients on the {len(started)} new instances"
    )
    return {
        "to": to, "started": [i.id for i in started],
        "ready_s": {k: round(v - t0, 2) for k, v in ready_at.items()},
        "view_shows_all_s_after_last_ready": shown,
        "in_rotation_s": round(rotation_s, 2),
        "clients_by_slot_before": before, "new_clients": add,
        "new_clients_by_slot": dict(sorted(spread.items())), "new_clients_on_new_instances": on_new,
        "dashboard": view, "after": final_counts(crowd), "caught_up_s": caught,
        "server": await server_side(cluster),
    }  # fmt: skip


async def until_thread(check: Callable[[], bool], within: float) -> float | None:
    """`until` for a blocking check (an HTTP call): each try runs in a thread."""
    start = time.monotonic()
    while time.monotonic() - start <= within:
        if await asyncio.to_thread(check):
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(0.1)
    return None


def _poll_chain(
    host: str, port: int, symbols: str, duration: float, keep_cookie: bool
) -> dict[str, Any]:
    """One long-polling client for `duration` s; a new TCP connection per poll, like a browser
    whose connection the front end does not keep; the cookie kept or dropped."""
    cursor: str | None = None
    cookie: str | None = None
    last: dict[str, int] = {}
    served: Counter[str] = Counter()
    gaps = duplicates = resyncs = polls = ticks = errors = 0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        query = {"symbols": symbols} | ({"cursor": cursor} if cursor else {})
        conn = http.client.HTTPConnection(host, port, timeout=40)
        headers = {"Cookie": cookie} if (keep_cookie and cookie) else {}
        try:
            conn.request("GET", "/poll?" + urllib.parse.urlencode(query), headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                errors += 1
                time.sleep(0.5)
                continue
            served[resp.getheader("X-Ticker-Backend") or "?"] += 1
            set_cookie = resp.getheader("Set-Cookie")
            if set_cookie:
                cookie = set_cookie.split(";", 1)[0]
        except OSError:
            errors += 1
            time.sleep(0.5)
            continue
        finally:
            conn.close()
        polls += 1
        data = orjson.loads(body)
        cursor = data["cursor"]
        announced = set(symbols.split(",")) if data.get("resync") else set()
        resyncs += 1 if announced else 0
        for tick in data["ticks"]:
            ticks += 1
            seq, prev = tick["seq"], last.get(tick["symbol"])
            if prev is not None and seq <= prev:
                duplicates += 1
                continue
            if prev is not None and seq > prev + 1 and tick["symbol"] not in announced:
                gaps += 1
            last[tick["symbol"]] = seq
    return {"polls": polls, "ticks": ticks, "gaps": gaps, "duplicates": duplicates,
            "resyncs": resyncs, "errors": errors, "served_by": dict(served)}  # fmt: skip


async def affinity_lost(
    cluster: Cluster, log: Log, pollers: int = 20, duration: float = 15.0
) -> dict[str, Any]:
    """Long polls through the front end with the cookie dropped (and, to compare, kept)."""
    port = cluster.frontend_port
    results: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    for mode, keep in (("cookie_dropped", False), ("cookie_kept", True)):
        with ThreadPoolExecutor(pollers) as pool:  # one thread per poller: they all wait at once
            runs = await asyncio.gather(
                *(
                    loop.run_in_executor(
                        pool,
                        _poll_chain,
                        "127.0.0.1",
                        port,
                        _pair(cluster.symbols, i),
                        duration,
                        keep,
                    )
                    for i in range(pollers)
                )
            )
        per_client_instances = [len(r["served_by"]) for r in runs]
        results[mode] = {
            "pollers": pollers, "duration_s": duration,
            "polls": sum(r["polls"] for r in runs), "ticks": sum(r["ticks"] for r in runs),
            "gaps": sum(r["gaps"] for r in runs), "duplicates": sum(r["duplicates"] for r in runs),
            "resyncs": sum(r["resyncs"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "instances_per_client_median": percentile(per_client_instances, 50),
            "instances_per_client_max": max(per_client_instances, default=0),
        }  # fmt: skip
        r = results[mode]
        log(
            f"affinity ({mode}): {r['polls']} polls, {r['ticks']} ticks, gaps {r['gaps']}, "
            f"duplicates {r['duplicates']}, a client was served by a median of "
            f"{r['instances_per_client_median']} instances"
        )
    return results


def _pair(symbols: list[str], i: int) -> str:
    return ",".join(symbols[(i * 2 + j) % len(symbols)] for j in range(2))
