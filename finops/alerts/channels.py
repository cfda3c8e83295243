"""Sending one message to one channel: Slack incoming webhook, email (SMTP), console.

Errors are raised as ``ChannelFailure`` with a message written here, never the library's own text
as-is: an httpx error names the webhook URL, which is a secret. Every message also passes through
``redact`` with the channel's secrets, in case a server echoes one back.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.utils import make_msgid

import httpx

from finops.alerts.message import Message
from finops.config import ChannelConfig, FinopsConfig, SmtpConfig

log = logging.getLogger("finops.alerts.console")
SLACK_TIMEOUT_S = 10.0


class ChannelFailure(Exception):
    """A send that did not succeed; the text is safe to log and store (no secrets)."""


def redact(text: str, secrets: list[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def send(config: FinopsConfig, channel_name: str, message: Message) -> None:
    channel = config.channels.get(channel_name)
    if channel is None:
        raise ChannelFailure(f"channel {channel_name!r} is not configured (config 'channels')")
    secrets = [channel.webhook_url, config.smtp.password, config.smtp.username]
    try:
        if channel.type == "slack":
            send_slack(channel, message)
        elif channel.type == "email":
            send_email(config.smtp, channel, message)
        else:
            send_console(channel_name, message)
    except ChannelFailure as exc:
        raise ChannelFailure(redact(str(exc), secrets)) from None


def send_slack(channel: ChannelConfig, message: Message) -> None:
    payload = {"text": message.subject, "blocks": message.slack_blocks}
    try:
        response = httpx.post(str(channel.webhook_url), json=payload, timeout=SLACK_TIMEOUT_S)
    except httpx.TimeoutException:
        raise ChannelFailure("slack webhook: timed out") from None
    except httpx.HTTPError as exc:
        raise ChannelFailure(f"slack webhook: {type(exc).__name__} (no answer)") from None
    if response.status_code >= 300:
        body = response.text[:200].replace("\n", " ")
        raise ChannelFailure(f"slack webhook answered HTTP {response.status_code}: {body}")


def email_of(smtp: SmtpConfig, channel: ChannelConfig, message: Message) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = smtp.sender
    email["To"] = ", ".join(channel.to)
    email["Message-ID"] = make_msgid(domain="finops")
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


def send_email(smtp: SmtpConfig, channel: ChannelConfig, message: Message) -> None:
    email = email_of(smtp, channel, message)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
            server.ehlo()
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
            if smtp.username:
                server.login(smtp.username, smtp.password or "")
            refused = server.send_message(email)
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelFailure(f"smtp {smtp.host}:{smtp.port}: login refused ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        reply = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise ChannelFailure(f"smtp {smtp.host}:{smtp.port}: {exc.smtp_code} {reply[:200]}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelFailure(f"smtp {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"[:500]) from None
    if refused:
        # The server took the message for the other recipients: sending again would give them a
        # second copy, so this counts as delivered and the refused addresses go to the log.
        refused_text = ", ".join(sorted(refused))
        log.warning("smtp %s:%s delivered, but refused recipients %s", smtp.host, smtp.port, refused_text)


def send_console(channel_name: str, message: Message) -> None:
    """The demo's channel: the worker's log and its standard output."""
    log.warning("ALERT [%s] %s", channel_name, message.subject)
    print(f"=== ALERT [{channel_name}] {message.subject}\n{message.text}\n===", file=sys.stdout, flush=True)
