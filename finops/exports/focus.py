"""FOCUS 1.2 rows from hourly usage: pure, no I/O (see docs/exports.md for every choice made here).

One hour's usage lines (by team, feature, model and backend, as in ``usage_rollups``) become charge
rows: input tokens and output tokens per team, feature and model; GPU time per team, feature, model and
backend; idle GPU time per backend. ``basis`` decides which rows carry BilledCost: on ``tokens`` the
token rows (their price-book cost) and the GPU rows show 0; on ``gpu`` the GPU and idle rows (their
GPU-second cost) and the token rows show 0. Either way each row's own cost stays in ``x_TokenCost`` or
``x_GpuCost``, so BilledCost over the file is exactly one ledger's total, never both counted at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import orjson

from finops.exports.cells import Cell, gpu_seconds, safe_text, usd, utc_second

Basis = Literal["tokens", "gpu"]
HOUR = timedelta(hours=1)
ZERO = Decimal(0)
# What usage_rollups stores for "no team / feature / model / backend" (idle rows; calls never routed).
NONE = ""

MANDATORY_COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)
# Conditional and recommended columns that apply to this data (docs/exports.md says why each).
CONDITIONAL_COLUMNS: tuple[str, ...] = (
    "ChargeFrequency",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
CUSTOM_COLUMNS: tuple[str, ...] = (
    "x_Basis",
    "x_ChargeKind",
    "x_Team",
    "x_Feature",
    "x_Model",
    "x_Backend",
    "x_PromptTokens",
    "x_CompletionTokens",
    "x_GpuSeconds",
    "x_TokenCost",
    "x_GpuCost",
)
COLUMNS: tuple[str, ...] = MANDATORY_COLUMNS + CONDITIONAL_COLUMNS + CUSTOM_COLUMNS

INPUT_TOKENS = "input-tokens"
OUTPUT_TOKENS = "output-tokens"
GPU_TIME = "gpu-time"
IDLE_GPU_TIME = "idle-gpu-time"
_KIND_ORDER = {INPUT_TOKENS: 0, OUTPUT_TOKENS: 1, GPU_TIME: 2}


@dataclass(frozen=True)
class Names:
    """Who bills whom: from the config's ``exports`` section."""

    billing_account_id: str
    billing_account_name: str
    provider_name: str
    publisher_name: str
    invoice_issuer_name: str
    service_name: str


@dataclass(frozen=True)
class UsageLine:
    """One line of ``usage_rollups`` (or the same aggregate read from the ledgers)."""

    team: str
    feature: str
    model: str
    backend: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_cost_nusd: int = 0
    completion_cost_nusd: int = 0
    gpu_seconds: Decimal = ZERO
    gpu_cost_nusd: int = 0
    idle_gpu_seconds: Decimal = ZERO
    idle_cost_nusd: int = 0


@dataclass(frozen=True)
class Charge:
    """One FOCUS row before it becomes cells: the numbers the reconciliation is about."""

    kind: str
    team: str | None
    feature: str | None
    model: str | None
    backend: str | None
    quantity: int | Decimal
    cost_nusd: int


def billing_period(moment: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) that holds ``moment``: [first instant, first instant of the next)."""
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def charges(lines: Iterable[UsageLine]) -> list[Charge]:
    """One hour's charges, in a stable order: by team, feature, model, kind (and backend); idle last."""
    tokens: dict[tuple[str, str, str], list[int]] = {}
    gpu: dict[tuple[str, str, str, str], list[Decimal | int]] = {}
    idle: dict[str, list[Decimal | int]] = {}
    for line in lines:
        if line.prompt_tokens or line.completion_tokens or line.prompt_cost_nusd or line.completion_cost_nusd:
            t = tokens.setdefault((line.team, line.feature, line.model), [0, 0, 0, 0])
            t[0] += line.prompt_tokens
            t[1] += line.completion_tokens
            t[2] += line.prompt_cost_nusd
            t[3] += line.completion_cost_nusd
        if line.gpu_seconds or line.gpu_cost_nusd:
            g = gpu.setdefault((line.team, line.feature, line.model, line.backend), [ZERO, 0])
            g[0] += Decimal(line.gpu_seconds)
            g[1] += line.gpu_cost_nusd
        if line.idle_gpu_seconds or line.idle_cost_nusd:
            i = idle.setdefault(line.backend, [ZERO, 0])
            i[0] += Decimal(line.idle_gpu_seconds)
            i[1] += line.idle_cost_nusd
    made: list[Charge] = [
        Charge(GPU_TIME, team, feature, model, backend, Decimal(seconds), int(cost))
        for (team, feature, model, backend), (seconds, cost) in gpu.items()
    ]
    for (team, feature, model), (prompt, completion, prompt_cost, completion_cost) in tokens.items():
        if prompt or prompt_cost:
            made.append(Charge(INPUT_TOKENS, team, feature, model, None, prompt, prompt_cost))
        if completion or completion_cost:
            made.append(Charge(OUTPUT_TOKENS, team, feature, model, None, completion, completion_cost))
    made.sort(
        key=lambda c: (c.team or "", c.feature or "", c.model or "", _KIND_ORDER[c.kind], c.backend or "")
    )
    for backend in sorted(idle):
        seconds, cost = idle[backend]
        made.append(Charge(IDLE_GPU_TIME, None, None, None, backend, Decimal(seconds), int(cost)))
    return made


