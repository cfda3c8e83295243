"""What an alert says, rendered once for every kind of channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    # One line: the email subject and the Slack notification text.
    subject: str
    # Plain-text body (email's text part, the console channel).
    text: str
    # HTML body (email's HTML part).
    html: str
    # Slack Block Kit blocks for an incoming webhook.
    slack_blocks: list[dict[str, Any]] = field(default_factory=list)
