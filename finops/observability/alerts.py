"""The latency alert job: each rule's percentile over its window against factor x its baseline.

Per rule and group (model, feature, backend, or all), each run:
- measures the percentile over the last ``window_s`` from the ledger (a small, recent range);
- takes the baseline from the hourly sketches: the same hours of the week in the trailing
  ``baseline_weeks`` weeks when they hold ``min_baseline_calls`` calls, else the trailing day (the 24
  whole hours before the window's hour), which needs ``min_calls``; with neither the group is not judged;
- opens an incident when the percentile is above ``factor`` x baseline and none is open, and resolves
  the open one when it is back at or under the threshold. Both enqueue one message per channel in the
  alerts outbox (source "latency", source_id "incident-<id>:fired" / ":resolved"), so an incident
  alerts once when it starts and once when it ends, however many runs see it.

Runs take the job's row lock (job_state.claim), so two runs at once never open the same incident twice.
A group whose traffic stops keeps its incident open until calls show the latency back under.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from finops.alerts.message import Message
from finops.config import FinopsConfig, LatencyAlertConfig
from finops.jobs import state as job_state
from finops.ledger.models import TokenLedgerRow
from finops.observability.models import NO_BACKEND, LatencyIncidentRow, LatencySketchRow
from finops.observability.sketch import Sketch

JOB = "latency_alerts"
SOURCE = "latency"
HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
ALL = "all"
METRIC_COLUMNS = {"ttft": "ttft_ms", "itl": "itl_ms", "total": "latency_ms"}
METRIC_NAMES = {"ttft": "time to first token", "itl": "inter-token latency", "total": "total latency"}
Action = Literal["fire", "resolve"]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def decide(incident_open: bool, observed_ms: float, threshold_ms: float) -> Action | None:
    """Fire when breached with no incident open; resolve when back at or under with one open."""
    if not incident_open and observed_ms > threshold_ms:
        return "fire"
    if incident_open and observed_ms <= threshold_ms:
        return "resolve"
    return None


@dataclass(frozen=True)
class Baseline:
    kind: str  # hour_of_week | trailing_day
    value_ms: float
    calls: int


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours that overlap [start, end)."""
    hours, hour = [], hour_of(start)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return hours


def baseline_hours(
    rule: LatencyAlertConfig, window_start: datetime, window_end: datetime
) -> dict[datetime, str]:
    """Which stored hours feed which baseline: hour -> hour_of_week | trailing_day."""
    kinds: dict[datetime, str] = {}
    current = hour_of(window_start)
    for hour in hours_between(current - timedelta(days=1), current):
        kinds[hour] = "trailing_day"
    for weeks in range(1, rule.baseline_weeks + 1):
        for hour in hours_between(window_start - weeks * WEEK, window_end - weeks * WEEK):
            kinds[hour] = "hour_of_week"  # an hour in both (a one-week rule's day-old hour): week wins
    return kinds


def _scope_filters(columns: Any, rule: LatencyAlertConfig) -> list[Any]:
    scope = rule.scope
    pairs = (
        (columns.team, scope.team),
        (columns.feature, scope.feature),
        (columns.model, scope.model),
        (columns.backend, scope.backend),
    )
    return [column == value for column, value in pairs if value is not None]


def _group_column(columns: Any, rule: LatencyAlertConfig) -> Any:
    return None if rule.by == ALL else getattr(columns, rule.by)


def window_sketches(
    session: Session, rule: LatencyAlertConfig, start: datetime, end: datetime
) -> dict[str, Sketch]:
    """The rule's metric over [start, end) per group, from the ledger (answered calls only)."""
    ledger = TokenLedgerRow
    value = getattr(ledger, METRIC_COLUMNS[rule.metric])
    group = _group_column(ledger, rule)
    query = select(value, group if group is not None else ledger.id).where(
        ledger.started_at >= start,
        ledger.started_at < end,
        ledger.status_code < 400,
        ledger.client_disconnected.is_(False),
        value.is_not(None),
        *_scope_filters(ledger, rule),
    )
    sketches: dict[str, Sketch] = {}
    for measured, group_value in session.execute(query):
        name = ALL if group is None else (group_value or NO_BACKEND)
        sketch = sketches.get(name)
        if sketch is None:
            sketch = sketches[name] = Sketch()
        sketch.add(max(float(measured), 0.0))
    return sketches


def baselines(
    session: Session, rule: LatencyAlertConfig, start: datetime, end: datetime
) -> dict[str, Baseline]:
    kinds = baseline_hours(rule, start, end)
    s = LatencySketchRow
    group = _group_column(s, rule)
    query = select(s.hour, s.sketch, group if group is not None else s.id).where(
        s.hour.in_(sorted(kinds)), s.metric == rule.metric, *_scope_filters(s, rule)
    )
    merged: dict[tuple[str, str], Sketch] = {}
    for hour, text, group_value in session.execute(query):
        key = (ALL if group is None else str(group_value), kinds[hour])
        sketch = merged.get(key)
        if sketch is None:
            merged[key] = Sketch.from_json(text)
        else:
            sketch.merge(Sketch.from_json(text))
    q = rule.percentile / 100.0
    result: dict[str, Baseline] = {}
    for name in {name for name, _ in merged}:
        for kind, needed in (("hour_of_week", rule.min_baseline_calls), ("trailing_day", rule.min_calls)):
            sketch = merged.get((name, kind))
            value = sketch.quantile(q) if sketch is not None and sketch.count >= needed else None
            if sketch is not None and value is not None:
                result[name] = Baseline(kind, value, sketch.count)
                break
    return result


