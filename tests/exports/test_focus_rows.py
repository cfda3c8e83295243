"""FOCUS rows from hourly usage lines (pure): every cost lands in exactly one BilledCost per basis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finops.exports import focus

NAMES = focus.Names("acct-1", "Acme AI", "Platform", "Platform", "Platform", "LLM Inference")
HOUR = datetime(2026, 11, 30, 23, tzinfo=UTC)
tags = st.sampled_from(["search", "ads", "=evil", "+x"])
nusd = st.integers(min_value=0, max_value=10**15)
tokens = st.integers(min_value=0, max_value=10**9)
seconds = st.decimals(min_value=0, max_value=10**6, places=6)


@st.composite
def usage_lines(draw):
    lines = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        if draw(st.booleans()):
            lines.append(
                focus.UsageLine(
                    "",
                    "",
                    "",
                    draw(st.sampled_from(["gpu-a", "gpu-b"])),
                    idle_gpu_seconds=draw(seconds),
                    idle_cost_nusd=draw(nusd),
                )
            )
        else:
            lines.append(
                focus.UsageLine(
                    draw(tags),
                    draw(tags),
                    draw(st.sampled_from(["llama-8b", "qwen-1b"])),
                    draw(st.sampled_from(["gpu-a", "gpu-b", ""])),
                    draw(tokens),
                    draw(tokens),
                    draw(nusd),
                    draw(nusd),
                    draw(seconds),
                    draw(nusd),
                )
            )
    return lines


def billed(lines, basis):
    rows = [focus.row_cells(c, HOUR, basis, NAMES) for c in focus.charges(lines)]
    index = focus.COLUMNS.index("BilledCost")
    return rows, sum((Decimal(r[index]) for r in rows), Decimal(0))


@given(usage_lines())
def test_billed_cost_is_conserved_on_each_basis(lines):
    _, tokens_total = billed(lines, "tokens")
    _, gpu_total = billed(lines, "gpu")
    assert tokens_total.scaleb(9) == sum(ln.prompt_cost_nusd + ln.completion_cost_nusd for ln in lines)
    assert gpu_total.scaleb(9) == sum(ln.gpu_cost_nusd + ln.idle_cost_nusd for ln in lines)


@given(usage_lines())
def test_one_row_per_team_feature_model_and_kind(lines):
    charges = focus.charges(lines)
    keys = [(c.kind, c.team, c.feature, c.model, c.backend) for c in charges]
    assert len(keys) == len(set(keys))
    for c in charges:
        assert c.quantity or c.cost_nusd
        if c.kind in (focus.INPUT_TOKENS, focus.OUTPUT_TOKENS):
            assert c.backend is None
    quantities = {
        kind: sum((c.quantity for c in charges if c.kind == kind), Decimal(0))
        for kind in (focus.INPUT_TOKENS, focus.OUTPUT_TOKENS, focus.GPU_TIME, focus.IDLE_GPU_TIME)
    }
    assert quantities[focus.INPUT_TOKENS] == sum(ln.prompt_tokens for ln in lines)
    assert quantities[focus.OUTPUT_TOKENS] == sum(ln.completion_tokens for ln in lines)
    assert quantities[focus.GPU_TIME] == sum((ln.gpu_seconds for ln in lines), Decimal(0))
    assert quantities[focus.IDLE_GPU_TIME] == sum((ln.idle_gpu_seconds for ln in lines), Decimal(0))


def test_a_row_spells_every_column():
    line = focus.UsageLine(
        "=team", "chat", "llama-8b", "gpu-a", 1000, 50, 100_000, 10_000, Decimal("1.5"), 833_334
    )
    rows, _ = billed([line], "tokens")
    assert [len(r) for r in rows] == [len(focus.COLUMNS)] * 3
    row = dict(zip(focus.COLUMNS, rows[0], strict=True))
    assert row["BilledCost"] == "0.000100000" and row["x_ChargeKind"] == "input-tokens"
    assert (
        row["BillingPeriodStart"] == "2026-11-01T00:00:00Z"
        and row["BillingPeriodEnd"] == "2026-12-01T00:00:00Z"
    )
    assert (
        row["ChargePeriodStart"] == "2026-11-30T23:00:00Z"
        and row["ChargePeriodEnd"] == "2026-12-01T00:00:00Z"
    )
    assert row["SubAccountId"] == row["x_Team"] == "'=team"
    assert row["Tags"] == '{"feature":"chat","model":"llama-8b","team":"=team"}'
    gpu_row = dict(zip(focus.COLUMNS, rows[2], strict=True))
    assert gpu_row["BilledCost"] == "0.000000000" and gpu_row["x_GpuCost"] == "0.000833334"
    assert gpu_row["PricingQuantity"] == "1.500000" and gpu_row["PricingUnit"] == "GPU-Seconds"
    assert "not billed" in gpu_row["ChargeDescription"]
