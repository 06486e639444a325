"""Floods and hostile input against real server processes (issue 13): memory, FDs, logs, peers.

Each test starts its own server (`python -m ticker.serve`, the production entrypoint with
`ticker/server/hypercorn_conf.py`, unless it says plain `hypercorn`), attacks it with raw sockets
that send crafted bytes, and reads what the attack cost from the server's `/proc` entries: resident
memory, open file descriptors, sockets in CLOSE-WAIT. `TICKER_SOAK=1` runs the full-size variants.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import websockets

from tests.support.servers import Server, group_rss_mb
from tests.support.timing import UNIT_S, eventually_sync, timeout
from tests.support.wsclient import SOAK, close_code, connect, frame_of

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("release_raw_sockets")]
LIMIT = 16 * 1024  # TICKER_MAX_FRAME_BYTES and hypercorn_conf's websocket_max_message_size


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def close_wait(pid: int) -> int:
    """The process's TCP sockets in CLOSE-WAIT (peer closed, we did not), from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                count += fields[3] == "08" and fields[9] in inodes
    return count


def _handshake(port: int, origin: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n"
    ).encode()


async def _open_ws(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw WebSocket after a good handshake: what is sent from here on is up to the test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_handshake(port, f"http://127.0.0.1:{port}"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), UNIT_S)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return reader, writer


