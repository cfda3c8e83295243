"""The alerts outbox: a delivery row per (event, channel), sent by a task of its own, exactly once.

- ``enqueue`` stores a pending delivery in the caller's transaction, idempotent on (source, source_id,
  channel). Once that transaction commits, the new rows are handed to the dispatcher (in a worker: a
  Celery task per delivery); a process with no dispatcher (``finops jobs run``, tests) leaves them to
  the sweep of a running worker.
- ``deliver`` claims the row with a conditional update (pending -> sending) in a transaction of its
  own, so of two workers holding the same delivery only one sends; it sends outside any transaction,
  then records delivered, or pending with the error and the time of the next attempt (exponential
  backoff), or failed after MAX_ATTEMPTS.
- ``sweep`` finds pending rows well past their next attempt (their task was lost: the embedded broker
  is at-most-once, a worker died) and sending rows whose claim expired, and dispatches them again.
  A second task for a row is harmless: the claim lets one through.
- A crash after the send and before "delivered" is recorded sends again once the claim expires:
  at-least-once in that one case, as with any channel that has no idempotency key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from finops.alerts.channels import ChannelFailure, send
from finops.alerts.message import Message
from finops.alerts.models import DELIVERED, FAILED, PENDING, SENDING, AlertDeliveryRow
from finops.budgets.sql import insert_ignore
from finops.config import FinopsConfig
from finops.db import unit_of_work

log = logging.getLogger("finops.alerts")

MAX_ATTEMPTS = 10
BACKOFF_MAX_S = 300
# A claim older than this is taken to be a dead worker's (sends time out long before).
CLAIM_LEASE = timedelta(minutes=5)
# A pending row this long past its due time has lost its task.
SWEEP_GRACE = timedelta(seconds=20)
_SESSION_KEY = "finops_new_deliveries"

Dispatcher = Callable[[list[int]], None]
_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """Called by the worker: how to start the delivery of committed rows (a Celery task each)."""
    global _dispatcher
    _dispatcher = dispatcher


def backoff_s(attempts: int) -> int:
    """Wait after the ``attempts``-th failed attempt: 1, 2, 4, ... s, at most BACKOFF_MAX_S."""
    return int(min(BACKOFF_MAX_S, 2 ** max(0, attempts - 1)))


def _dispatch_after_commit(session: Session, ids: list[int]) -> None:
    pending: list[int] | None = session.info.get(_SESSION_KEY)
    if pending is None:
        pending = session.info[_SESSION_KEY] = []

        def after_commit(committed: Session) -> None:
            new = list(committed.info.pop(_SESSION_KEY, []))
            if new and _dispatcher is not None:
                try:
                    _dispatcher(new)
                except Exception:  # the sweep re-dispatches them; the commit stands
                    log.exception("could not dispatch %d alert deliveries; the sweep will", len(new))

        def after_rollback(rolled_back: Session) -> None:
            rolled_back.info.pop(_SESSION_KEY, None)

        event.listen(session, "after_commit", after_commit, once=True)
        event.listen(session, "after_soft_rollback", lambda s, _t: after_rollback(s), once=True)
    pending.extend(ids)


def enqueue(session: Session, *, source: str, source_id: str, channel: str, message: Message) -> bool:
    """Store one pending delivery; False when (source, source_id, channel) was stored already."""
    now = datetime.now(UTC)
    result = session.execute(
        insert_ignore(session, AlertDeliveryRow)
        .values(
            source=source,
            source_id=source_id,
            channel=channel,
            subject=message.subject[:512],
            text=message.text,
            html=message.html,
            slack_blocks=json.dumps(message.slack_blocks),
            status=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        .returning(AlertDeliveryRow.id)
    )
    new_id = result.scalar()
    if new_id is None:
        return False
    _dispatch_after_commit(session, [int(new_id)])
    return True


def message_of(row: AlertDeliveryRow) -> Message:
    return Message(row.subject, row.text, row.html, json.loads(row.slack_blocks))


class DeliveryRetry(Exception):
    """The channel failed and the delivery will be tried again (the task retries with backoff)."""


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    status: str  # delivered, pending (will retry), failed, or skipped (not claimable now)
    attempts: int
    error: str | None = None


def _claim(engine: Engine, delivery_id: int, now: datetime) -> AlertDeliveryRow | None:
    with unit_of_work(engine) as session:
        claimed = session.execute(
            update(AlertDeliveryRow)
            .where(
                AlertDeliveryRow.id == delivery_id,
                or_(
                    AlertDeliveryRow.status == PENDING,
                    (AlertDeliveryRow.status == SENDING) & (AlertDeliveryRow.claimed_at < now - CLAIM_LEASE),
                ),
            )
            .values(status=SENDING, claimed_at=now, attempts=AlertDeliveryRow.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        row = session.get(AlertDeliveryRow, delivery_id)
        if row is not None:
            session.expunge(row)
        return row


RECORD_ATTEMPTS = 5


def _record(engine: Engine, row: AlertDeliveryRow, values: dict[str, Any]) -> None:
    """Write the outcome of a send. Retried here rather than by the task: once the channel has the
    message, a task retry would find the row still claimed and skip it, and the sweep would send it
    again after the lease. Only this claim's row is written: a worker whose lease ran out (and whose row
    another worker took) must not overwrite that worker's outcome."""
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with unit_of_work(engine) as session:
                session.execute(
                    update(AlertDeliveryRow)
                    .where(
                        AlertDeliveryRow.id == row.id,
                        AlertDeliveryRow.status == SENDING,
                        AlertDeliveryRow.claimed_at == row.claimed_at,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
            return
        except OperationalError:
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def deliver(engine: Engine, config: FinopsConfig, delivery_id: int, now: datetime | None = None) -> Outcome:
    """Claim, send and record one delivery (see the module docstring)."""
    row = _claim(engine, delivery_id, now or datetime.now(UTC))
    if row is None:
        return Outcome(delivery_id, "skipped", 0)
    error: str | None = None
    try:
        send(config, row.channel, message_of(row))
    except ChannelFailure as exc:
        error = str(exc)[:1000]
    done = datetime.now(UTC)
    if error is None:
        values: dict[str, Any] = {"status": DELIVERED, "delivered_at": done, "last_error": None}
        status = DELIVERED
    elif row.attempts >= MAX_ATTEMPTS or row.channel not in config.channels:
        # A channel removed from config will not come back by waiting: failed now, redeliverable.
        values, status = {"status": FAILED, "last_error": error}, FAILED
    else:
        due = done + timedelta(seconds=backoff_s(row.attempts))
        values, status = {"status": PENDING, "last_error": error, "next_attempt_at": due}, PENDING
    _record(engine, row, values)
    if status == DELIVERED:
        log.info("alert delivery %d to %s delivered (attempt %d)", delivery_id, row.channel, row.attempts)
    else:
        log.warning(
            "alert delivery %d to %s: attempt %d failed (%s)%s",
            delivery_id,
            row.channel,
            row.attempts,
            error,
            "; giving up" if status == FAILED else "; will retry",
        )
    return Outcome(delivery_id, status, row.attempts, error)


def sweep(session: Session, now: datetime | None = None) -> list[int]:
    """Deliveries whose task was lost, handed to the dispatcher again once this transaction commits."""
    now = now or datetime.now(UTC)
    d = AlertDeliveryRow
    ids = [
        int(i)
        for i in session.scalars(
            select(d.id)
            .where(
                or_(
                    (d.status == PENDING) & (d.next_attempt_at < now - SWEEP_GRACE),
                    (d.status == SENDING) & (d.claimed_at < now - CLAIM_LEASE),
                )
            )
            .order_by(d.id)
            .limit(1000)
        )
    ]
    if ids:
        _dispatch_after_commit(session, ids)
    return ids


def redeliver(session: Session, delivery_id: int, now: datetime | None = None) -> AlertDeliveryRow:
    """Put a failed (or pending) delivery back to pending, due now, with a fresh count of attempts.

    A delivered one is refused: that would send the message twice."""
    row = session.get(AlertDeliveryRow, delivery_id)
    if row is None:
        raise LookupError(f"no alert delivery with id {delivery_id}")
    if row.status == DELIVERED:
        raise ValueError(
            f"delivery {delivery_id} was delivered already (at {row.delivered_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
    if row.status == SENDING:
        raise ValueError(f"delivery {delivery_id} is being sent right now")
    row.status, row.attempts, row.next_attempt_at = PENDING, 0, now or datetime.now(UTC)
    session.flush()
    _dispatch_after_commit(session, [row.id])
    return row
