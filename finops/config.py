"""finops configuration: one YAML file, overridden by FINOPS_* environment variables.

Environment overrides: ``FINOPS_DATABASE_URL`` sets ``database_url``; a double underscore walks into
nested sections (``FINOPS_TAGGING__UNTAGGED=reject``, ``FINOPS_PROXY__MAX_BODY_BYTES=1048576``). Values
are read as YAML scalars or flow collections, so ``FINOPS_BACKENDS='[{name: a, url: ..., models: [m]}]'``
also works.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_DATABASE_URL = "sqlite:///finops.db"
# Keys whose values stay strings even when YAML would read them as something else.
_STRING_KEYS = {"database_url", "secret_key", "url", "broker_url", "webhook_url", "password", "redis_url"}
ENV_PREFIX = "FINOPS_"


# What a team or feature tag may hold (finops.proxy.tags checks calls against it): printable ASCII
# without quotes or backslashes, as values land in metrics labels and CSV cells, and no leading = + - @,
# which starts a formula in finance's spreadsheets.
TAG_VALUE = re.compile(r"^(?![=+@-])[A-Za-z0-9 _.:/@+=,()\[\]#-]{1,128}$")
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


class ConfigError(ValueError):
    """A configuration that cannot be used, with a message that says which key and why."""


def _utc(value: Any) -> Any:
    """A date is its midnight UTC; a naive time is UTC."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackendRateConfig(_Strict):
    """A change of a backend's GPUs or price, in force from ``effective_from`` (UTC)."""

    effective_from: datetime
    gpus: Decimal = Field(gt=0)
    usd_per_gpu_hour: Decimal = Field(ge=0)

    @field_validator("effective_from", mode="before")
    @classmethod
    def _as_utc(cls, value: Any) -> Any:
        return _utc(value)


class BackendConfig(_Strict):
    name: str = Field(min_length=1, max_length=128)
    url: str
    models: list[str] = Field(min_length=1)
    gpus: Decimal = Field(default=Decimal(1), gt=0)
    usd_per_gpu_hour: Decimal = Field(default=Decimal(0), ge=0)
    # Sent upstream as ``Authorization: Bearer`` (vLLM's --api-key); never logged.
    api_key: str | None = None
    # Later changes of gpus / usd_per_gpu_hour; the values above hold until the first of them.
    rates: list[BackendRateConfig] = []

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"backend url must start with http:// or https://, got {url!r}")
        return url.rstrip("/")

    @property
    def api_base(self) -> str:
        """The OpenAI API root of this backend: vLLM serves it under /v1."""
        return self.url if self.url.endswith("/v1") else self.url + "/v1"


class PriceConfig(_Strict):
    """USD per million tokens, in force from ``effective_from`` (the start of time when absent)."""

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)
    # Prompt tokens served from the prefix cache; priced as input when not given.
    cached_input_per_mtok: Decimal | None = Field(default=None, ge=0)
    effective_from: datetime | None = None

    @field_validator("effective_from", mode="before")
    @classmethod
    def _as_utc(cls, value: Any) -> Any:
        return _utc(value)


class TaggingConfig(_Strict):
    # reject: an untagged call gets a 400 naming the missing tag.
    # unallocated: it is served and recorded under the tag value "unallocated".
    untagged: Literal["reject", "unallocated"] = "unallocated"
    required: list[Literal["team", "feature"]] = ["team", "feature"]


class AuthConfig(_Strict):
    # When true every proxied call needs a valid ``Authorization: Bearer`` key made by `finops keys`.
    require_api_key: bool = False


class ProxyConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # No byte from the backend for this long: 504. Applies to the first byte and between chunks.
    read_timeout_s: float = Field(default=600.0, gt=0)
    # A backend that refused a connection is skipped for this long.
    backend_cooldown_s: float = Field(default=5.0, ge=0)
    max_connections_per_backend: int = Field(default=1024, gt=0)
    # Seconds between reloads of API keys and prices from the database.
    refresh_interval_s: float = Field(default=10.0, gt=0)


class ApiConfig(_Strict):
    """The management API (``finops api``), a process of its own beside the proxy."""

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)


class LedgerConfig(_Strict):
    batch_size: int = Field(default=2000, gt=0)
    flush_interval_ms: int = Field(default=100, gt=0)
    spool_dir: str = "finops-spool"
    # Seconds between attempts to replay spooled batches while the database is away.
    replay_interval_s: float = Field(default=2.0, gt=0)


class AttributionConfig(_Strict):
    window_s: int = Field(default=60, gt=0)
    # A window is attributed this long after it ends, so calls that end just after it are in.
    # (A call that lands later still gets its windows recomputed.)
    close_delay_s: int = Field(default=30, ge=0)
    # Calls longer than this are not seen by windows more than this after they started (it bounds the
    # ledger scan of each window's recompute).
    longest_call_s: float = Field(default=3600.0, gt=0)


