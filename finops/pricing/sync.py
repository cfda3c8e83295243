"""Loads the config's prices into the price book table, and the table into a PriceBook."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.pricing.book import EPOCH, Price, PriceBook
from finops.pricing.models import PriceBookRow


def config_price_entries(config: FinopsConfig) -> list[tuple[str, datetime, Price]]:
    entries = []
    for model, price in config.price_entries():
        cached = (
            price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
        )
        entries.append(
            (model, price.effective_from or EPOCH, Price(price.input_per_mtok, cached, price.output_per_mtok))
        )
    return entries


def price_book_from_config(config: FinopsConfig) -> PriceBook:
    return PriceBook(config_price_entries(config))


def sync_prices(session: Session, config: FinopsConfig) -> int:
    """Upsert every (model, effective_from) of the config; returns how many rows changed or were added.

    Prices that are in the table but not in the config stay: a price that was in force is history that
    recorded costs depend on.
    """
    changed = 0
    for model, start, price in config_price_entries(config):
        row = session.scalars(
            select(PriceBookRow).where(PriceBookRow.model == model, PriceBookRow.effective_from == start)
        ).first()
        if row is None:
            session.add(
                PriceBookRow(
                    model=model,
                    effective_from=start,
                    input_usd_per_mtok=price.input_usd_per_mtok,
                    cached_input_usd_per_mtok=price.cached_input_usd_per_mtok,
                    output_usd_per_mtok=price.output_usd_per_mtok,
                )
            )
            changed += 1
            continue
        current = Price(row.input_usd_per_mtok, row.cached_input_usd_per_mtok, row.output_usd_per_mtok)
        if current != price:
            row.input_usd_per_mtok = price.input_usd_per_mtok
            row.cached_input_usd_per_mtok = price.cached_input_usd_per_mtok
            row.output_usd_per_mtok = price.output_usd_per_mtok
            changed += 1
    session.flush()
    return changed


def load_price_book(session: Session) -> PriceBook:
    rows = session.scalars(select(PriceBookRow)).all()
    return PriceBook(
        (
            row.model,
            row.effective_from,
            Price(row.input_usd_per_mtok, row.cached_input_usd_per_mtok, row.output_usd_per_mtok),
        )
        for row in rows
    )
