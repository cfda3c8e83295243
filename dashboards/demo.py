"""The demo's dashboard login (``finops up --demo``): one admin whose password is made once and kept
beside the demo's config (mode 0600), so that a restart keeps it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from dashboards.passwords import hash_password

DEMO_USER = "admin"


def demo_dashboard(directory: Path) -> tuple[dict[str, Any], str]:
    """The ``dashboard:`` section of the demo config, and the admin's password to print."""
    path = directory / "dashboard-password"
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = ""
    if not password:
        password = secrets.token_urlsafe(12)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(password + "\n")
    section = {"users": [{"name": DEMO_USER, "role": "admin", "password_hash": hash_password(password)}]}
    return section, password