# Postgres's lock_timeout is a 32-bit count of milliseconds.
MAX_LOCK_TIMEOUT_S = 2_147_483


class JobsConfig(_Strict):
    # Seconds between scheduled runs (Celery beat).
    attribution_every_s: float = Field(default=60.0, gt=0)
    rollups_every_s: float = Field(default=60.0, gt=0)
    traces_every_s: float = Field(default=60.0, gt=0)
    # Hard-limit counters in Redis reconciled from the ledger (finops.limits).
    limits_every_s: float = Field(default=60.0, gt=0)
    # Budget evaluation; each run also re-sends alert deliveries whose task was lost.
    # 30, not 60: a call that lands just after a run waits a whole period, so the worst alert latency is
    # one period plus a second or two; the promise is under 60 s (benchmarks/bench_alert_latency.py).
    budgets_every_s: float = Field(default=30.0, gt=0)
    # How long a run waits for another run of the same job (or of another ledger job) to finish before it
    # gives up and is skipped (Postgres; SQLite's own busy timeout applies there). Scheduled runs wait
    # briefly: the run in progress is doing the work, the next one picks up what is left, and a stuck
    # run must not hold the worker's slots (alert deliveries and budgets wait behind them). A run asked
    # for by hand (finops jobs run, finops export's refresh) waits longer.
    scheduled_lock_timeout_s: float = Field(default=5.0, gt=0, le=MAX_LOCK_TIMEOUT_S)
    lock_timeout_s: float = Field(default=600.0, gt=0, le=MAX_LOCK_TIMEOUT_S)


class TracesConfig(_Strict):
    # A trace with no new call for this long is closed and its amplification computed. A call that
    # arrives later reopens it, and it is recomputed when quiet again.
    quiet_s: float = Field(default=300.0, ge=0)


class ExportsConfig(_Strict):
    """Finance exports (``finops export`` and the monthly job): where files go, and the FOCUS names."""

    # The monthly job writes last month's files here (created if missing).
    folder: str = "finops-exports"
    # Which files the monthly job writes: FOCUS on each basis, and the raw ledger.
    monthly: list[Literal["focus-tokens", "focus-gpu", "ledger"]] = ["focus-tokens", "focus-gpu", "ledger"]
    # How often the job looks for a finished month without its files, and how long after a month ends
    # it waits (late calls, the last windows' attribution) before writing them.
    monthly_every_s: float = Field(default=3600.0, gt=0)
    monthly_after_s: float = Field(default=3600.0, ge=0)
    billing_account_id: str = Field(default="finops", min_length=1, max_length=128)
    billing_account_name: str = Field(default="Self-hosted LLM inference", min_length=1, max_length=256)
    provider_name: str = Field(default="Internal platform team", min_length=1, max_length=256)
    publisher_name: str = Field(default="Internal platform team", min_length=1, max_length=256)
    invoice_issuer_name: str = Field(default="Internal platform team", min_length=1, max_length=256)
    service_name: str = Field(default="LLM Inference", min_length=1, max_length=256)


class WorkerConfig(_Strict):
    # The embedded broker's folder (used when broker_url is empty).
    broker_dir: str = "finops-broker"
    concurrency: int = Field(default=2, gt=0)
    beat_schedule_file: str = "finops-beat-schedule"


class ChannelConfig(_Strict):
    """Where alerts go. ``console`` prints them to the worker's log (the demo's channel)."""

    type: Literal["slack", "email", "console"]
    # slack: an incoming-webhook URL (a secret: never logged or returned).
    webhook_url: str | None = None
    # email: recipients; the sender and server are the ``smtp`` section.
    to: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        if self.type == "slack" and not (self.webhook_url or "").startswith(("http://", "https://")):
            raise ValueError("a slack channel needs webhook_url, an http(s) URL")
        if self.type == "email" and not self.to:
            raise ValueError("an email channel needs at least one address in 'to'")
        return self


class SmtpConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(default="finops@localhost", alias="from")
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class BudgetScopeConfig(_Strict):
    """Which calls a budget counts; an empty scope is global."""

    team: str | None = None
    feature: str | None = None
    model: str | None = None

    @field_validator("team", "feature")
    @classmethod
    def _a_tag_value(cls, value: str | None) -> str | None:
        # A value no call can be tagged with would make a budget that never counts anything.
        if value is not None and not TAG_VALUE.match(value):
            raise ValueError(f"{value!r} is not a possible tag value (1-128 printable characters, see Tags)")
        return value

    @field_validator("model")
    @classmethod
    def _a_model_name(cls, value: str | None) -> str | None:
        if value is not None and not _PRINTABLE.match(value):
            raise ValueError("a model name is 1-256 characters without control characters")
        return value


