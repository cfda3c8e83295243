"""Each channel against a real receiver: Slack's webhook (a local HTTP server), SMTP (aiosmtpd), with
and without login; failures are errors that name no secret."""

from __future__ import annotations

import pytest

from finops.alerts.channels import ChannelFailure, send
from finops.alerts.message import Message
from finops.config import FinopsConfig
from tests.alerts.support import self_signed_cert, smtp_server, webhook_receiver
from tests.support.processes import free_port

MESSAGE = Message(
    subject="Budget x passed 50%",
    text="plain body\n",
    html="<p>html body</p>",
    slack_blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}],
)


def config(**extra):
    return FinopsConfig.model_validate(extra)


def test_slack_posts_block_kit_to_the_webhook():
    with webhook_receiver() as hook:
        send(config(channels={"s": {"type": "slack", "webhook_url": hook.url}}), "s", MESSAGE)
    [post] = hook.received
    assert post["path"] == "/services/T000/B000/SECRETTOKEN"
    assert post["text"] == MESSAGE.subject and post["blocks"] == MESSAGE.slack_blocks


def test_slack_errors_never_name_the_webhook_url():
    with webhook_receiver(fail_first=1) as hook:
        c = config(channels={"s": {"type": "slack", "webhook_url": hook.url}})
        with pytest.raises(ChannelFailure) as failed:
            send(c, "s", MESSAGE)
    assert "HTTP 500" in str(failed.value) and "SECRETTOKEN" not in str(failed.value)
    closed = f"http://127.0.0.1:{free_port()}/services/T/B/SECRETTOKEN"
    with pytest.raises(ChannelFailure) as failed:
        send(config(channels={"s": {"type": "slack", "webhook_url": closed}}), "s", MESSAGE)
    assert str(failed.value).startswith("slack webhook:") and "SECRETTOKEN" not in str(failed.value)


def test_email_sends_a_text_and_an_html_part():
    with smtp_server() as box:
        c = config(
            channels={"m": {"type": "email", "to": ["finance@example.com", "ops@example.com"]}},
            smtp={"host": box.host, "port": box.port, "from": "finops@example.com"},
        )
        send(c, "m", MESSAGE)
    [email] = box.messages
    assert email["Subject"] == MESSAGE.subject and email["From"] == "finops@example.com"
    assert email["To"] == "finance@example.com, ops@example.com"
    assert email.get_body(("plain",)).get_content().replace("\r\n", "\n") == MESSAGE.text
    assert email.get_body(("html",)).get_content().strip() == MESSAGE.html


def test_email_logs_in_when_configured_and_hides_the_password_on_failure():
    with smtp_server(credentials=("finops", "s3cret-pw")) as box:
        good = config(
            channels={"m": {"type": "email", "to": ["a@example.com"]}},
            smtp={"host": box.host, "port": box.port, "username": "finops", "password": "s3cret-pw"},
        )
        send(good, "m", MESSAGE)
        bad = config(
            channels={"m": {"type": "email", "to": ["a@example.com"]}},
            smtp={"host": box.host, "port": box.port, "username": "finops", "password": "wrong-pw"},
        )
        with pytest.raises(ChannelFailure) as failed:
            send(bad, "m", MESSAGE)
    assert len(box.messages) == 1 and box.logins == ["finops"]
    assert "login refused" in str(failed.value) and "wrong-pw" not in str(failed.value)


def test_an_unknown_channel_is_a_clear_failure():
    with pytest.raises(ChannelFailure, match="'gone' is not configured"):
        send(config(), "gone", MESSAGE)


def test_email_over_starttls_with_login(tmp_path, monkeypatch):
    """A server that requires STARTTLS before AUTH: the client upgrades, checks the certificate (trusted
    here through SSL_CERT_FILE, as a private CA would be), then logs in."""
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with smtp_server(credentials=("finops", "pw"), tls=(cert, key)) as box:
        settings = {"host": box.host, "port": box.port, "username": "finops", "password": "pw"}
        send(
            config(
                channels={"m": {"type": "email", "to": ["a@example.com"]}},
                smtp={**settings, "starttls": True},
            ),
            "m",
            MESSAGE,
        )
        with pytest.raises(ChannelFailure):  # without STARTTLS the server refuses
            send(
                config(channels={"m": {"type": "email", "to": ["a@example.com"]}}, smtp=settings),
                "m",
                MESSAGE,
            )
    assert len(box.messages) == 1 and box.logins == ["finops"]
