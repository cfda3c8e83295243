"""Real local receivers for the alert channels: an HTTP server standing in for Slack's incoming
webhook, and an aiosmtpd SMTP server. Both record what they receive."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.processes import free_port


@dataclass
class Webhook:
    """Answers 500 to the first ``fail_first`` POSTs, then 200; ``delay_s`` before answering."""

    fail_first: int = 0
    delay_s: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver(fail_first: int = 0, delay_s: float = 0.0) -> Iterator[Webhook]:
    hook = Webhook(fail_first=fail_first, delay_s=delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(hook.delay_s)
            with hook.lock:
                hook.attempts += 1
                failing = hook.attempts <= hook.fail_first
                if not failing:
                    hook.received.append({"path": self.path, "at": time.time(), **json.loads(body)})
            self.send_response(500 if failing else 200)
            self.end_headers()
            self.wfile.write(b"temporarily broken" if failing else b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/SECRETTOKEN"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.box.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl), for a real STARTTLS handshake."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def smtp_server(
    credentials: tuple[str, str] | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[Mailbox]:
    box = Mailbox("127.0.0.1", free_port())
    kwargs: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    if credentials is not None:

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == credentials
            )
            if ok:
                box.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)

        kwargs |= {
            "authenticator": authenticator,
            "auth_required": True,
            "auth_require_tls": tls is not None,
            # smtplib falls back from PLAIN to LOGIN after a refusal, and aiosmtpd's LOGIN waits for a
            # username smtplib already sent: PLAIN alone keeps a refused login a plain 535.
            "auth_exclude_mechanism": ["LOGIN"],
        }
    controller = Controller(_Handler(box), hostname=box.host, port=box.port, **kwargs)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s: {what()}")
