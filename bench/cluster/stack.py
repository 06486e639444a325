"""A local cluster like App Engine runs it: emulator, N instances, HAProxy in front, Prometheus.

Rules:
- Every process is started here in its own session and stopped by its own pid (SIGTERM to its
  group, SIGKILL after a grace); nothing is ever looked up or stopped by name.
- HAProxy has a fixed set of *slots* (a name and a port each), rendered once into its config
  from `deploy/haproxy.cfg.j2`. An instance runs in a free slot; a slot with nobody listening is
  simply down. So a rolling deploy, a crash or a scale-out never reloads the front end: the
  health checks on /readiness_check take instances in and out, as App Engine's do.
- Instances are the production entrypoint, `python -m ticker.serve`, with distinct
  `TICKER_INSTANCE_ID`s, one shared admin token and `TICKER_PROXY_HOPS=1` (HAProxy appends
  X-Forwarded-For; App Engine's front end appends two entries, hence 2 there).
- Prometheus discovers instances from a targets file rewritten on every change (file_sd).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from bench import procs
from ticker.ops import procs as ops
from ticker.ops.emulator import Emulator, emulator_available
from ticker.ops.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROJECT = "ticker-local"
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "JPM", "V", "XOM")


def _maxconn() -> int:
    """What HAProxy may accept: each proxied connection holds two descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(100, min(20_000, (soft - 200) // 2))


def haproxy_available() -> bool:
    return shutil.which("haproxy") is not None


def prometheus_available() -> bool:
    return shutil.which("prometheus") is not None


def missing_parts() -> list[str]:
    """What the cluster needs and this machine lacks (empty: everything is there)."""
    missing = []
    if not emulator_available():
        missing.append("the Pub/Sub emulator (gcloud + java + google-cloud-cli-pubsub-emulator)")
    if not haproxy_available():
        missing.append("haproxy (apt-get install haproxy)")
    return missing


def http_json(url: str, token: str | None = None, timeout: float = 3.0) -> tuple[int | None, Any]:
    """(status, parsed JSON or None) of a GET; (None, None) when nothing answers."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body else None
    except urllib.error.HTTPError as err:
        return err.code, None
    except (OSError, ValueError):
        return None, None


def _spawn(cmd: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    return ops.start(cmd, env=env, cwd=ROOT, log=log)


@dataclass(frozen=True, slots=True)
class Slot:
    """A server line of the HAProxy config: its name (also its cookie value) and port."""

    name: str
    port: int


@dataclass
class Instance:
    """One `python -m ticker.serve` process in a slot."""

    id: str
    slot: Slot
    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.slot.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        return http_json(self.url + "/readiness_check", timeout=2)[0] == 200

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return "(no log)"


@dataclass
class Health:
    """Front-end health-check settings (App Engine's readiness check: 5 s, 2 failures, 2 ok)."""

    interval: str = "5s"
    fall: int = 2
    rise: int = 2
    timeout: str = "4s"


class Cluster:
    """Emulator + instances + HAProxy (+ Prometheus, + the publisher), started and stopped here."""

    def __init__(
        self,
        *,
        instances: int = 4,
        slots: int | None = None,
        symbols: Iterable[str] = SYMBOLS,
        rate: float = 10.0,
        health: Health | None = None,
        prometheus: bool = True,
        publisher: bool = True,
        token: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: Path | None = None,
        frontend_port: int | None = None,
        emulator: Emulator | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.initial = instances
        self.symbols = list(symbols)
        self.rate = rate
        self.health = health or Health()
        self.want_prometheus = prometheus and prometheus_available()
        self.want_publisher = publisher
        # one admin token for every instance (set TICKER_ADMIN_TOKEN to choose it)
        self.token = token or os.environ.get("TICKER_ADMIN_TOKEN") or secrets.token_urlsafe(18)
        self.extra_env = dict(env or {})
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ticker-cluster-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.frontend_port = frontend_port or free_port()
        self.stats_port = free_port()
        self.slots = [Slot(f"s{i + 1}", free_port()) for i in range(slots or instances * 2 + 2)]
        self.topic = f"prices-{os.getpid()}-{int(time.time()) % 100000}"
        self.emulator: Emulator | None = emulator  # given: shared, never stopped here
        self._own_emulator = emulator is None
        self.instances: dict[str, Instance] = {}
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.prometheus: subprocess.Popen[bytes] | None = None
        self.prometheus_port = free_port()
        self.publisher: subprocess.Popen[bytes] | None = None
        self._generation: dict[str, int] = {}
        self._log = log

    # --- URLs ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The front end, where browsers and clients go."""
        return f"http://127.0.0.1:{self.frontend_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.frontend_port}/ws"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/"

    @property
    def prometheus_url(self) -> str | None:
        return f"http://127.0.0.1:{self.prometheus_port}" if self.prometheus else None

    # --- start / stop -------------------------------------------------------------------------

    def start(self) -> None:
        """Start everything; on failure stop what was started and raise."""
        try:
            if self.emulator is None:
                self._log(f"workdir {self.workdir}; starting the Pub/Sub emulator")
                self.emulator = Emulator(project=PROJECT)
                self.emulator.start()
            names = [f"i{n + 1}" for n in range(self.initial)]
            started = [self.start_instance(name, wait=False) for name in names]
            for inst in started:
                self.wait_instance_ready(inst)
            self._start_haproxy()
            if self.want_prometheus:
                self._start_prometheus()
            if self.want_publisher:
                self._start_publisher()
            self.wait_in_rotation([i.slot.name for i in started])
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything started, newest first, each by its own pid."""
        if self.publisher is not None:
            procs.stop(self.publisher, 10)
        for inst in list(self.instances.values()):
            procs.stop(inst.proc, 25)
        self.instances.clear()
        for proc in (self.prometheus, self.haproxy):
            if proc is not None:
                procs.stop(proc, 10)
        if self.emulator is not None and self._own_emulator:
            self.emulator.cleanup()
            self.emulator = None

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- instances ----------------------------------------------------------------------------

    def instance_env(self, instance_id: str) -> dict[str, str]:
        assert self.emulator is not None
        env = dict(os.environ)
        env.update(
            PUBSUB_EMULATOR_HOST=self.emulator.host,
            GOOGLE_CLOUD_PROJECT=self.emulator.project,
            TICKER_BROKER="pubsub",
            TICKER_TOPIC=self.topic,
            TICKER_INSTANCE_ID=instance_id,
            TICKER_ADMIN_TOKEN=self.token,
            TICKER_PROXY_HOPS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def free_slot(self) -> Slot:
        used = {inst.slot for inst in self.instances.values()}
        for slot in self.slots:
            if slot not in used:
                return slot
        raise RuntimeError(f"all {len(self.slots)} front-end slots are in use")

    def start_instance(self, name: str, *, wait: bool = True) -> Instance:
        """Start `python -m ticker.serve` as instance `name`-vN in a free slot."""
        generation = self._generation.get(name, 0) + 1
        self._generation[name] = generation
        instance_id = f"{name}-v{generation}"
        slot = self.free_slot()
        log = self.workdir / f"{instance_id}.log"
        cmd = [sys.executable, "-m", "ticker.serve", "--bind", f"127.0.0.1:{slot.port}"]
        proc = _spawn(cmd, self.instance_env(instance_id), log)
        inst = Instance(instance_id, slot, proc, log)
        self.instances[instance_id] = inst
        self._write_targets()
        if wait:
            self.wait_instance_ready(inst)
        return inst

    def wait_instance_ready(self, inst: Instance, timeout: float = 90.0) -> float:
        def ready() -> bool:
            if not inst.alive():
                raise RuntimeError(f"instance {inst.id} exited:\n{inst.log_tail()}")
            return inst.ready()

        ops.wait_until(ready, within=timeout, what=f"readiness of {inst.id}", every=0.2)
        if self.haproxy is not None:  # ready: let the front end's checks take it in
            self.haproxy_command(f"set server instances/{inst.slot.name} state ready")
        return time.monotonic() - inst.started

    def signal_instance(self, inst: Instance, sig: signal.Signals) -> None:
        ops.signal_group(inst.proc, sig)

    def forget(self, inst: Instance) -> None:
        """Drop an exited instance from the books (its slot becomes free)."""
        self.instances.pop(inst.id, None)
        self._write_targets()

    # --- front end ----------------------------------------------------------------------------

    def haproxy_config(self) -> str:
        template = jinja2.Template((DEPLOY / "haproxy.cfg.j2").read_text())
        return template.render(
            host="127.0.0.1", port=self.frontend_port, stats_port=self.stats_port,
            stats_socket=self.workdir / "haproxy.sock", pidfile=self.workdir / "haproxy.pid",
            maxconn=_maxconn(), server_maxconn=_maxconn(), slots=self.slots,
            active={inst.slot.name for inst in self.instances.values()},
            check_interval=self.health.interval, check_fall=self.health.fall,
            check_rise=self.health.rise, check_timeout=self.health.timeout,
        )  # fmt: skip

    def _start_haproxy(self) -> None:
        config = self.workdir / "haproxy.cfg"
        config.write_text(self.haproxy_config())
        check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejected its config:\n{check.stdout}{check.stderr}")
        self.haproxy = _spawn(
            ["haproxy", "-db", "-f", str(config)], os.environ, self.workdir / "haproxy.log"
        )
        self._wait_port(self.frontend_port, self.haproxy, "haproxy")

    def _wait_port(self, port: int, proc: subprocess.Popen[bytes], what: str) -> None:
        ops.wait_ready(proc, lambda: ops.port_open(port), within=20, what=f"{what} on {port}")

    def haproxy_command(self, command: str) -> str:
        """One command on HAProxy's runtime API (its admin socket)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(str(self.workdir / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def server_states(self) -> dict[str, dict[str, str]]:
        """{slot name: HAProxy's stat row} for the backend (status UP/DOWN/..., scur, ...)."""
        text = self.haproxy_command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row
            for row in rows
            if row.get("pxname") == "instances" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def in_rotation(self) -> set[str]:
        return {name for name, row in self.server_states().items() if row["status"] == "UP"}

    def wait_in_rotation(self, slots: Iterable[str], timeout: float = 60.0) -> float:
        """Wait until HAProxy's checks put every slot in `slots` in rotation; seconds taken."""
        want, start = set(slots), time.monotonic()
        ops.wait_until(
            lambda: want <= self.in_rotation(), within=timeout, what=f"{sorted(want)} UP in haproxy"
        )
        return time.monotonic() - start

    def wait_out_of_rotation(self, slot: str, timeout: float = 60.0) -> float:
        start = time.monotonic()
        ops.wait_until(
            lambda: slot not in self.in_rotation(), within=timeout, what=f"{slot} out of rotation"
        )
        return time.monotonic() - start

    # --- Prometheus and the publisher ---------------------------------------------------------

    def _write_targets(self) -> None:
        targets = self.workdir / "prometheus" / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        instances = [
            {"targets": [f"127.0.0.1:{i.slot.port}"], "labels": {"ticker_instance": i.id}}
            for i in self.instances.values()
        ]
        frontend = [{"targets": [f"127.0.0.1:{self.stats_port}"], "labels": {}}]
        for name, content in (("instances", instances), ("frontend", frontend)):
            tmp = targets / f".{name}.json.tmp"
            tmp.write_text(json.dumps(content))
            tmp.replace(targets / f"{name}.json")  # atomic: Prometheus never reads half a file

    def _start_prometheus(self) -> None:
        home = self.workdir / "prometheus"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEPLOY / "prometheus.yml", home / "prometheus.yml")
        self._write_targets()
        cmd = [
            "prometheus", f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}", "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
        ]  # fmt: skip
        self.prometheus = _spawn(cmd, os.environ, self.workdir / "prometheus.log")
        self._wait_port(self.prometheus_port, self.prometheus, "prometheus")

    def _start_publisher(self) -> None:
        assert self.emulator is not None
        env = dict(os.environ, PUBSUB_EMULATOR_HOST=self.emulator.host, PYTHONUNBUFFERED="1")
        cmd = [
            sys.executable, "-m", "publisher", "--project", self.emulator.project,
            "--topic", self.topic,
            "--symbols", ",".join(self.symbols), "--rate", str(self.rate),
        ]  # fmt: skip
        self.publisher = _spawn(cmd, env, self.workdir / "publisher.log")

    def prometheus_query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query's result vector ([] when Prometheus is not running)."""
        if self.prometheus is None:
            return []
        query = urllib.parse.urlencode({"query": expr})
        status, body = http_json(f"{self.prometheus_url}/api/v1/query?{query}")
        if status != 200 or not body or body.get("status") != "success":
            return []
        return list(body["data"]["result"])

    # --- the dashboard ------------------------------------------------------------------------

    def cluster_view(self) -> dict[str, Any] | None:
        """`/admin/api/stats` through the front end (any instance answers for the cluster)."""
        status, body = http_json(self.url + "/admin/api/stats", self.token)
        return body if status == 200 else None