class Liveness(threading.Thread):
    """Polls /liveness_check like App Engine (timeout 4 s) until stopped; records failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.failures: list[object] = []
        self.checks = 0
        self.done = threading.Event()

    def run(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        while not self.done.wait(0.2):
            conn = http.client.HTTPConnection(host, int(port), timeout=4)
            try:
                conn.request("GET", "/liveness_check")
                status: object = conn.getresponse().status
            except OSError as exc:
                status = repr(exc)
            finally:
                conn.close()
            self.checks += 1
            if status != 200:
                self.failures.append(status)

    def stop(self) -> list[object]:
        self.done.set()
        self.join(10)
        return self.failures


# --- item 1: a huge frame streamed in 1 MiB chunks ------------------------------------------


async def _stream_huge_frame(port: int, size: int) -> tuple[float, int, bytes]:
    """Announce a `size`-byte text frame and stream it until the server cuts us.

    Returns (seconds from passing the limit to the TCP close, bytes sent, what the server sent).
    """
    reader, writer = await _open_ws(port)
    # masked with a zero key: the payload goes out as it is, no per-byte work here
    writer.write(bytes((0x81, 0xFF)) + size.to_bytes(8, "big") + b"\0\0\0\0")
    received = bytearray()
    closed = asyncio.get_running_loop().create_future()

    async def read() -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                received.extend(chunk)
        closed.set_result(time.monotonic())

    reading = asyncio.create_task(read())
    chunk = b"x" * (1 << 20)
    sent, passed = 0, 0.0
    with contextlib.suppress(OSError):
        while sent < size and not closed.done():
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            if not passed and sent > LIMIT:
                passed = time.monotonic()
    try:
        cut = await asyncio.wait_for(asyncio.shield(closed), timeout(5))
    finally:
        reading.cancel()
        writer.transport.abort()
    return cut - passed, sent, bytes(received)


@pytest.mark.parametrize("entry", ["serve", "hypercorn"])
async def test_four_clients_streaming_150_mb_frames_are_cut_with_flat_memory(start_server, entry):
    server = start_server.serve() if entry == "serve" else start_server()
    pid = server.proc.pid
    before = peak = group_rss_mb(pid)
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, group_rss_mb(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    results = await asyncio.gather(
        *(_stream_huge_frame(_port(server), 150 * 1024 * 1024) for _ in range(4))
    )
    sampling = False
    await sampler
    growth = peak - before
    print(f"\n{entry}: RSS {before:.1f} MB, peak +{growth:.1f} MB; cut after", end=" ")
    print([(round(cut, 3), f"{sent >> 20} MiB sent") for cut, sent, _ in results])
    assert growth <= 20
    for cut, sent, received in results:
        assert cut <= timeout(1.0)  # closed within 1 s of passing the limit
        assert sent < 150 * 1024 * 1024  # the rest of the frame was never taken
        assert received[:4] == b"\x88\x02\x03\xf1"  # a close frame, code 1009, came first
    assert group_rss_mb(pid) - before <= 20  # and nothing is held afterwards


async def test_a_frame_just_over_the_limit_still_gets_a_clean_1009_handshake(start_server):
    server = start_server.serve()
    for _ in range(20):
        ws = await connect(server.url, compression=None)
        await ws.send("x" * (LIMIT + 1))
        assert await close_code(ws) == 1009
        assert ws.protocol.close_rcvd is not None  # a real close handshake, not a cut


# --- item 2: connect-request-close churn, half-open requests ------------------------------


async def _cycles(port: int, count: int) -> None:
    request = f"GET /liveness_check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I)[1])  # type: ignore[index]
        await reader.readexactly(length)
        writer.close()  # a FIN from our side while the server's connection is idle
        await writer.wait_closed()


async def test_connect_request_close_churn_leaves_no_close_wait_and_liveness_holds(start_server):
    server = start_server.serve()
    pid, cycles, connectors = server.proc.pid, 20_000 if SOAK else 4_000, 8
    fds = fd_count(pid)
    live = Liveness(server.url)
    live.start()
    started = time.monotonic()
    await asyncio.gather(*(_cycles(_port(server), cycles // connectors) for _ in range(connectors)))
    took = time.monotonic() - started
    after = close_wait(pid)
    with contextlib.suppress(AssertionError):  # the figures are printed before the asserts below
        eventually_sync(lambda: close_wait(pid) < 50, within=10, what="CLOSE-WAIT below 50")
    settled = close_wait(pid)
    failures = live.stop()
    print(
        f"\n{cycles} cycles in {took:.1f} s; CLOSE-WAIT right after {after}, then {settled}; "
        f"FDs {fds} -> {fd_count(pid)}; liveness {live.checks} checks, {len(failures)} failed"
    )
    assert failures == []
    assert live.checks > 0
    assert settled < 50
    assert fd_count(pid) < fds + 50


async def test_half_open_requests_are_closed_and_kept_alive_idle_ones_are_not(start_server):
    server = start_server.serve(TICKER_HEADER_TIMEOUT="2")
    port, pid = _port(server), server.proc.pid
    fds = fd_count(pid)
    # a served request leaves an idle keep-alive connection: the front end reuses those
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=UNIT_S)
    idle.request("GET", "/liveness_check")
    assert idle.getresponse().read()
    opened = time.monotonic()
    partial = []
    for i in range(300):
        sock = socket.create_connection(("127.0.0.1", port))
        if i % 3:  # two in three send headers that never finish, the rest send nothing
            sock.sendall(b"GET /liveness_check HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        sock.settimeout(timeout(30))
        partial.append(sock)
    closed_after = []
    for sock in partial:
        assert sock.recv(100) == b""  # closed by the server, nothing sent
        closed_after.append(time.monotonic() - opened)
        sock.close()
    print(f"\n300 half-open requests: the last closed after {max(closed_after):.2f} s")
    assert max(closed_after) <= timeout(30)
    assert min(closed_after) >= 1.5  # the header timeout (2 s), not an instant refusal
    assert fd_count(pid) < fds + 20
    idle.request("GET", "/liveness_check")  # the idle keep-alive connection outlived them all
    assert idle.getresponse().status == 200
    idle.close()


# --- item 5: bytes after a rejected handshake -------------------------------------------------


def test_bytes_after_a_rejected_handshake_cost_one_short_log_line(start_server):
    server = start_server.serve()
    port = _port(server)
    time.sleep(0.5)  # let start-up logging finish before measuring the log's growth
    before = len(server.log_tail(10**9))
    for _ in range(100):
        with socket.create_connection(("127.0.0.1", port), timeout=UNIT_S) as sock:
            sock.sendall(_handshake(port, "https://evil.example"))
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 403"), answer[:40]
            with contextlib.suppress(OSError):
                sock.sendall(b"\x81\x05hello garbage after the refusal")
                while sock.recv(4096):
                    pass
    time.sleep(0.5)
    grown = server.log_tail(10**9)[before:]
    print(f"\n100 refused handshakes + bytes: +{len(grown)} bytes of log")
    assert "Traceback" not in grown
    assert '"severity": "ERROR"' not in grown
    assert grown.count("connection_input_dropped") == 1  # one line, with a count, per minute
    assert grown.count("stream_rejected") == 100  # each refusal is still logged once
    assert len(grown) < 100 * 400


# --- item 6: dead peers are found by protocol pings, not by demanding app frames -----------


def _ws_connections(server: Server) -> int:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=UNIT_S)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    match = re.search(r'^ticker_connections\{transport="websocket"\} (\S+)$', text, re.M)
    return int(float(match[1])) if match else 0


async def test_a_client_that_only_answers_protocol_pings_is_never_cut(start_server):
    server = start_server.serve(TICKER_HEARTBEAT_INTERVAL="0.5")  # silence bound 2 x 0.5 + 5 s
    async with websockets.connect(
        server.url.replace("http", "ws") + "/ws", origin=server.url, ping_interval=None
    ) as ws:  # a contract client: it never sends a frame after subscribing
        await ws.send('{"op":"subscribe","symbols":["AAPL"]}')
        started = time.monotonic()
        heartbeats = 0
        while time.monotonic() - started < 9:  # 1.5 x the silence bound
            heartbeats += (await frame_of(ws, "heartbeat"))["type"] == "heartbeat"
        print(
            f"\npong-only client: open after {time.monotonic() - started:.1f} s, {heartbeats} beats"
        )
        assert ws.close_code is None
        assert heartbeats >= 10


CHILD = """
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], origin=sys.argv[2], ping_interval=None) as ws:
        await ws.send('{"op":"subscribe","symbols":["AAPL"]}')
        await ws.recv()
        print("ready", flush=True)
        async for _ in ws:
            pass
