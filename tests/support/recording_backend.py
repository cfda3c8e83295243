"""A tiny real HTTP backend that answers fixed bytes and records what it was sent.

Used where the stand-in's own responses would hide what the test checks: byte-for-byte relaying of an
unusual body, and exactly which headers and body the proxy forwarded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingBackend:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                backend.requests.append(
                    Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                self.send_response(backend.status)
                self.send_header("content-type", backend.content_type)
                self.send_header("content-length", str(len(backend.body)))
                self.send_header("x-backend-header", "kept")
                self.end_headers()
                self.wfile.write(backend.body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
