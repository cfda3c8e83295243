"""Which calls of a trace are retries, and why.

A call is a retry when

- it failed (any status outside 2xx, including 499 for a client that went away): its work was
  wasted whatever it was; or
- it repeats earlier work that had already been delivered: its ``retry_of`` names an earlier call
  of the trace, or its body hash equals an earlier call's, and that earlier call, or one it in turn
  repeats, succeeded.

A successful call that repeats only failed attempts is not a retry: it is the attempt that delivered,
and the failed ones before it are the retries. Counting it as well would leave the trace without the
call its baseline comes from.

"Earlier" is the trace order (``started_at_us``, then ``request_id``); a ``retry_of`` naming a later
call, the call itself, or a call outside the trace is ignored.

The reason recorded is the most specific one: "header" (``retry_of``) before "hash" (body hash)
before "failed".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from finops.traces.calls import TraceCall

RetryReason = Literal["header", "hash", "failed"]
HEADER: Final = "header"
HASH: Final = "hash"
FAILED: Final = "failed"


def retry_reasons(ordered: Sequence[TraceCall]) -> list[RetryReason | None]:
    """One entry per call of ``ordered`` (already in trace order): why it is a retry, or None."""
    # Whether the work of a call, or of an attempt it repeats, was delivered (by request id).
    delivered_by_id: dict[str, bool] = {}
    # The same, over every earlier call with a given body hash.
    delivered_by_hash: dict[str, bool] = {}
    reasons: list[RetryReason | None] = []
    for call in ordered:
        if call.request_id in delivered_by_id:
            raise ValueError(f"request id {call.request_id!r} appears twice in one trace")
        target = call.retry_of
        via_header = target is not None and target in delivered_by_id
        header_delivered = target is not None and delivered_by_id.get(target, False)
        body = call.body_sha256
        via_hash = body is not None and body in delivered_by_hash
        hash_delivered = body is not None and delivered_by_hash.get(body, False)
        ok = 200 <= call.status_code < 300
        reason: RetryReason | None
        if not ok:
            reason = HEADER if via_header else HASH if via_hash else FAILED
        elif header_delivered:
            reason = HEADER
        elif hash_delivered:
            reason = HASH
        else:
            reason = None
        reasons.append(reason)
        lineage_delivered = ok or header_delivered or hash_delivered
        delivered_by_id[call.request_id] = lineage_delivered
        if body is not None:
            delivered_by_hash[body] = lineage_delivered or delivered_by_hash.get(body, False)
    return reasons