class BudgetConfig(_Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    scope: BudgetScopeConfig = BudgetScopeConfig()
    # At most a billion USD a month: nano-USD amounts must fit a 64-bit integer column.
    monthly_usd: Decimal = Field(gt=0, le=Decimal(1_000_000_000))
    basis: Literal["tokens", "gpu"] = "tokens"
    thresholds: list[Decimal] = [Decimal("0.5"), Decimal("0.8"), Decimal("1.0")]
    forecast: bool = True
    channels: list[str] = []
    hard_limit: bool = False

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, values: list[Decimal]) -> list[Decimal]:
        for value in values:
            if not Decimal(0) < value <= Decimal(10):
                raise ValueError(f"thresholds must lie in (0, 10], got {value}")
        return sorted(set(values))


class LimitsConfig(_Strict):
    """Hard budget limits at the proxy (budgets with ``hard_limit: true``)."""

    # Shared real-time spend counters for all proxy replicas. Empty: an in-process counter (one proxy).
    redis_url: str | None = None
    # What the proxy does while Redis is unreachable: keep serving (and say so) or refuse with 503.
    on_redis_down: Literal["serve", "refuse"] = "serve"
    # How often each proxy sends its adds to Redis and reads the other replicas' (one round trip).
    sync_interval_s: float = Field(default=0.05, gt=0)
    # Redis connect and read timeout of the counters (the proxy calls Redis only off the event loop).
    redis_timeout_s: float = Field(default=0.25, gt=0)
    # In-process counters only (no Redis): how often the proxy itself reconciles them from the ledger.
    reconcile_every_s: float = Field(default=60.0, gt=0)


class LatencyAlertScopeConfig(_Strict):
    """Which calls a latency rule watches; empty watches all."""

    team: str | None = None
    feature: str | None = None
    model: str | None = None
    backend: str | None = None


class LatencyAlertConfig(_Strict):
    """Alert when a latency percentile over the last ``window_s`` exceeds ``factor`` x its baseline.

    The baseline is the same percentile over the same hours of the week in the trailing
    ``baseline_weeks`` weeks when they hold ``min_baseline_calls`` calls, else over the trailing day.
    One alert when an incident starts, one when it resolves (back under the threshold), per group.
    """

    name: str = Field(min_length=1, max_length=64)
    metric: Literal["ttft", "itl", "total"] = "ttft"
    percentile: float = Field(default=90, gt=0, lt=100)
    # One incident per group: per model, feature or backend, or one for everything the scope keeps.
    by: Literal["model", "feature", "backend", "all"] = "model"
    scope: LatencyAlertScopeConfig = LatencyAlertScopeConfig()
    window_s: float = Field(default=900.0, gt=0, le=86400)
    factor: float = Field(default=2.0, gt=1)
    # Fewer calls than this in the window: too few to judge, the rule waits.
    min_calls: int = Field(default=20, ge=1)
    baseline_weeks: int = Field(default=1, ge=1, le=12)
    min_baseline_calls: int = Field(default=100, ge=1)
    channels: list[str] = []


class ObservabilityConfig(_Strict):
    latency_rollups_every_s: float = Field(default=60.0, gt=0)
    latency_alerts_every_s: float = Field(default=60.0, gt=0)
    # How often each backend's vLLM /metrics is scraped, and how long one scrape may take.
    scrape_every_s: float = Field(default=15.0, gt=0)
    scrape_timeout_s: float = Field(default=5.0, gt=0)
    # Prompt token limits per model ("*": every other model); a call above it is a context_over_limit event.
    context_limit_tokens: dict[str, int] = {}
    # The capacity verdict reads this much of the latest scrapes.
    verdict_window_s: float = Field(default=600.0, gt=0)

    @field_validator("context_limit_tokens")
    @classmethod
    def _positive_limits(cls, limits: dict[str, int]) -> dict[str, int]:
        bad = sorted(model for model, limit in limits.items() if limit < 1)
        if bad:
            raise ValueError(f"context_limit_tokens must be >= 1; not for: {', '.join(bad)}")
        return limits


PASSWORD_HASH_PREFIX = "scrypt$"


class DashboardUserConfig(_Strict):
    """A person who may open the dashboards. Make the hash with `finops dashboard-user hash`."""

    name: str = Field(min_length=1, max_length=64)
    # admin and finance see everything; a team member sees only its team's numbers.
    role: Literal["admin", "finance", "team"]
    team: str | None = Field(default=None, min_length=1, max_length=128)
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _scrypt_hash(cls, value: str) -> str:
        if not value.startswith(PASSWORD_HASH_PREFIX) or value.count("$") != 5:
            raise ValueError(
                "password_hash must be an scrypt hash made by `finops dashboard-user hash` "
                "(scrypt$n$r$p$salt$hash), never a plain password"
            )
        return value

    @model_validator(mode="after")
    def _team_for_team_role(self) -> DashboardUserConfig:
        if self.role == "team" and not self.team:
            raise ValueError(f"dashboard user {self.name!r} has role team but no team")
        if self.role != "team" and self.team:
            raise ValueError(f"dashboard user {self.name!r}: only role team takes a team")
        return self


