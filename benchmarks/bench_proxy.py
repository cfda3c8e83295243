"""Benchmark of the proxy's overhead over the stand-in it relays to: by hand, not a test.

    python benchmarks/bench_proxy.py [--requests 5000] [--duration 8] [--rounds 3] [--json out.json]
                                     [--keep-db] [--pin auto|none] [--load auto|wrk|python]
                                     [--floor] [--profile DIR]

One run starts ``finops sim`` (zero latency knobs, 16 output tokens) and ``finops proxy`` (a single
process each, real subprocesses) with the ledger writing to a fresh Postgres database, and measures the
same calls directly against the sim and through the proxy:

1. added latency (p50, p99) of non-streamed chat completions at concurrency 1, proxied minus direct;
2. requests per second at concurrency 32 (non-streamed), direct and proxied, and their ratio;
3. added time to first token of streams at concurrency 1: from sending the request to receiving the
   first SSE event whose ``delta.content`` is non-empty (the role-only opening event does not count).

Noise control on a shared machine: a warm-up first, then ``--rounds`` rounds, each measuring direct and
proxied back to back (the order alternates between rounds); a figure is the median over the rounds of
its per-round value, an "added" figure the median of the per-round differences. The concurrency-1
clients are minimal keep-alive HTTP/1.1 clients on a raw socket (TCP_NODELAY, prebuilt request bytes,
``time.perf_counter_ns``, the garbage collector off while timing). Concurrency 32 uses ``wrk`` with a
Lua script when it is installed (``apt-get install -y wrk``), else several client processes running
asyncio raw-socket keep-alive clients.

CPU pinning (``--pin auto``, the default, via ``os.sched_setaffinity``, set in each child before exec so
that every thread inherits it): the proxy gets a core of its own (its ledger writer thread included, so
its cost counts against the proxy) and the sim the next one; the concurrency-32 load generator runs
beside the sim (or on the remaining cores when there are three or more). The concurrency-1 clients run
on the proxy's core, idle at that moment, so that a direct and a proxied call cross between cores the
same number of times (client/proxy <-> sim): a cross-core wake-up costs tens of microseconds on a VM and
would otherwise be billed to the proxy. Postgres is not pinned (it is not ours). With one usable core,
or ``--pin none``, nothing is pinned. The throughput is therefore "per proxy process on one core"; the
table also shows each process's CPU use and how busy each CPU was, to tell a saturated proxy from a
saturated neighbour.

The ledger is checked at the end: it must hold one row per call the proxy made, counted independently
by the sim (its ``vllm:request_success_total`` across the proxied phases).

``--floor`` also measures, in every round, a bare relay on the proxy's stack (uvicorn + uvloop + httptools,
and a minimal keep-alive upstream client: an asyncio protocol parsed by httptools; on the proxy's core,
no finops logic, no ledger): the "floor" columns show what the stack alone adds on this machine, i.e.
how much of the proxy's overhead is finops' own code.

``--profile DIR`` adds one extra proxied concurrency-32 run under ``py-spy record --gil`` (not part of the
figures: sampling slows the proxy down) and prints the proxy's top frames, in percent of the samples
and in approximate microseconds of GIL-held time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from finops.db import make_engine
from finops.ledger.store import ledger_count
from finops.migrate import upgrade

T = TypeVar("T")

HOST = "127.0.0.1"
MODEL = "llama-8b"
TEAM = "bench"
FEATURE = "bench-proxy"
CHAT_PATH = "/v1/chat/completions"
OUTPUT_TOKENS = 16
SIM_KNOBS = ["--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", str(OUTPUT_TOKENS)]
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello in one short sentence."},
]
CHAT_BODY = orjson.dumps({"model": MODEL, "messages": MESSAGES})
STREAM_BODY = orjson.dumps({"model": MODEL, "messages": MESSAGES, "stream": True})
HIGH_CONCURRENCY = 32
PYSPY_RATE_HZ = 250

TARGET_ADDED_P50_MS = 0.3
TARGET_PROXIED_RPS = 4000.0
TARGET_ADDED_TTFT_P50_MS = 1.0

DEFAULT_PG_ADMIN_URL = os.environ.get(
    "FINOPS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- machine and pinning ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


@dataclass(frozen=True)
class Layout:
    """Which CPUs each party may run on; None: not pinned."""

    proxy: frozenset[int] | None
    sim: frozenset[int] | None
    load: frozenset[int] | None
    client: frozenset[int] | None

    @staticmethod
    def choose(mode: str) -> Layout:
        cpus = sorted(os.sched_getaffinity(0))
        if mode == "none" or len(cpus) < 2:
            return Layout(None, None, None, None)
        proxy, sim = frozenset(cpus[:1]), frozenset(cpus[1:2])
        # The c=1 client shares the proxy's core (idle then): direct and proxied calls then cross
        # between cores the same number of times (client/proxy <-> sim), and a cross-core wake-up
        # costs tens of microseconds on a VM, which would otherwise be billed to the proxy.
        return Layout(proxy=proxy, sim=sim, load=frozenset(cpus[2:]) or sim, client=proxy)

    def describe(self) -> str:
        if self.proxy is None:
            return "not pinned"

        def fmt(cpus: frozenset[int] | None) -> str:
            return ",".join(map(str, sorted(cpus))) if cpus else "any"

        return (
            f"proxy cpu {fmt(self.proxy)}, sim cpu {fmt(self.sim)}, load generator cpu {fmt(self.load)}, "
            f"c=1 client cpu {fmt(self.client)}"
        )


def _pinner(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    chosen = set(cpus)
    # Set in the child before exec, so every thread the process starts later inherits it.
    return lambda: os.sched_setaffinity(0, chosen)


# -- child processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def finops_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "finops.cli", *args]


class Child:
    """A server subprocess (``python -m finops.cli ...``) with its log in a file."""

    def __init__(
        self, name: str, command: Sequence[str], log_path: Path, cpus: frozenset[int] | None
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop(); the process outlives this call)
        self.popen = subprocess.Popen(
            list(command),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_pinner(cpus),
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_http(self, port: int, path: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if http_get(port, path, 1.0)[0] < 500:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer on :{port}{path} within {timeout_s} s")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(main thread, other threads) CPU seconds of a process, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    main = other = 0.0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            if int(tid) == pid:
                main += seconds
            else:
                other += seconds
    return main, other


def cpu_busy_ticks() -> dict[str, tuple[int, int]]:
    """Per CPU (busy, total) ticks from /proc/stat."""
    out: dict[str, tuple[int, int]] = {}
    with contextlib.suppress(OSError), open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                ticks = [int(v) for v in values]
                idle = ticks[3] + ticks[4]  # idle + iowait
                out[name] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return out


class CpuMeter:
    """CPU use of some processes over one measured phase, as a share of one core, and per-CPU busy."""

    def __init__(self, pids: dict[str, int], groups: dict[str, list[int]] | None = None) -> None:
        self.pids = pids
        self.groups = groups or {}
        self._start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self._group_start = {name: self._group_seconds(group) for name, group in self.groups.items()}
        self._ticks = cpu_busy_ticks()
        self._t0 = time.perf_counter()

    def shares(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        out: dict[str, float] = {}
        for cpu, (busy, total) in cpu_busy_ticks().items():
            busy0, total0 = self._ticks.get(cpu, (0, 0))
            if total > total0:
                out[f"{cpu}_busy"] = round((busy - busy0) / (total - total0), 3)
        for name, pid in self.pids.items():
            main, other = cpu_seconds(pid)
            main0, other0 = self._start[name]
            out[f"{name}_cpu"] = round((main - main0 + other - other0) / wall, 3)
            out[f"{name}_other_threads_cpu"] = round((other - other0) / wall, 3)
        for name, group in self.groups.items():
            out[f"{name}_cpu"] = round((self._group_seconds(group) - self._group_start[name]) / wall, 3)
        return out

    @staticmethod
    def _group_seconds(pids: list[int]) -> float:
        return sum(sum(cpu_seconds(pid)) for pid in pids)


# -- the database -----------------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(admin_url: str, keep: bool) -> Iterator[str]:
    name = f"finops_bench_{secrets.token_hex(5)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        if keep:
            log(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- concurrency 1: a minimal keep-alive HTTP/1.1 client --------------------------------------------


def build_request(port: int, body: bytes, tagged: bool) -> bytes:
    head = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if tagged:
        head += f"X-FinOps-Team: {TEAM}\r\nX-FinOps-Feature: {FEATURE}\r\n"
    return (head + "\r\n").encode() + body


class HttpError(RuntimeError):
    pass


class ChunkedDecoder:
    """Incremental decoder of a ``Transfer-Encoding: chunked`` body."""

    def __init__(self) -> None:
        self._raw = bytearray()
        self._left = 0  # bytes of the current chunk still to come
        self._crlf = False  # the CRLF that ends a chunk's data is still to come
        self._last = False  # the zero-size chunk came; its closing CRLF is still to come
        self.done = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        raw = self._raw
        raw += data
        out = bytearray()
        while raw and not self.done:
            if self._left:
                taken = raw[: self._left]
                out += taken
                del raw[: len(taken)]
                self._left -= len(taken)
                if self._left:
                    break
                self._crlf = True
            elif self._crlf or self._last:
                if len(raw) < 2:
                    break
                del raw[:2]
                self.done = self._last
                self._crlf = False
            else:
                end = raw.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(raw[:end]).split(b";", 1)[0], 16)
                del raw[: end + 2]
                if size:
                    self._left = size
                else:
                    self._last = True
        return bytes(out)


_CONTENT = re.compile(rb'"content":"[^"]')


class KeepAliveClient:
    """One connection; ``post`` and ``stream`` time a request with ``perf_counter_ns``."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray(1 << 17)
        self._view = memoryview(self._buf)

    def close(self) -> None:
        self.sock.close()

    def _read_head(self) -> tuple[int, bytearray, int | None, bool, int]:
        """Receive until the end of the headers: status, the bytes so far, content-length, chunked, time."""
        data = bytearray()
        while True:
            n = self.sock.recv_into(self._buf)
            now = time.perf_counter_ns()
            if not n:
                raise HttpError("connection closed before the response headers")
            data += self._view[:n]
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                break
        head = bytes(data[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length: int | None = None
        chunked = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        del data[: end + 4]
        return status, data, length, chunked, now

    def post(self, request: bytes) -> tuple[int, int]:
        """Send one request, read the whole response. (status, nanoseconds)."""
        sock = self.sock
        started = time.perf_counter_ns()
        sock.sendall(request)
        status, body, length, chunked, ended = self._read_head()
        if chunked:
            decoder = ChunkedDecoder()
            decoder.feed(body)
            while not decoder.done:
                n = sock.recv_into(self._buf)
                ended = time.perf_counter_ns()
                if not n:
                    raise HttpError("connection closed mid-body")
                decoder.feed(self._view[:n])
        else:
            if length is None:
                raise HttpError("response without a length; cannot keep the connection alive")
            got = len(body)
            while got < length:
                n = sock.recv_into(self._buf)
                ended = time.perf_counter_ns()
                if not n:
                    raise HttpError("connection closed mid-body")
                got += n
        return status, ended - started

    def stream(self, request: bytes) -> tuple[int, int | None, int]:
        """Send one streaming request and read it to the end: (status, ns to first content, ns total)."""
        sock = self.sock
        started = time.perf_counter_ns()
        sock.sendall(request)
        status, pending, _length, chunked, now = self._read_head()
        if not chunked:
            raise HttpError(f"expected a chunked event stream, got status {status}")
        decoder = ChunkedDecoder()
        events = bytearray()
        first: int | None = None
        while True:
            if pending:
                decoded = decoder.feed(pending)
                if first is None and decoded:
                    events += decoded
                    if _first_content(events):
                        first = now - started
            if decoder.done:
                return status, first, now - started
            n = sock.recv_into(self._buf)
            now = time.perf_counter_ns()
            if not n:
                raise HttpError("connection closed mid-stream")
            pending = bytearray(self._view[:n])


def _first_content(events: bytearray) -> bool:
    """Whether the complete SSE events received so far include one with non-empty delta content."""
    complete = events.rfind(b"\n\n")
    if complete < 0:
        return False
    for event in bytes(events[:complete]).split(b"\n\n"):
        for line in event.split(b"\n"):
            if not line.startswith(b"data:") or not _CONTENT.search(line):
                continue
            payload = line[5:].strip()
            try:
                choices = orjson.loads(payload).get("choices") or []
            except orjson.JSONDecodeError:
                continue
            if any((c.get("delta") or {}).get("content") for c in choices if isinstance(c, dict)):
                return True
    return False


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass
class LatencyResult:
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int = 0
    total_p50_ms: float | None = None  # streams: time to the end of the stream

    @staticmethod
    def from_ns(samples_ns: list[int], errors: int = 0, totals_ns: list[int] | None = None) -> LatencyResult:
        values = sorted(s / 1e6 for s in samples_ns)
        total_p50 = percentile(sorted(t / 1e6 for t in totals_ns), 50) if totals_ns else None
        return LatencyResult(
            count=len(values),
            p50_ms=percentile(values, 50),
            p90_ms=percentile(values, 90),
            p99_ms=percentile(values, 99),
            mean_ms=statistics.fmean(values) if values else float("nan"),
            max_ms=values[-1] if values else float("nan"),
            errors=errors,
            total_p50_ms=total_p50,
        )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def measure_c1(port: int, tagged: bool, count: int) -> LatencyResult:
    request = build_request(port, CHAT_BODY, tagged)
    client = KeepAliveClient(port)
    samples: list[int] = []
    errors = 0
    try:
        with gc_paused():
            for _ in range(count):
                status, elapsed = client.post(request)
                if status == 200:
                    samples.append(elapsed)
                else:
                    errors += 1
    finally:
        client.close()
    return LatencyResult.from_ns(samples, errors)


def measure_ttft(port: int, tagged: bool, count: int) -> LatencyResult:
    request = build_request(port, STREAM_BODY, tagged)
    client = KeepAliveClient(port)
    firsts: list[int] = []
    totals: list[int] = []
    errors = 0
    try:
        with gc_paused():
            for _ in range(count):
                status, first, total = client.stream(request)
                if status == 200 and first is not None:
                    firsts.append(first)
                    totals.append(total)
                else:
                    errors += 1
    finally:
        client.close()
    return LatencyResult.from_ns(firsts, errors, totals)


# -- concurrency 32: wrk, or client processes -------------------------------------------------------

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{tag_headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %.1f, "p99_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class ThroughputResult:
    generator: str
    requests: int
    seconds: float
    rps: float
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)


def run_metered(
    load: Wrk | ProcessLoad,
    pids: dict[str, int],
    pg_pids: Callable[[], list[int]],
    port: int,
    tagged: bool,
    duration_s: int,
) -> ThroughputResult:
    meter = CpuMeter(pids, {"postgres": pg_pids()})
    result = load.run(port, tagged, HIGH_CONCURRENCY, duration_s)
    result.cpu = meter.shares()
    return result


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Wrk:
    def __init__(self, path: str, workdir: Path, cpus: frozenset[int] | None) -> None:
        self.path = path
        self.cpus = cpus
        self.scripts: dict[bool, Path] = {}
        for tagged in (False, True):
            tags = (
                f'wrk.headers["X-FinOps-Team"] = "{TEAM}"\nwrk.headers["X-FinOps-Feature"] = "{FEATURE}"'
                if tagged
                else ""
            )
            script = workdir / f"wrk-{'tagged' if tagged else 'plain'}.lua"
            script.write_text(WRK_SCRIPT.format(body=_lua_string(CHAT_BODY.decode()), tag_headers=tags))
            self.scripts[tagged] = script

    def run(self, port: int, tagged: bool, concurrency: int, duration_s: int) -> ThroughputResult:
        command = [
            self.path,
            "-t1",
            f"-c{concurrency}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(self.scripts[tagged]),
            f"http://{HOST}:{port}{CHAT_PATH}",
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 30, preexec_fn=_pinner(self.cpus)
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        data = json.loads(line.removeprefix("BENCH_JSON "))
        seconds = data["duration_us"] / 1e6
        errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
        return ThroughputResult(
            generator="wrk",
            requests=data["requests"],
            seconds=seconds,
            rps=(data["requests"] - data["status"]) / seconds,
            errors=errors,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            error_kinds={k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]},
        )


class _LoadProtocol(asyncio.Protocol):
    """One keep-alive connection that sends the next request as soon as the previous answer is in."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request = request
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.deadline = 0.0
        self.completed = 0
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def begin(self, deadline: float) -> None:
        self.deadline = deadline
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match is None:
            self.errors += 1
            self._finish()
            return
        total = end + 4 + int(match.group(1))
        if len(buf) < total:
            return
        if head.startswith(b"http/1.1 200"):
            self.completed += 1
        else:
            self.errors += 1
        del buf[:total]
        if time.perf_counter() < self.deadline:
            assert self.transport is not None
            self.transport.write(self.request)
        else:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _drive(
    loop: asyncio.AbstractEventLoop,
    protocols: list[_LoadProtocol],
    port: int,
    request: bytes,
    connections: int,
    duration_s: float,
    start_at: float,
) -> tuple[int, int, float, float]:
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        _transport, protocol = await loop.create_connection(
            functools.partial(_LoadProtocol, request, done), HOST, port
        )
        protocols.append(protocol)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    for protocol in protocols:
        protocol.begin(began + duration_s)
    await asyncio.gather(*(p.done for p in protocols))
    ended = time.perf_counter()
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    return (
        sum(p.completed for p in protocols),
        sum(p.errors for p in protocols),
        began,
        ended,
    )


class ProcessLoad:
    """Fallback load generator: client processes, each with asyncio raw-socket keep-alive clients."""

    def __init__(self, cpus: frozenset[int] | None) -> None:
        self.cpus = sorted(cpus) if cpus else None
        usable = len(cpus) if cpus else (os.cpu_count() or 1)
        self.processes = max(2, min(4, usable))
        self.name = f"python asyncio, {self.processes} processes"

    def run(self, port: int, tagged: bool, concurrency: int, duration_s: int) -> ThroughputResult:
        request = build_request(port, CHAT_BODY, tagged)
        shares = [
            concurrency // self.processes + (k < concurrency % self.processes) for k in range(self.processes)
        ]
        start_at = time.time() + 0.5
        context = multiprocessing.get_context("fork")
        with context.Pool(self.processes, initializer=_quiet_worker) as pool:
            pending = [
                pool.apply_async(_load_worker, (port, request, n, duration_s, start_at, self.cpus))
                for n in shares
                if n
            ]
            results = [p.get(timeout=duration_s + 30) for p in pending]
        completed = sum(r[0] for r in results)
        errors = sum(r[1] for r in results)
        seconds = max(r[3] for r in results) - min(r[2] for r in results)
        return ThroughputResult(self.name, completed + errors, seconds, completed / seconds, errors)


def _quiet_worker() -> None:
    # The parent handles Ctrl-C and terminates the pool; a forked worker must not run its handlers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load_worker(
    port: int, request: bytes, connections: int, duration_s: float, start_at: float, cpus: list[int] | None
) -> tuple[int, int, float, float]:
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def main() -> tuple[int, int, float, float]:
        return await _drive(asyncio.get_running_loop(), [], port, request, connections, duration_s, start_at)

    return asyncio.run(main())


# -- the sim's own count of calls -------------------------------------------------------------------


def sim_requests(port: int) -> int:
    status, body = http_get(port, "/metrics")
    if status != 200:
        raise RuntimeError(f"sim /metrics answered {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("vllm:request_success_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def settled_sim_requests(port: int, timeout_s: float = 10.0) -> int:
    """The sim's count once calls still in flight (a load generator just stopped) have finished."""
    deadline = time.monotonic() + timeout_s
    previous = sim_requests(port)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = sim_requests(port)
        if current == previous:
            return current
        previous = current
    return previous


# -- profiling --------------------------------------------------------------------------------------


def summarise_pyspy(raw_path: Path, top: int = 25, us_per_sample: float = 0.0) -> dict[str, Any]:
    """Self and inclusive shares of frames, and per-thread shares, from py-spy's collapsed stacks.

    Each entry is (frame, percent of the samples, microseconds per sample-weighted unit): pass
    ``us_per_sample`` = 1e6 / (rate * requests) to read the last as microseconds per request.
    """
    total = 0
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    thread_counts: Counter[str] = Counter()
    package_counts: Counter[str] = Counter()
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread (", "process ")):
            thread_frames = [f for f in frames if f.startswith(("thread (", "process "))]
            thread_counts[" ".join(thread_frames)] += count
            frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        leaf = _short_frame(frames[-1])
        self_counts[leaf] += count
        package_counts[_package(leaf)] += count
        for frame in {_short_frame(f) for f in frames}:
            incl_counts[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float, float]]:
        return [
            (name, round(100 * n / total, 1), round(n * us_per_sample, 1))
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "threads_pct": share(thread_counts),
        "self_pct": share(self_counts),
        "inclusive_pct": share(incl_counts),
        "package_pct": share(package_counts),
    }


def _package(short_frame: str) -> str:
    path = short_frame.rsplit("(", 1)[-1].rstrip(")")
    parts = path.split("/")
    if parts[0] == "stdlib" and len(parts) > 2:
        return parts[1]  # asyncio, concurrent, ...
    if parts[0] == "stdlib":
        return parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py") if len(parts) > 1 else path


def _short_frame(frame: str) -> str:
    # "handle (/x/y/site-packages/aiohttp/client.py:123)" -> "handle (aiohttp/client.py)"
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    name, path = match.groups()
    for marker in ("site-packages/", "/finops/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/finops/":
                path = "finops/" + path
            elif marker == "/lib/python3":
                path = "stdlib/" + path.split("/", 1)[1]
            break
    return f"{name} ({path})"


FLOOR_RELAY = """\
\"\"\"The floor: uvicorn (uvloop, httptools) relaying through a minimal keep-alive upstream client (an asyncio
protocol parsed by httptools); no finops logic, no ledger. What any Python proxy on this stack pays.\"\"\"
import asyncio
import sys

import httptools
import uvicorn

UP_HOST, UP_PORT = sys.argv[2].rsplit(":", 1)
pool = []


class Upstream(asyncio.Protocol):
    def __init__(self):
        self.parser = httptools.HttpResponseParser(self)
        self.events = None
        self.chunked = False
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True  # the upstream closes idle keep-alive connections after a few seconds

    def data_received(self, data):
        self.parser.feed_data(data)

    def on_header(self, name, value):
        if name.lower() == b"transfer-encoding":
            self.chunked = True

    def on_headers_complete(self):
        self.events.put_nowait((self.parser.get_status_code(), self.chunked))

    def on_body(self, body):
        self.events.put_nowait(body)

    def on_message_complete(self):
        self.events.put_nowait(None)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    while pool and pool[-1].closed:
        pool.pop()
    if pool:
        conn = pool.pop()
    else:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Upstream, UP_HOST, int(UP_PORT))
    conn.events = asyncio.Queue()
    conn.chunked = False
    head = (
        f"POST {scope['path']} HTTP/1.1\\r\\nHost: {UP_HOST}:{UP_PORT}\\r\\n"
        f"Content-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n"
    )
    conn.transport.write(head.encode() + body)
    status, chunked = await conn.events.get()
    if chunked:
        out = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": status, "headers": out})
        while (part := await conn.events.get()) is not None:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        parts = []
        while (part := await conn.events.get()) is not None:
            parts.append(part)
        data = b"".join(parts)
        out = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": data})
    pool.append(conn)


uvicorn.run(
    app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools", lifespan="off",
    log_level="warning", access_log=False,
)
"""


# -- the run ----------------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=5000, help="c=1 requests per mode and round; streams: half (5000)"
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per c=32 run (default: 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of direct+proxied (default: 3)")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--pin", choices=("auto", "none"), default="auto", help="CPU pinning (default: auto)")
    parser.add_argument(
        "--load", choices=("auto", "wrk", "python"), default="auto", help="c=32 load generator"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="Postgres admin URL")
    parser.add_argument("--profile", type=Path, default=None, help="also profile the proxy with py-spy")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure a bare uvicorn relay with a minimal upstream client (no finops logic)",
    )
    parser.add_argument(
        "--hard-limit",
        choices=("off", "memory", "redis"),
        default="off",
        help="put the bench's calls under a hard-limit budget (never reached): in-process counters, or "
        "Redis at --redis-url (default: off)",
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis for --hard-limit redis"
    )
    args = parser.parse_args()

    machine = machine_info()
    layout = Layout.choose(args.pin)
    print(
        f"machine: {machine['nproc']} CPUs ({machine['usable_cpus']} usable), {machine['cpu_model']}; "
        f"{machine['implementation']} {machine['python']}; {machine['platform']}"
    )
    print(f"pinning: {layout.describe()}")

    workdir = Path(tempfile.mkdtemp(prefix="finops-bench-"))
    children: list[Child] = []
    signal.signal(signal.SIGTERM, _interrupt)  # a plain kill cleans up like Ctrl-C does
    try:
        with bench_database(args.pg_url, args.keep_db) as db_url:
            return _run(args, machine, layout, workdir, db_url, children)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception:
        for child in children:
            log(f"--- {child.name} log (last lines) ---\n{child.log_tail()}")
        raise
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _hard_limit_config(args: argparse.Namespace) -> dict[str, Any]:
    """A budget over every bench call with a hard limit far above what a run spends."""
    if args.hard_limit == "off":
        return {}
    budget = {
        "name": f"bench-cap-{os.getpid()}",
        "scope": {"team": TEAM},
        "monthly_usd": "1000000",
        "hard_limit": True,
    }
    limits = {"redis_url": args.redis_url} if args.hard_limit == "redis" else {}
    return {"budgets": [budget], "limits": limits}


def _drop_hard_limit_counters(args: argparse.Namespace) -> None:
    if args.hard_limit != "redis":
        return
    import redis

    client = redis.Redis.from_url(args.redis_url)
    try:
        keys = list(client.scan_iter(match=f"finops:limit:bench-cap-{os.getpid()}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _start(
    layout: Layout, workdir: Path, db_url: str, children: list[Child], extra: dict[str, Any] | None = None
) -> tuple[Child, int, Child, int]:
    sim_port = free_port()
    sim = Child(
        "sim",
        finops_command("sim", "--host", HOST, "--port", str(sim_port), "--model", MODEL, *SIM_KNOBS),
        workdir / "sim.log",
        layout.sim,
    )
    children.append(sim)
    sim.wait_http(sim_port, "/health")

    proxy_port = free_port()
    config = {
        "database_url": db_url,
        "backends": [
            {
                "name": "sim",
                "url": f"http://{HOST}:{sim_port}",
                "models": [MODEL],
                "gpus": 1,
                "usd_per_gpu_hour": "2.0",
            }
        ],
        "prices": {MODEL: {"input_per_mtok": "0.10", "output_per_mtok": "0.20"}},
        "ledger": {"spool_dir": str(workdir / "spool")},
        **(extra or {}),
    }
    config_path = workdir / "finops.yaml"
    config_path.write_text(yaml.safe_dump(config))
    proxy = Child(
        "proxy",
        finops_command("proxy", "--config", str(config_path), "--host", HOST, "--port", str(proxy_port)),
        workdir / "proxy.log",
        layout.proxy,
    )
    children.append(proxy)
    proxy.wait_http(proxy_port, "/healthz")
    return sim, sim_port, proxy, proxy_port


def _run(
    args: argparse.Namespace,
    machine: dict[str, Any],
    layout: Layout,
    workdir: Path,
    db_url: str,
    children: list[Child],
) -> int:
    with contextlib.ExitStack() as closing:
        return _measure(args, machine, layout, workdir, db_url, children, closing)


def _measure(
    args: argparse.Namespace,
    machine: dict[str, Any],
    layout: Layout,
    workdir: Path,
    db_url: str,
    children: list[Child],
    closing: contextlib.ExitStack,
) -> int:
    closing.callback(_drop_hard_limit_counters, args)
    sim, sim_port, proxy, proxy_port = _start(layout, workdir, db_url, children, _hard_limit_config(args))
    if layout.client is not None:
        os.sched_setaffinity(0, set(layout.client))

    wrk_path = shutil.which("wrk") if args.load in ("auto", "wrk") else None
    if args.load == "wrk" and wrk_path is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    load: Wrk | ProcessLoad = Wrk(wrk_path, workdir, layout.load) if wrk_path else ProcessLoad(layout.load)
    generator = "wrk (1 thread, Lua script)" if isinstance(load, Wrk) else load.name
    print(f"c=32 load generator: {generator}; c=1 client: raw-socket keep-alive HTTP/1.1")
    print(f"db: {make_url(db_url).database} (Postgres), sim :{sim_port}, proxy :{proxy_port}")

    ports = {"direct": (sim_port, False), "proxied": (proxy_port, True)}
    pids = {"sim": sim.pid, "proxy": proxy.pid}
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    closing.callback(admin.dispose)
    db_name = make_url(db_url).database

    def pg_pids() -> list[int]:
        """The Postgres backends serving the bench database (the proxy's ledger writer)."""
        with admin.connect() as conn:
            rows = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": db_name})
            return [int(pid) for (pid,) in rows]

    if args.floor:
        floor_port = free_port()
        relay = workdir / "floor_relay.py"
        relay.write_text(FLOOR_RELAY)
        floor = Child(
            "floor relay",
            [sys.executable, str(relay), str(floor_port), f"{HOST}:{sim_port}"],
            workdir / "floor.log",
            layout.proxy,
        )
        children.append(floor)
        floor.wait_http(floor_port, "/")
        ports["floor"] = (floor_port, False)
        pids["floor"] = floor.pid
        print(f"floor relay (uvicorn + minimal httptools upstream client, no finops logic) :{floor_port}")
    proxied_calls = 0

    def proxied_phase(run: Callable[..., T], *run_args: Any) -> T:
        nonlocal proxied_calls
        before = settled_sim_requests(sim_port)
        result = run(*run_args)
        proxied_calls += settled_sim_requests(sim_port) - before
        return result

    def timed(mode: str, run: Callable[..., T], *run_args: Any) -> T:
        return proxied_phase(run, *run_args) if mode == "proxied" else run(*run_args)

    # Warm-up: connection pools, code paths, the database's first batches.
    t_start = time.perf_counter()
    log("warming up ...")
    for mode, (port, tagged) in ports.items():
        timed(mode, measure_c1, port, tagged, 300)
        timed(mode, measure_ttft, port, tagged, 100)
        timed(mode, load.run, port, tagged, HIGH_CONCURRENCY, 2)

    rounds: list[dict[str, Any]] = []
    stream_count = max(1, args.requests // 2)
    for number in range(args.rounds):
        order = list(ports) if number % 2 == 0 else list(reversed(ports))
        record: dict[str, Any] = {"order": order}
        for what in ("c1", "ttft", "c32"):
            for mode in order:
                port, tagged = ports[mode]
                result: LatencyResult | ThroughputResult
                if what == "c1":
                    result = timed(mode, measure_c1, port, tagged, args.requests)
                elif what == "ttft":
                    result = timed(mode, measure_ttft, port, tagged, stream_count)
                else:
                    result = timed(mode, run_metered, load, pids, pg_pids, port, tagged, args.duration)
                record[f"{what}_{mode}"] = asdict(result)
        rounds.append(record)
        log(
            f"round {number + 1}/{args.rounds}: c=1 p50 direct {record['c1_direct']['p50_ms']:.3f} ms, "
            f"proxied {record['c1_proxied']['p50_ms']:.3f} ms; c=32 direct "
            f"{record['c32_direct']['rps']:.0f} req/s, proxied {record['c32_proxied']['rps']:.0f} req/s"
        )
    measured_s = time.perf_counter() - t_start

    profile: dict[str, Any] | None = None
    if args.profile is not None:
        profile = proxied_phase(_profile, args, proxy.pid, proxy_port, load)

    ledger = _check_ledger(db_url, proxied_calls)
    summary = _summarise(rounds)
    _print_table(summary, args, len(rounds))
    print(
        f"ledger: {ledger['rows']} rows for {proxied_calls} proxied calls (sim's count) "
        f"-> {'OK' if ledger['ok'] else 'MISMATCH'}; measured in {measured_s:.0f} s"
    )
    if not ledger["ok"]:
        print("!" * 78 + "\n!!! WARNING: the ledger does not hold one row per proxied call !!!\n" + "!" * 78)
    if profile is not None:
        _print_profile(profile)

    if args.json is not None:
        out = {
            "machine": machine,
            "pinning": layout.describe(),
            "load_generator": generator,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "summary": summary,
            "rounds": rounds,
            "ledger": {**ledger, "proxied_calls": proxied_calls},
            "profile": profile,
        }
        args.json.write_text(json.dumps(out, indent=2))
        print(f"raw results written to {args.json}")
    return 0 if ledger["ok"] else 1


def _check_ledger(db_url: str, expected: int, timeout_s: float = 20.0) -> dict[str, Any]:
    engine = make_engine(db_url)
    try:
        deadline = time.monotonic() + timeout_s
        rows = ledger_count(engine)
        while rows < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = ledger_count(engine)
        return {"rows": rows, "ok": rows == expected}
    finally:
        engine.dispose()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str, metric: str) -> list[float]:
        return [r[key][metric] for r in rounds]

    def added(kind: str, metric: str, mode: str = "proxied") -> float:
        pairs = zip(col(f"{kind}_{mode}", metric), col(f"{kind}_direct", metric), strict=True)
        return _median([p - d for p, d in pairs])

    out: dict[str, Any] = {}
    floor = "c1_floor" in rounds[0]
    for kind in ("c1", "ttft"):
        for metric in ("p50_ms", "p99_ms"):
            out[f"{kind}_direct_{metric}"] = _median(col(f"{kind}_direct", metric))
            out[f"{kind}_proxied_{metric}"] = _median(col(f"{kind}_proxied", metric))
            out[f"{kind}_added_{metric}"] = added(kind, metric)
            if floor:
                out[f"{kind}_floor_{metric}"] = _median(col(f"{kind}_floor", metric))
                out[f"{kind}_floor_added_{metric}"] = added(kind, metric, "floor")
    out["c32_direct_rps"] = _median(col("c32_direct", "rps"))
    out["c32_proxied_rps"] = _median(col("c32_proxied", "rps"))
    if floor:
        out["c32_floor_rps"] = _median(col("c32_floor", "rps"))
        out["c32_floor_rps_per_core"] = _median(
            [
                r["c32_floor"]["rps"] / r["c32_floor"]["cpu"]["floor_cpu"]
                for r in rounds
                if r["c32_floor"]["cpu"].get("floor_cpu")
            ]
        )
    # Throughput per CPU-second the proxy actually got: less sensitive to a neighbour taking its core.
    out["c32_proxied_rps_per_proxy_core"] = _median(
        [
            r["c32_proxied"]["rps"] / r["c32_proxied"]["cpu"]["proxy_cpu"]
            for r in rounds
            if r["c32_proxied"]["cpu"].get("proxy_cpu")
        ]
    )
    out["c32_ratio"] = _median(
        [p / d for p, d in zip(col("c32_proxied", "rps"), col("c32_direct", "rps"), strict=True)]
    )
    for mode in ("direct", "proxied", "floor") if floor else ("direct", "proxied"):
        for name in rounds[0][f"c32_{mode}"]["cpu"]:
            out[f"c32_{mode}_{name}"] = _median([r[f"c32_{mode}"]["cpu"].get(name, 0.0) for r in rounds])
    out["errors"] = sum(r[k]["errors"] for r in rounds for k in r if k != "order")
    return out


def _print_table(s: dict[str, Any], args: argparse.Namespace, rounds: int) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    floor = "c32_floor_rps" in s
    targets = {
        "c1_p50_ms": f"added <= {TARGET_ADDED_P50_MS} ms: "
        f"{verdict(s['c1_added_p50_ms'] <= TARGET_ADDED_P50_MS)}",
        "ttft_p50_ms": f"added <= {TARGET_ADDED_TTFT_P50_MS} ms: "
        f"{verdict(s['ttft_added_p50_ms'] <= TARGET_ADDED_TTFT_P50_MS)}",
    }
    labels = {"c1": "c=1 latency", "ttft": "stream TTFT"}
    print()
    print(
        f"median of {rounds} rounds; c=1: {args.requests} requests, {max(1, args.requests // 2)} streams "
        f"per mode and round; c=32: {args.duration} s per mode and round"
    )
    header = f"{'':24}{'direct':>10}{'proxied':>10}{'added':>10}"
    if floor:
        header += f"{'floor':>10}{'fl.added':>10}"
    print(header + "   target")
    for kind in ("c1", "ttft"):
        for metric in ("p50_ms", "p99_ms"):
            line = f"{labels[kind] + ' ' + metric[:3] + ' (ms)':24}"
            columns = ["direct", "proxied", "added", *(("floor", "floor_added") if floor else ())]
            line += "".join(f"{fmt_ms(s[f'{kind}_{column}_{metric}']):>10}" for column in columns)
            print(f"{line}   {targets.get(f'{kind}_{metric}', '')}")
    ratio_ok = s["c32_proxied_rps"] >= TARGET_PROXIED_RPS
    line = (
        f"{'c=32 req/s':24}{s['c32_direct_rps']:>10.0f}{s['c32_proxied_rps']:>10.0f}"
        f"{'x' + format(s['c32_ratio'], '.2f'):>10}"
    )
    if floor:
        line += f"{s['c32_floor_rps']:>10.0f}{'':>10}"
    print(
        f"{line}   >= {TARGET_PROXIED_RPS:.0f} proxied req/s per proxy process: {verdict(ratio_ok)} "
        f"(ratio proxied/direct {s['c32_ratio']:.2f})"
    )
    print(
        f"{'':24}{'':>10}{s['c32_proxied_rps_per_proxy_core']:>10.0f}{'':>10}"
        f"{format(s['c32_floor_rps_per_core'], '>10.0f') + ' ' * 10 if floor else ''}   "
        "req/s per CPU-second of the proxy (or floor relay) process"
    )
    print(
        f"{'c=32 CPU (cores)':24}  sim {s['c32_direct_sim_cpu']:.2f} direct; proxied: proxy "
        f"{s['c32_proxied_proxy_cpu']:.2f} (other threads {s['c32_proxied_proxy_other_threads_cpu']:.2f}), "
        f"sim {s['c32_proxied_sim_cpu']:.2f}, its Postgres backends {s['c32_proxied_postgres_cpu']:.2f}"
        + (f"; floor relay {s['c32_floor_floor_cpu']:.2f}" if floor else "")
    )
    busy = sorted(k for k in s if k.startswith("c32_direct_cpu") and k.endswith("_busy"))
    if busy:

        def per_cpu(mode: str) -> str:
            return " ".join(f"{k.split('_')[2]} {s[k.replace('direct', mode)]:.0%}" for k in busy)

        modes = ("direct", "proxied", "floor") if floor else ("direct", "proxied")
        print(f"{'c=32 CPUs busy':24}  " + "; ".join(f"{mode}: {per_cpu(mode)}" for mode in modes))
    if s["errors"]:
        print(f"!!! {s['errors']} failed requests during the measurements")


def _profile(
    args: argparse.Namespace, proxy_pid: int, proxy_port: int, load: Wrk | ProcessLoad
) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        log("py-spy not found (pip install py-spy); skipping the profile")
        return {"error": "py-spy not installed"}
    args.profile.mkdir(parents=True, exist_ok=True)
    raw = args.profile / "proxy-c32.txt"
    seconds = max(args.duration, 5)
    log(f"profiling the proxy for {seconds} s under c=32 load (py-spy) ...")
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(proxy_pid),
            "--duration",
            str(seconds + 1),
            "--rate",
            str(PYSPY_RATE_HZ),
            "--threads",
            "--gil",
            "--function",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        meter = CpuMeter({"proxy": proxy_pid})
        result = load.run(proxy_port, True, HIGH_CONCURRENCY, seconds)
        cpu = meter.shares()
        _out, err = spy.communicate(timeout=30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not raw.exists():
        log(f"py-spy failed ({spy.returncode}): {err.strip()[-500:]}")
        return {"error": err.strip()[-500:]}
    summary = summarise_pyspy(raw, us_per_sample=1e6 / (PYSPY_RATE_HZ * max(1, result.requests)))
    summary["rps_under_profiler"] = result.rps
    summary["requests"] = result.requests
    summary["cpu"] = cpu
    summary["raw"] = str(raw)
    return summary


def _print_profile(profile: dict[str, Any]) -> None:
    if "error" in profile:
        print(f"profile: {profile['error']}")
        return
    print(
        f"\nproxy profile (py-spy, c=32, {profile['rps_under_profiler']:.0f} req/s under the profiler, proxy "
        f"CPU {profile['cpu']['proxy_cpu']:.2f} cores, {profile['samples']} non-idle samples; "
        f"{profile['raw']})"
    )
    print("  samples hold the GIL (py-spy --gil); us/req = sampled time / requests served, approximate")
    print(
        "  threads: " + "; ".join(f"{name} {pct}% ({us} us/req)" for name, pct, us in profile["threads_pct"])
    )
    print(
        "  self time by package: "
        + "; ".join(f"{n} {p}% ({us} us/req)" for n, p, us in profile["package_pct"])
    )
    for title, key, count in (("self", "self_pct", 15), ("inclusive", "inclusive_pct", 25)):
        print(f"  top {title} time:      %   us/req")
        for name, pct, us in profile[key][:count]:
            print(f"    {pct:12.1f} {us:7.1f}  {name}")


if __name__ == "__main__":
    sys.exit(main())