def billed_nusd(charge: Charge, basis: Basis) -> int:
    """What a charge bills on a basis: its own cost when its kind is that basis's, else nothing."""
    is_token = charge.kind in (INPUT_TOKENS, OUTPUT_TOKENS)
    return charge.cost_nusd if is_token == (basis == "tokens") else 0


def _description(charge: Charge, basis: Basis) -> str:
    if charge.kind == INPUT_TOKENS:
        text = f"Input (prompt) tokens of model {charge.model}"
    elif charge.kind == OUTPUT_TOKENS:
        text = f"Output (completion) tokens of model {charge.model}"
    elif charge.kind == GPU_TIME:
        text = f"GPU time of model {charge.model} on backend {charge.backend}"
    else:
        text = f"Idle GPU time of backend {charge.backend} (no call in flight)"
    if billed_nusd(charge, basis) == 0 and charge.cost_nusd != 0:
        other = "GPU time" if basis == "gpu" else "tokens"
        text += f"; not billed: this file bills {other} (own cost in x_TokenCost / x_GpuCost)"
    return text


def _nullable(value: str | None) -> str | None:
    return None if value in (None, NONE) else value


def row_cells(charge: Charge, hour: datetime, basis: Basis, names: Names) -> list[Cell]:
    """The cells of one charge, in ``COLUMNS`` order."""
    period_start, period_end = billing_period(hour)
    billed = usd(billed_nusd(charge, basis))
    is_token = charge.kind in (INPUT_TOKENS, OUTPUT_TOKENS)
    team, feature = _nullable(charge.team), _nullable(charge.feature)
    model, backend = _nullable(charge.model), _nullable(charge.backend)
    quantity = str(charge.quantity) if is_token else gpu_seconds(charge.quantity)
    unit = "Tokens" if is_token else "GPU-Seconds"
    if is_token:
        resource, resource_type = model, "Model"
    else:
        resource, resource_type = backend, "GPU Backend"
    tags: str | None = None
    if charge.kind != IDLE_GPU_TIME:
        present = {k: v for k, v in (("team", team), ("feature", feature), ("model", model)) if v is not None}
        tags = orjson.dumps(present, option=orjson.OPT_SORT_KEYS).decode() if present else None
    cells: dict[str, Cell] = {
        "BilledCost": billed,
        "BillingAccountId": safe_text(names.billing_account_id),
        "BillingAccountName": safe_text(names.billing_account_name),
        "BillingCurrency": "USD",
        "BillingPeriodEnd": utc_second(period_end),
        "BillingPeriodStart": utc_second(period_start),
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeDescription": safe_text(_description(charge, basis)),
        "ChargePeriodEnd": utc_second(hour + HOUR),
        "ChargePeriodStart": utc_second(hour),
        # No discounts or commitments: list, contracted, effective and billed cost are the same amount.
        "ContractedCost": billed,
        "EffectiveCost": billed,
        "InvoiceIssuerName": safe_text(names.invoice_issuer_name),
        "ListCost": billed,
        "PricingQuantity": quantity,
        "PricingUnit": unit,
        "ProviderName": safe_text(names.provider_name),
        "PublisherName": safe_text(names.publisher_name),
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": safe_text(names.service_name),
        "ChargeFrequency": "Usage-Based",
        "ConsumedQuantity": quantity,
        "ConsumedUnit": unit,
        "ResourceId": safe_text(resource),
        "ResourceName": safe_text(resource),
        "ResourceType": resource_type if resource is not None else None,
        "ServiceSubcategory": "Generative AI",
        "SubAccountId": safe_text(team),
        "SubAccountName": safe_text(team),
        "Tags": tags,
        "x_Basis": basis,
        "x_ChargeKind": charge.kind,
        "x_Team": safe_text(team),
        "x_Feature": safe_text(feature),
        "x_Model": safe_text(model),
        "x_Backend": safe_text(backend),
        "x_PromptTokens": str(charge.quantity) if charge.kind == INPUT_TOKENS else None,
        "x_CompletionTokens": str(charge.quantity) if charge.kind == OUTPUT_TOKENS else None,
        "x_GpuSeconds": None if is_token else quantity,
        "x_TokenCost": usd(charge.cost_nusd) if is_token else None,
        "x_GpuCost": None if is_token else usd(charge.cost_nusd),
    }
    return [cells[name] for name in COLUMNS]