asyncio.run(main())
"""


def test_a_sigstopped_client_is_closed_and_uncounted(start_server):
    server = start_server.serve(TICKER_HEARTBEAT_INTERVAL="0.5")
    url = server.url.replace("http", "ws") + "/ws"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, server.url],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        assert _ws_connections(server) == 1
        child.send_signal(signal.SIGSTOP)  # the kernel still ACKs; nothing answers pings now
        stopped = time.monotonic()
        bound = 2 * 0.5 + 5
        with contextlib.suppress(AssertionError):  # `took` is asserted below
            eventually_sync(
                lambda: _ws_connections(server) == 0, within=3 * bound, what="the client uncounted"
            )
        took = time.monotonic() - stopped
        print(f"\nSIGSTOPped client closed and uncounted after {took:.2f} s (bound {bound} s)")
        assert _ws_connections(server) == 0
        assert bound - 1.5 <= took <= bound + timeout(1.5)
        assert "heartbeat timeout" in server.log_tail()
    finally:
        child.send_signal(signal.SIGCONT)
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


async def test_a_peer_that_never_answers_pings_is_closed_1001(start_server):
    server = start_server.serve(TICKER_HEARTBEAT_INTERVAL="0.5")
    reader, writer = await _open_ws(_port(server))  # then silence: no frame, no pong
    started = time.monotonic()
    data = bytearray()
    with contextlib.suppress(OSError):
        async with asyncio.timeout(3 * (2 * 0.5 + 5)):
            while chunk := await reader.read(65536):
                data.extend(chunk)
                if b"\x88" in data and data.index(b"\x88") + 4 <= len(data):
                    break  # a close frame
    took = time.monotonic() - started
    writer.transport.abort()
    print(f"\nsilent raw peer: closed after {took:.2f} s")
    assert b"\x89" in data  # it was pinged (a protocol ping frame, unmasked, from the server)
    close_at = data.rindex(b"\x88")
    assert data[close_at + 2 : close_at + 4] == (1001).to_bytes(2, "big")
    assert 2 * 0.5 + 5 - 1 <= took <= 2 * 0.5 + 5 + timeout(1.5)


# --- item 7: forwarded headers only from trusted proxies; admin login ----------------------


async def _streams_with_forwarded_for(server: Server, count: int) -> list[int]:
    statuses = []
    for i in range(count):
        headers = {"X-Forwarded-For": f"6.6.6.{i}, 130.211.0.1"}  # a different client each time
        try:
            await connect(server.url, additional_headers=headers)
            statuses.append(101)
        except websockets.InvalidStatus as exc:
            statuses.append(exc.response.status_code)
    return statuses


async def test_forwarded_for_from_an_untrusted_peer_does_not_bypass_the_connection_cap(
    start_server,
):
    # TICKER_PROXY_HOPS=2 as on App Engine, but this peer (127.0.0.1) reaches us directly
    server = start_server.serve(
        TICKER_PROXY_HOPS="2",
        TICKER_TRUSTED_PROXIES="10.255.0.0/16",
        TICKER_MAX_CONNECTIONS_PER_ADDRESS="20",  # a small cap, to see whether it is slipped
    )
    statuses = await _streams_with_forwarded_for(server, 25)
    assert statuses.count(101) == 20
    assert statuses.count(429) == 5


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(start_server):
    server = start_server.serve(
        TICKER_PROXY_HOPS="2",
        TICKER_TRUSTED_PROXIES="127.0.0.1/32",
        TICKER_MAX_CONNECTIONS_PER_ADDRESS="20",
    )
    assert await _streams_with_forwarded_for(server, 25) == [101] * 25  # 25 clients, 1 each


def _post_login(server: Server, token: str, forwarded_for: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=UNIT_S)
    conn.request(
        "POST",
        "/admin/login",
        body=f"token={token}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Forwarded-For": forwarded_for,
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _get(server: Server, path: str, cookie: str = "", method: str = "GET") -> int:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=UNIT_S)
    conn.request(method, path, headers={"Cookie": cookie} if cookie else {})
    status = conn.getresponse().status
    conn.close()
    return status


def test_admin_throttles_only_failures_logs_them_and_logout_revokes(start_server):
    server = start_server.serve(TICKER_PROXY_HOPS="2", TICKER_TRUSTED_PROXIES="10.255.0.0/16")
    token = server.env["TICKER_ADMIN_TOKEN"]
    login = _post_login(server, token, "6.6.6.1, 1.1.1.1")
    assert login.status == 303
    cookie = login.getheader("Set-Cookie", "").split(";", 1)[0]
    assert _get(server, "/admin/api/stats", cookie) == 200
    assert _get(server, "/admin/logout", cookie, method="POST") == 303
    assert _get(server, "/admin/api/stats", cookie) == 401  # revoked server-side
    # wrong tokens under changing X-Forwarded-For: all one (direct) address, so throttled
    statuses = [
        _post_login(server, "wrong-guess-7", f"6.6.6.{i}, 1.1.1.1").status for i in range(8)
    ]
    assert statuses == [401] * 4 + [429] * 4  # the replayed cookie was the first failure
    right = _post_login(server, token, "6.6.6.99, 1.1.1.1")  # the operator, same address
    assert right.status == 303  # a right token always passes
    log = server.log_tail(10**6)
    assert log.count("admin_auth_failed") == 9  # the replayed cookie + 8 failed logins
    assert "wrong-guess-7" not in log
    assert token not in log
    assert cookie.split("=", 1)[1] not in log
