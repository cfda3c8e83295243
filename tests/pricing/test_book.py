from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finops.pricing.book import Price, PriceBook, cost_of_call, nusd_to_usd_string

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_cost_of_the_issue_example_is_exact():
    # llama-8b at 0.10 USD/Mtok in and 0.20 out: 1000 prompt + 500 completion tokens.
    cost = cost_of_call(Price(Decimal("0.10"), Decimal("0.10"), Decimal("0.20")), 1000, 500)
    assert (cost.prompt_cost_nusd, cost.completion_cost_nusd, cost.cost_nusd) == (100_000, 100_000, 200_000)
    assert nusd_to_usd_string(cost.cost_nusd) == "0.000200000"


def test_cached_tokens_are_priced_at_the_cached_rate():
    price = Price(Decimal("1.00"), Decimal("0.25"), Decimal("2.00"))
    cost = cost_of_call(price, prompt_tokens=100, completion_tokens=0, cached_tokens=40)
    assert cost.prompt_cost_nusd == 60 * 1000 + 40 * 250


def test_fine_prices_round_half_to_even_once_per_part():
    price = Price(Decimal("0.0005"), Decimal("0.0005"), Decimal("0.0015"))  # 0.5 and 1.5 nUSD per token
    cost = cost_of_call(price, prompt_tokens=1, completion_tokens=1)
    assert (cost.prompt_cost_nusd, cost.completion_cost_nusd) == (0, 2)


def test_effective_dates_pick_the_price_in_force_when_the_call_started():
    old = Price(Decimal(1), Decimal(1), Decimal(1))
    new = Price(Decimal(2), Decimal(2), Decimal(2))
    book = PriceBook([("m", T0 + timedelta(days=10), new), ("m", T0, old)])
    assert book.price_at("m", T0 - timedelta(seconds=1)) is None
    assert book.price_at("m", T0) == old
    assert book.price_at("m", T0 + timedelta(days=10) - timedelta(microseconds=1)) == old
    assert book.price_at("m", T0 + timedelta(days=10)) == new
    assert book.cost("unknown", T0, 10, 10).priced is False


def test_usd_strings_are_exact():
    assert nusd_to_usd_string(0) == "0.000000000"
    assert nusd_to_usd_string(1_234_567_890_123) == "1234.567890123"
    assert nusd_to_usd_string(-5) == "-0.000000005"


prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=10_000_000)


@given(prices, prices, prices, tokens, tokens, tokens)
def test_parts_always_add_up_to_the_call_cost(p_in, p_cached, p_out, prompt, completion, cached):
    cost = cost_of_call(Price(p_in, p_cached, p_out), prompt, completion, min(cached, prompt))
    assert cost.cost_nusd == cost.prompt_cost_nusd + cost.completion_cost_nusd
    exact = (prompt - min(cached, prompt)) * p_in * 1000 + min(cached, prompt) * p_cached * 1000
    assert abs(cost.prompt_cost_nusd - exact) <= Decimal("0.5")
    assert abs(cost.completion_cost_nusd - completion * p_out * 1000) <= Decimal("0.5")
