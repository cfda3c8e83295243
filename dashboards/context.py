"""What every callback needs: the config, one engine, a read session, and the viewer's filters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from dash import Input
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dashboards.auth import Viewer, viewer
from dashboards.periods import Period, resolve
from finops.config import FinopsConfig
from finops.db import unit_of_work

# The filter bar's inputs, the same on every page.
FILTER_INPUTS = [
    Input("f-period", "value"),
    Input("f-team", "value"),
    Input("f-feature", "value"),
    Input("f-model", "value"),
]


@dataclass(frozen=True)
class Filters:
    viewer: Viewer
    period: Period
    team: str | None
    feature: str | None
    model: str | None

    @property
    def tags(self) -> dict[str, str | None]:
        return {"team": self.team, "feature": self.feature, "model": self.model}


@dataclass
class DashContext:
    config: FinopsConfig
    engine: Engine
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @contextmanager
    def session(self) -> Iterator[Session]:
        # Read-only use; unit_of_work's commit has nothing to write.
        with unit_of_work(self.engine) as session:
            yield session

    def filters(
        self, period: str | None, team: str | None, feature: str | None, model: str | None
    ) -> Filters:
        """The filter bar's values for the current viewer: a team member always gets its own team."""
        who = viewer()
        return Filters(
            viewer=who,
            period=resolve(period, self.clock(), self.config.timezone),
            team=who.scope_team(team or None),
            feature=feature or None,
            model=model or None,
        )

    @property
    def proxy_url(self) -> str:
        return f"http://{self.config.proxy.host}:{self.config.proxy.port}/v1"
