"""Which calls a budget counts (pure)."""

from __future__ import annotations

from typing import Protocol


class Scoped(Protocol):
    @property
    def team(self) -> str | None: ...
    @property
    def feature(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...


def matches(scope: Scoped, team: str, feature: str, model: str) -> bool:
    """A null tag in the scope matches any value."""
    return (
        (scope.team is None or scope.team == team)
        and (scope.feature is None or scope.feature == feature)
        and (scope.model is None or scope.model == model)
    )


def describe(scope: Scoped) -> str:
    parts = [
        f"{k}={v}" for k, v in (("team", scope.team), ("feature", scope.feature), ("model", scope.model)) if v
    ]
    return ", ".join(parts) or "global"
