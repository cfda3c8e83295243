"""What a budget alert says, for every channel (pure: facts in, Message out)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from finops.alerts.message import Message
from finops.budgets.evaluate import percent

NUSD_PER_USD = 10**9


@dataclass(frozen=True)
class Driver:
    name: str
    spend_nusd: int


@dataclass(frozen=True)
class Amplification:
    group: str
    traces: int
    p50: Fraction
    p90: Fraction


@dataclass(frozen=True)
class AlertFacts:
    budget: str
    scope: dict[str, str]
    basis: str
    kind: str  # "threshold" or "forecast"
    threshold: Decimal
    period_start: datetime
    period_end: datetime
    timezone: str
    spend_nusd: int
    amount_nusd: int
    forecast_nusd: int
    # "feature" or "team": what the drivers are.
    driver_kind: str
    drivers: list[Driver]
    amplification: list[Amplification]
    dashboard_url: str


def usd(nusd: int) -> str:
    """Dollars to the cent; small figures (under $10) to a hundredth of a cent, so demos read."""
    value = Decimal(nusd) / NUSD_PER_USD
    quantum = Decimal("0.01") if abs(value) >= 10 else Decimal("0.0001")
    return f"${value.quantize(quantum, rounding=ROUND_HALF_UP):,}"


def share(part_nusd: int, whole_nusd: int) -> str:
    if whole_nusd <= 0:
        return "0%"
    tenths = (Decimal(part_nusd) * 1000 / whole_nusd).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{tenths / 10:.1f}%"


def factor(value: Fraction) -> str:
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.2f}x"


def scope_text(scope: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "global (all spend)"


def period_text(start: datetime, timezone: str) -> str:
    local = start.astimezone(ZoneInfo(timezone))
    return f"{local:%B %Y} ({timezone})"


def dashboard_link(base_url: str, scope: dict[str, str]) -> str:
    query = urlencode(scope)
    return f"{base_url.rstrip('/')}/spend" + (f"?{query}" if query else "")


def headline(f: AlertFacts) -> str:
    pct = percent(f.spend_nusd, f.amount_nusd)
    if f.kind == "forecast":
        return (
            f"Budget {f.budget}: forecast {usd(f.forecast_nusd)} for the period's end, "
            f"above its {usd(f.amount_nusd)} ({pct}% spent so far)"
        )
    return (
        f"Budget {f.budget} passed {(f.threshold * 100).normalize():f}%: "
        f"{usd(f.spend_nusd)} of {usd(f.amount_nusd)} ({pct}%)"
    )


def _lines(f: AlertFacts) -> list[tuple[str, str]]:
    basis = "token cost" if f.basis == "tokens" else "GPU-second cost"
    return [
        ("Budget", f.budget),
        ("Scope", scope_text(f.scope)),
        ("Period", period_text(f.period_start, f.timezone)),
        ("Spend", f"{usd(f.spend_nusd)} ({basis})"),
        ("Amount", usd(f.amount_nusd)),
        ("Percent", f"{percent(f.spend_nusd, f.amount_nusd)}%"),
        ("Forecast for period end", f"{usd(f.forecast_nusd)} ({percent(f.forecast_nusd, f.amount_nusd)}%)"),
    ]


def _driver_lines(f: AlertFacts) -> list[str]:
    return [f"{d.name}: {usd(d.spend_nusd)} ({share(d.spend_nusd, f.spend_nusd)})" for d in f.drivers]


def _amplification_lines(f: AlertFacts) -> list[str]:
    return [
        f"{a.group}: p50 {factor(a.p50)}, p90 {factor(a.p90)} over {a.traces} traces" for a in f.amplification
    ]


def render(f: AlertFacts) -> Message:
    subject = headline(f)
    drivers, amplification = _driver_lines(f), _amplification_lines(f)
    text_lines = [subject, ""]
    text_lines += [f"{label}: {value}" for label, value in _lines(f)]
    text_lines += ["", f"Top {f.driver_kind}s driving the spend:"]
    text_lines += [f"  - {line}" for line in drivers] or ["  (no spend yet)"]
    text_lines += ["", "Top amplification factors (tokens per user query):"]
    text_lines += [f"  - {line}" for line in amplification] or ["  (no closed traces yet)"]
    text_lines += ["", f"Dashboard: {f.dashboard_url}"]

    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _lines(f))
    html_body = (
        f"<html><body><h2>{e(subject)}</h2><table>{rows}</table>"
        f"<h3>Top {e(f.driver_kind)}s driving the spend</h3>"
        + _html_list(drivers, "no spend yet")
        + "<h3>Top amplification factors</h3>"
        + _html_list(amplification, "no closed traces yet")
        + f"<p><a href='{e(f.dashboard_url)}'>Open the dashboard</a></p></body></html>"
    )
    return Message(
        subject, "\n".join(text_lines) + "\n", html_body, _blocks(f, subject, drivers, amplification)
    )


def _html_list(lines: list[str], empty: str) -> str:
    if not lines:
        return f"<p>({html.escape(empty)})</p>"
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _blocks(
    f: AlertFacts, subject: str, drivers: list[str], amplification: list[str]
) -> list[dict[str, Any]]:
    fields = [{"type": "mrkdwn", "text": f"*{_mrkdwn(k)}*\n{_mrkdwn(v)}"} for k, v in _lines(f)]
    return [
        {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
        # Slack allows at most 10 fields per section.
        {"type": "section", "fields": fields[:10]},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*Top {f.driver_kind}s driving the spend*\n"
                + ("\n".join(f"• {_mrkdwn(d)}" for d in drivers) or "(no spend yet)"),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Top amplification factors*\n"
                + ("\n".join(f"• {_mrkdwn(a)}" for a in amplification) or "(no closed traces yet)"),
            },
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the dashboard"},
                    "url": f.dashboard_url,
                }
            ],
        },
    ]
