"""Who pays for a call: team, feature, trace and stage, resolved from headers, body and API key.

Precedence: ``X-FinOps-*`` header, then the body's ``metadata`` object, then the API key's defaults.
An API key's team is authoritative: a call made with a team's key cannot be tagged to another team.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finops.config import TAG_VALUE
from finops.proxy.errors import ProxyError, bad_request, forbidden, missing_tag

UNALLOCATED = "unallocated"
# Printable ASCII without quotes or backslashes: values land in metrics labels and CSV cells.
# A leading = + - @ is refused: tag values end up in finance's spreadsheets, where it starts a formula.
_TAG_VALUE = TAG_VALUE
_STAGE_VALUE = re.compile(r"^(?![=+@-])[A-Za-z0-9 _.:/@+=,()\[\]#-]{1,64}$")
# W3C traceparent: version-traceid-parentid-flags.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_ID_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+=-]{1,128}$")
_REQUEST_ID_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+=-]{1,64}$")
# The pattern (and so the length: the ledger's column width) each tag is checked against.
_PATTERN_OF = {
    "team": _TAG_VALUE,
    "feature": _TAG_VALUE,
    "stage": _STAGE_VALUE,
    "trace_id": _ID_VALUE,
    "retry_of": _REQUEST_ID_VALUE,
}


@dataclass(frozen=True, slots=True)
class KeyDefaults:
    key_id: str
    team: str
    feature: str | None


@dataclass(frozen=True, slots=True)
class Tags:
    team: str
    feature: str
    trace_id: str | None
    stage: str | None
    retry_of: str | None


def check_tag_value(name: str, value: Any, pattern: re.Pattern[str] = _TAG_VALUE) -> str:
    if not isinstance(value, str):
        raise bad_request(f"tag '{name}' must be a string", code="invalid_tag", param=name)
    text: str = value.strip()
    if not pattern.match(text):
        raise bad_request(
            f"tag '{name}' must be 1 to {_max_chars(pattern)} printable characters without quotes or "
            "backslashes, not starting with = + - @",
            code="invalid_tag",
            param=name,
        )
    return text


def _max_chars(pattern: re.Pattern[str]) -> int:
    return int(pattern.pattern.rsplit(",", 1)[1].split("}", 1)[0])


def trace_id_from_traceparent(traceparent: str | None) -> str | None:
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)


_HEADER_OF = {
    name: f"x-finops-{name.replace('_', '-')}"
    for name in ("team", "feature", "trace_id", "stage", "retry_of")
}
_ID_TAGS = frozenset({"trace_id", "retry_of"})
# Valid tag values seen so far (trace and request ids are unique per call, so they are not kept).
_checked: dict[tuple[str, str], str] = {}
_CHECKED_MAX = 100_000


def resolve_tags(
    headers: Mapping[str, str],
    metadata: Mapping[str, Any] | None,
    key: KeyDefaults | None,
    *,
    reject_untagged: bool,
    required: tuple[str, ...] = ("team", "feature"),
) -> Tags:
    """``headers`` has lower-case names. Raises ProxyError for a bad, missing or forbidden tag."""
    meta = metadata or {}

    def pick(name: str) -> str | None:
        value: Any = headers.get(_HEADER_OF[name])
        if value is None:
            value = meta.get(name)
        if value is None:
            return None
        if value.__class__ is str:
            # Teams and features repeat call after call: check a value once, not per call.
            checked = _checked.get((name, value))
            if checked is not None:
                return checked
        text = check_tag_value(name, value, _PATTERN_OF[name])
        if name not in _ID_TAGS and len(_checked) < _CHECKED_MAX:
            _checked[(name, value)] = text
        return text

    team = pick("team")
    feature = pick("feature")
    if key is not None:
        if team is not None and team != key.team:
            raise forbidden(
                f"this API key belongs to team '{key.team}'; it cannot tag calls to team '{team}'",
                "team_mismatch",
            )
        team = key.team
        feature = feature or key.feature

    values = {"team": team, "feature": feature}
    for name in required:
        if values[name] is None:
            if reject_untagged:
                raise missing_tag(name)
            values[name] = UNALLOCATED

    trace_id = pick("trace_id") or trace_id_from_traceparent(headers.get("traceparent"))
    return Tags(
        team=values["team"] or UNALLOCATED,
        feature=values["feature"] or UNALLOCATED,
        trace_id=trace_id,
        stage=pick("stage"),
        retry_of=pick("retry_of"),
    )


__all__ = ["UNALLOCATED", "KeyDefaults", "ProxyError", "Tags", "resolve_tags", "trace_id_from_traceparent"]