class DashboardConfig(_Strict):
    """The Dash app (``finops dashboard``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=0, le=65535)
    # The address people open, used in alert links; default http://host:port.
    public_url: str | None = None
    users: list[DashboardUserConfig] = []
    # A login lasts this long.
    session_hours: float = Field(default=12.0, gt=0)

    @field_validator("public_url")
    @classmethod
    def _http_public_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"public_url must start with http:// or https://, got {url!r}")
        return None if url is None else url.rstrip("/")

    @model_validator(mode="after")
    def _unique_user_names(self) -> DashboardConfig:
        names = [u.name for u in self.users]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dashboard user names must be unique; repeated: {', '.join(dupes)}")
        return self

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class FinopsConfig(_Strict):
    database_url: str = DEFAULT_DATABASE_URL
    # Keys API keys' hashes. Empty: a random secret is generated once and kept in the database.
    secret_key: str | None = None
    backends: list[BackendConfig] = []
    prices: dict[str, PriceConfig | list[PriceConfig]] = {}
    tagging: TaggingConfig = TaggingConfig()
    auth: AuthConfig = AuthConfig()
    proxy: ProxyConfig = ProxyConfig()
    api: ApiConfig = ApiConfig()
    ledger: LedgerConfig = LedgerConfig()
    attribution: AttributionConfig = AttributionConfig()
    jobs: JobsConfig = JobsConfig()
    traces: TracesConfig = TracesConfig()
    worker: WorkerConfig = WorkerConfig()
    exports: ExportsConfig = ExportsConfig()
    # Celery broker. Empty: the embedded default, a broker in local files that needs no server
    # (one machine); production: redis://host:6379/0.
    broker_url: str | None = None
    timezone: str = "UTC"
    channels: dict[str, ChannelConfig] = {}
    smtp: SmtpConfig = SmtpConfig()
    budgets: list[BudgetConfig] = []
    limits: LimitsConfig = LimitsConfig()
    dashboard: DashboardConfig = DashboardConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    latency_alerts: list[LatencyAlertConfig] = []

    @model_validator(mode="after")
    def _unique_backend_names(self) -> FinopsConfig:
        names = [b.name for b in self.backends]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _budgets_consistent(self) -> FinopsConfig:
        names = [b.name for b in self.budgets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"budget names must be unique; repeated: {', '.join(dupes)}")
        for budget in self.budgets:
            unknown = [c for c in budget.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"budget {budget.name!r} names unknown channels: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _latency_alerts_consistent(self) -> FinopsConfig:
        names = [rule.name for rule in self.latency_alerts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"latency alert names must be unique; repeated: {', '.join(dupes)}")
        for rule in self.latency_alerts:
            unknown = [c for c in rule.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"latency alert {rule.name!r} names unknown channels: {', '.join(unknown)}")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    def price_entries(self) -> list[tuple[str, PriceConfig]]:
        """Every (model, price) pair of the price book, a single price or a dated list alike."""
        pairs: list[tuple[str, PriceConfig]] = []
        for model, prices in self.prices.items():
            for price in prices if isinstance(prices, list) else [prices]:
                pairs.append((model, price))
        return pairs

    def models(self) -> list[str]:
        """The union of the backends' models, in the order first seen."""
        seen: dict[str, None] = {}
        for backend in self.backends:
            for model in backend.models:
                seen.setdefault(model, None)
        return list(seen)


def _parse_env_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return ``data`` with every ``FINOPS_*`` variable laid over it (the file is not changed)."""
    merged: dict[str, Any] = dict(data)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        # Only keys of the config: FINOPS_CONFIG, FINOPS_LOG_LEVEL and the like are not overrides.
        if not path or path[0] not in FinopsConfig.model_fields:
            continue
        node = merged
        for key in path[:-1]:
            child = node.get(key)
            child = dict(child) if isinstance(child, dict) else {}
            node[key] = child
            node = child
        # A URL or a secret must stay a string even when YAML would read it as something else.
        node[path[-1]] = raw if path[-1] in _STRING_KEYS else _parse_env_value(raw)
    return merged


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> FinopsConfig:
    """Read ``path`` (or ``$FINOPS_CONFIG``; no file at all means defaults) and apply env overrides."""
    environ = os.environ if environ is None else environ
    path = path if path is not None else environ.get("FINOPS_CONFIG")
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = loaded
    data = apply_env_overrides(data, environ)
    try:
        return FinopsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from exc
