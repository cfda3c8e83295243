"""Imports every ORM model so that ``Base.metadata`` holds the whole schema (for Alembic)."""

from finops.alerts.models import AlertDeliveryRow, BudgetAlertRow
from finops.api.models import ManagementTokenRow
from finops.attribution.models import GpuLedgerRow
from finops.budgets.models import BudgetRow
from finops.dashboard_users import DashboardUserRow
from finops.db import Base
from finops.jobs.models import JobStateRow
from finops.keys.models import ApiKeyRow, SettingRow
from finops.ledger.models import TokenLedgerRow
from finops.observability.models import (
    BackendMetricsRow,
    CallEventRow,
    LatencyIncidentRow,
    LatencySketchRow,
)
from finops.pricing.models import PriceBookRow
from finops.rollups.models import RollupDirtyHourRow, UsageRollupRow
from finops.traces.models import TraceCostRow, TracePendingRow, TraceRollupRow

__all__ = [
    "AlertDeliveryRow",
    "ApiKeyRow",
    "BackendMetricsRow",
    "Base",
    "BudgetAlertRow",
    "BudgetRow",
    "CallEventRow",
    "DashboardUserRow",
    "GpuLedgerRow",
    "JobStateRow",
    "LatencyIncidentRow",
    "LatencySketchRow",
    "ManagementTokenRow",
    "PriceBookRow",
    "RollupDirtyHourRow",
    "SettingRow",
    "TokenLedgerRow",
    "TraceCostRow",
    "TracePendingRow",
    "TraceRollupRow",
    "UsageRollupRow",
]