@dataclass(frozen=True)
class AlertRunResult:
    fired: int
    resolved: int
    judged: int


def run_latency_alerts(session: Session, config: FinopsConfig, now: datetime | None = None) -> AlertRunResult:
    now = now or datetime.now(UTC)
    job_state.claim(session, JOB, now)
    fired = resolved = judged = 0
    for rule in config.latency_alerts:
        f, r, j = _evaluate_rule(session, config, rule, now)
        fired, resolved, judged = fired + f, resolved + r, judged + j
    return AlertRunResult(fired, resolved, judged)


def _evaluate_rule(
    session: Session, config: FinopsConfig, rule: LatencyAlertConfig, now: datetime
) -> tuple[int, int, int]:
    start = now - timedelta(seconds=rule.window_s)
    observed = window_sketches(session, rule, start, now)
    base = baselines(session, rule, start, now)
    i = LatencyIncidentRow
    open_incidents = {
        row.group_value: row
        for row in session.scalars(select(i).where(i.rule == rule.name, i.resolved_at.is_(None)))
    }
    q = rule.percentile / 100.0
    fired = resolved = judged = 0
    for name, sketch in sorted(observed.items()):
        baseline = base.get(name)
        value = sketch.quantile(q)
        if baseline is None or value is None or sketch.count < rule.min_calls or baseline.value_ms <= 0:
            continue
        judged += 1
        threshold = rule.factor * baseline.value_ms
        incident = open_incidents.get(name)
        action = decide(incident is not None, value, threshold)
        if action == "fire":
            incident = LatencyIncidentRow(
                rule=rule.name,
                group_by=rule.by,
                group_value=name,
                metric=rule.metric,
                percentile=rule.percentile,
                factor=rule.factor,
                baseline_kind=baseline.kind,
                baseline_ms=baseline.value_ms,
                threshold_ms=threshold,
                observed_ms=value,
                peak_ms=value,
                started_at=now,
            )
            session.add(incident)
            session.flush()
            _notify(session, rule, incident, "fired", fired_message(rule, incident, sketch.count))
            fired += 1
        elif incident is not None and action == "resolve":
            incident.resolved_at = now
            incident.resolved_observed_ms = value
            _notify(session, rule, incident, "resolved", resolved_message(rule, incident))
            resolved += 1
        elif incident is not None:
            incident.observed_ms = value
            incident.peak_ms = max(incident.peak_ms, value)
    return fired, resolved, judged


def _notify(
    session: Session, rule: LatencyAlertConfig, incident: LatencyIncidentRow, what: str, message: Message
) -> None:
    from finops.alerts.outbox import enqueue

    for channel in rule.channels:
        enqueue(
            session,
            source=SOURCE,
            source_id=f"incident-{incident.id}:{what}",
            channel=channel,
            message=message,
        )


# -- messages -------------------------------------------------------------------------------------
def _what(rule: LatencyAlertConfig, incident: LatencyIncidentRow) -> str:
    scope = "all calls" if rule.by == ALL else f"{rule.by} {incident.group_value or '(none)'}"
    return f"p{rule.percentile:g} {METRIC_NAMES[rule.metric]} of {scope}"


def _lines_message(subject: str, lines: Iterable[str]) -> Message:
    body = list(lines)
    text = "\n".join([subject, "", *body])
    html_body = "<p><b>{}</b></p><ul>{}</ul>".format(
        html.escape(subject), "".join(f"<li>{html.escape(line)}</li>" for line in body)
    )
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{subject}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(f"• {line}" for line in body)}},
    ]
    return Message(subject, text, html_body, blocks)


def fired_message(rule: LatencyAlertConfig, incident: LatencyIncidentRow, calls: int) -> Message:
    ratio = incident.observed_ms / incident.baseline_ms
    subject = (
        f"[finops] latency: {_what(rule, incident)} is {incident.observed_ms:.0f} ms, "
        f"{ratio:.1f}x its baseline of {incident.baseline_ms:.0f} ms"
    )
    baseline = "same hours of the week before" if incident.baseline_kind == "hour_of_week" else "trailing day"
    return _lines_message(
        subject,
        [
            f"rule {rule.name}: alert above {rule.factor:g}x the baseline ({incident.threshold_ms:.0f} ms)",
            f"measured over the last {rule.window_s:g} s: {calls} calls",
            f"baseline: {baseline}",
            f"started at {incident.started_at:%Y-%m-%d %H:%M:%S} UTC",
        ],
    )


def resolved_message(rule: LatencyAlertConfig, incident: LatencyIncidentRow) -> Message:
    assert incident.resolved_at is not None and incident.resolved_observed_ms is not None
    subject = (
        f"[finops] resolved: {_what(rule, incident)} is back to {incident.resolved_observed_ms:.0f} ms "
        f"(threshold {incident.threshold_ms:.0f} ms)"
    )
    lasted = incident.resolved_at - incident.started_at
    return _lines_message(
        subject,
        [
            f"rule {rule.name}: peak {incident.peak_ms:.0f} ms, baseline {incident.baseline_ms:.0f} ms",
            f"lasted {int(lasted.total_seconds())} s, from {incident.started_at:%Y-%m-%d %H:%M:%S} UTC",
        ],
    )
