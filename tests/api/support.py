"""A management API over a real, migrated Postgres holding real ledgers, rollups and traces.

The ledgers are filled through the ledger store and the real jobs (attribution, rollups, traces), so
the API reads exactly what production would; the expected numbers are summed from the ledgers' own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from finops.api.app import PREFIX, create_app
from finops.api.tokens import create_token
from finops.config import (
    BudgetConfig,
    ChannelConfig,
    FinopsConfig,
    SmtpConfig,
    TracesConfig,
)
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.keys.service import create_key
from finops.ledger.record import UsageRecord
from finops.ledger.store import insert_records
from tests.support.configs import two_backend_config
from tests.support.records import make_record

# Secrets the config holds: none may ever show in an answer or a log line.
# Loopback port 9 (discard): nothing listens, so a delivery to it fails, as a broken webhook would.
WEBHOOK_URL = "http://127.0.0.1:9/services/T000/B000/webhook-secret-3f9a"
SMTP_PASSWORD = "smtp-password-7c1e"


def api_config(db_url: str) -> FinopsConfig:
    return two_backend_config(
        db_url,
        traces=TracesConfig(quiet_s=0),
        channels={
            "ops-slack": ChannelConfig(type="slack", webhook_url=WEBHOOK_URL),
            "finance-mail": ChannelConfig(type="email", to=["finance@example.invalid"]),
            "log": ChannelConfig(type="console"),
        },
        budgets=[BudgetConfig(name="everything", monthly_usd="1000", channels=["log"])],
        smtp=SmtpConfig(username="finops", password=SMTP_PASSWORD),
    )


def ledger_calls(base: datetime) -> list[UsageRecord]:
    """Two teams' calls: a three-call RAG trace and single calls for search, a two-call trace for ads."""
    made = []

    def add(at_s: float, **overrides: object) -> None:
        started = base + timedelta(seconds=at_s)
        made.append(
            make_record(
                started_at=started,
                ended_at=started + timedelta(seconds=2),
                body_sha256=f"{len(made):064x}",
                **overrides,
            )
        )

    add(
        0,
        trace_id="search-rag-1",
        team="search",
        feature="rag",
        stage="retrieval",
        endpoint="embeddings",
        prompt_tokens=40,
        completion_tokens=0,
        prompt_cost_nusd=400,
        completion_cost_nusd=0,
        cost_nusd=400,
    )
    add(
        3,
        trace_id="search-rag-1",
        team="search",
        feature="rag",
        stage="generation",
        prompt_tokens=900,
        completion_tokens=120,
        prompt_cost_nusd=90_000,
        completion_cost_nusd=24_000,
        cost_nusd=114_000,
    )
    add(
        6,
        trace_id="search-rag-1",
        team="search",
        feature="rag",
        stage="safety",
        backend="gpu-b",
        model="qwen-1b",
        requested_model="qwen-1b",
        prompt_tokens=150,
        completion_tokens=5,
        prompt_cost_nusd=1_500,
        completion_cost_nusd=1_000,
        cost_nusd=2_500,
    )
    for i in range(4):
        add(
            30 + 20 * i,
            trace_id=f"search-single-{i}",
            team="search",
            feature="autocomplete",
            prompt_tokens=100 + i,
            completion_tokens=20,
            prompt_cost_nusd=10_000 + i,
            completion_cost_nusd=4_000,
            cost_nusd=14_000 + i,
        )
    add(
        10,
        trace_id="ads-agent-1",
        team="ads",
        feature="agent",
        stage="tool",
        backend="gpu-b",
        model="qwen-1b",
        requested_model="qwen-1b",
        prompt_tokens=500,
        completion_tokens=50,
        prompt_cost_nusd=5_000_000,
        completion_cost_nusd=1_000_000,
        cost_nusd=6_000_000,
    )
    add(
        14,
        trace_id="ads-agent-1",
        team="ads",
        feature="agent",
        stage="generation",
        prompt_tokens=700,
        completion_tokens=300,
        prompt_cost_nusd=7_000_000,
        completion_cost_nusd=6_000_000,
        cost_nusd=13_000_000,
    )
    return made


@dataclass
class Api:
    client: TestClient
    engine: Engine
    config: FinopsConfig
    calls: list[UsageRecord]
    start: datetime
    end: datetime
    tokens: dict[str, str] = field(default_factory=dict)
    proxy_key: str = ""

    def url(self, path: str) -> str:
        return PREFIX + path

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str, **params: object) -> object:
        return self.client.get(self.url(path), headers=self.auth(who), params=params)

    @property
    def period(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def seeded_api(db_url: str) -> Api:
    config = api_config(db_url)
    engine = make_engine(db_url)
    # Twenty minutes ago, so the jobs' "up to now" covers every call in a few dozen windows.
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    calls = ledger_calls(base)
    insert_records(engine, calls)
    for job in ("attribution", "rollups", "traces"):
        run_job(engine, config, job)
    api = Api(
        client=TestClient(create_app(config, engine), raise_server_exceptions=False),
        engine=engine,
        config=config,
        calls=calls,
        start=base.replace(minute=0) - timedelta(hours=1),
        end=base + timedelta(hours=2),
    )
    with unit_of_work(engine) as session:
        for who, role, team in (
            ("admin", "admin", None),
            ("finance", "finance", None),
            ("search", "team", "search"),
            ("ads", "team", "ads"),
        ):
            api.tokens[who] = create_token(session, config, role, team, name=f"test {who}").token
        api.proxy_key = create_key(session, config, "search", "rag", "proxy key").key
    return api
