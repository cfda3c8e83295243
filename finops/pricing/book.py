"""The price book and the cost of a call, in exact integer nano-USD.

A price is USD per million tokens. One token at ``p`` USD/Mtok costs ``p * 1000`` nano-USD, so a price
with at most three decimals costs a whole number of nano-USD per token and needs no rounding at all.
Finer prices are rounded once per part (prompt, completion), half to even, and the call's cost is the
sum of its parts, so part costs always add up to the total.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

NANO_PER_USD = 1_000_000_000
TOKENS_PER_MTOK = 1_000_000
# Nano-USD per token for a price of 1 USD per million tokens.
NUSD_PER_TOKEN_AT_ONE_USD_PER_MTOK = Decimal(NANO_PER_USD) / Decimal(TOKENS_PER_MTOK)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Price:
    input_usd_per_mtok: Decimal
    cached_input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal


@dataclass(frozen=True, slots=True)
class CallCost:
    prompt_cost_nusd: int
    completion_cost_nusd: int
    priced: bool

    @property
    def cost_nusd(self) -> int:
        return self.prompt_cost_nusd + self.completion_cost_nusd


UNPRICED = CallCost(0, 0, priced=False)


def _nusd(tokens: int, usd_per_mtok: Decimal) -> Decimal:
    return tokens * usd_per_mtok * NUSD_PER_TOKEN_AT_ONE_USD_PER_MTOK


def _round(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


@functools.lru_cache(maxsize=1024)
def _whole_nusd_per_token(price: Price) -> tuple[int, int, int] | None:
    """The price in whole nano-USD per token, when it is one (prices with up to three decimals)."""
    rates = tuple(
        rate * NUSD_PER_TOKEN_AT_ONE_USD_PER_MTOK
        for rate in (price.input_usd_per_mtok, price.cached_input_usd_per_mtok, price.output_usd_per_mtok)
    )
    if all(rate == rate.to_integral_value() for rate in rates):
        return int(rates[0]), int(rates[1]), int(rates[2])
    return None


def cost_of_call(
    price: Price, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> CallCost:
    """``cached_tokens`` are part of ``prompt_tokens``, priced at the cached-input rate."""
    cached = max(0, min(cached_tokens, prompt_tokens))
    whole = _whole_nusd_per_token(price)
    if whole is not None:  # integer arithmetic: exact, and several times faster than Decimal
        prompt_nusd = (prompt_tokens - cached) * whole[0] + cached * whole[1]
        return CallCost(prompt_nusd, completion_tokens * whole[2], priced=True)
    prompt = _nusd(prompt_tokens - cached, price.input_usd_per_mtok) + _nusd(
        cached, price.cached_input_usd_per_mtok
    )
    completion = _nusd(completion_tokens, price.output_usd_per_mtok)
    return CallCost(_round(prompt), _round(completion), priced=True)


def nusd_to_usd_string(cost_nusd: int) -> str:
    """Exact decimal USD, e.g. 1234 nano-USD -> "0.000001234"."""
    sign = "-" if cost_nusd < 0 else ""
    whole, frac = divmod(abs(cost_nusd), NANO_PER_USD)
    return f"{sign}{whole}.{frac:09d}"


class PriceBook:
    """Prices per model, each in force from its effective time until the next one of the same model."""

    def __init__(self, entries: Iterable[tuple[str, datetime, Price]] = ()) -> None:
        by_model: dict[str, list[tuple[datetime, Price]]] = {}
        for model, effective_from, price in entries:
            by_model.setdefault(model, []).append((effective_from, price))
        self._starts: dict[str, list[datetime]] = {}
        self._prices: dict[str, list[Price]] = {}
        for model, dated in by_model.items():
            dated.sort(key=lambda pair: pair[0])
            self._starts[model] = [start for start, _ in dated]
            self._prices[model] = [price for _, price in dated]

    def __contains__(self, model: str) -> bool:
        return model in self._prices

    def models(self) -> list[str]:
        return sorted(self._prices)

    def price_at(self, model: str, at: datetime) -> Price | None:
        starts = self._starts.get(model)
        if not starts:
            return None
        index = bisect.bisect_right(starts, at) - 1
        return self._prices[model][index] if index >= 0 else None

    def cost(
        self, model: str, at: datetime, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
    ) -> CallCost:
        price = self.price_at(model, at)
        if price is None:
            return UNPRICED
        return cost_of_call(price, prompt_tokens, completion_tokens, cached_tokens)
