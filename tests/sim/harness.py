"""Runs the real stand-in for tests: ``python -m finops.cli sim`` in a subprocess, on loopback."""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

STARTUP_TIMEOUT_S = 20.0
_LISTENING = re.compile(r"finops sim listening on (http://\S+) \(models: ([^)]*)\)")


@dataclass
class SimServer:
    base_url: str
    process: subprocess.Popen[str]
    log_path: Path

    @property
    def api_base(self) -> str:
        return self.base_url + "/v1"

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.base_url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def client(self, **kwargs: object) -> openai.OpenAI:
        # No retries: a retried fault would hide what the stand-in did to the first attempt.
        return openai.OpenAI(base_url=self.api_base, api_key="sk-sim", max_retries=0, **kwargs)  # type: ignore[arg-type]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample on /metrics, keyed by sample name and sorted labels."""
        text = httpx.get(self.base_url + "/metrics").text
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def log(self) -> str:
        return self.log_path.read_text()


def metric(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, model: str, **labels: str
) -> float:
    key = (name, tuple(sorted({"model_name": model, "engine": "0", **labels}.items())))
    return samples[key]


def launch_server(args: list[str], log_path: Path) -> subprocess.Popen[str]:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "finops.cli", "sim", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


def wait_ready(process: subprocess.Popen[str], log_path: Path) -> SimServer:
    """Read the announced address, then wait until /health answers."""
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
    line = process.stdout.readline() if ready else ""
    match = _LISTENING.search(line)
    if match is None:
        process.kill()
        raise RuntimeError(f"finops sim did not start: {line!r}\n{log_path.read_text()}")
    server = SimServer(match.group(1), process, log_path)
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base_url + "/health", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"finops sim never became healthy\n{log_path.read_text()}")


def start_server(args: list[str], log_path: Path) -> SimServer:
    return wait_ready(launch_server(args, log_path), log_path)


class SimLauncher:
    """Starts stand-ins with given CLI arguments (several at once with ``many``) and stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._servers: list[SimServer] = []
        self._launched = 0

    def __call__(self, *args: str) -> SimServer:
        return self.many(list(args))[0]

    def many(self, *arg_lists: list[str]) -> list[SimServer]:
        pending = []
        for args in arg_lists:
            log_path = self._log_dir / f"sim-{self._launched}.log"
            self._launched += 1
            pending.append((launch_server(args, log_path), log_path))
        servers = [wait_ready(process, log_path) for process, log_path in pending]
        self._servers.extend(servers)
        return servers

    def stop_all(self) -> None:
        for server in self._servers:
            stop_server(server)


def stop_server(server: SimServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()


def sse_datas(response: httpx.Response) -> list[str]:
    """The data of every SSE event of a complete streamed response, in order."""
    events = response.text.split("\n\n")
    assert events[-1] == "", "a stream ends with a blank line"
    datas = []
    for event in events[:-1]:
        assert event.startswith("data: "), event
        datas.append(event.removeprefix("data: "))
    return datas


def stream_chunks(
    server: SimServer, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """POST a streaming request; the JSON chunks before ``[DONE]`` (which must end the stream)."""
    response = httpx.post(server.api_base + path, json=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    datas = sse_datas(response)
    assert datas[-1] == "[DONE]"
    return [json.loads(data) for data in datas[:-1]]


def raw_exchange(server: SimServer, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """Send one POST over a fresh socket and return every byte the server sent until it closed."""
    host, port = server.host_port
    head = [
        f"POST {path} HTTP/1.1",
        f"host: {host}:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        # Without keep-alive the server closes after a complete response too; only the bytes differ.
        "connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def dechunk(body: bytes) -> tuple[list[bytes], bool]:
    """The chunks of a chunked body, and whether it ended with the terminating zero-length chunk."""
    chunks: list[bytes] = []
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            return chunks, True
        if len(rest) < size + 2:
            break
        chunks.append(rest[:size])
        body = rest[size + 2 :]
    return chunks, False
