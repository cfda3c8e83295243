"""Imports every ORM model so that ``Base.metadata`` holds the whole schema (for Alembic)."""

from finops.db import Base
from finops.keys.models import ApiKeyRow, SettingRow
from finops.ledger.models import TokenLedgerRow
from finops.pricing.models import PriceBookRow

__all__ = ["ApiKeyRow", "Base", "PriceBookRow", "SettingRow", "TokenLedgerRow"]
