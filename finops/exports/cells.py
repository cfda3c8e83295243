"""CSV cells for finance exports: exact money, UTC times, and text no spreadsheet will run.

Pure functions, no I/O. Every export (FOCUS and ledger, on every database) writes its cells through
these, so that one value always has one spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from finops.pricing.book import nusd_to_usd_string

# A cell starting with one of these is read as a formula by Excel, LibreOffice or Google Sheets
# (tab and carriage return too: some importers strip them and then see the next character).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows end with a bare newline: the Postgres COPY path cannot write anything else, and every
# spreadsheet and CSV reader accepts it.
LINE_END = "\n"
GPU_SECONDS_PLACES = Decimal("0.000001")

Cell = str | None


def safe_text(value: str | None) -> Cell:
    """Text as a spreadsheet shows it, never as a formula: a leading ``'`` marks it as text (OWASP)."""
    if value is None:
        return None
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def usd(nusd: int) -> str:
    """Exact decimal USD from integer nano-USD: 1234 -> "0.000001234" (no float on the way)."""
    return nusd_to_usd_string(nusd)


def gpu_seconds(value: Decimal | int | float | str) -> str:
    """GPU-seconds with their six stored places, e.g. "12.500000".

    The ledger keeps micro-GPU-seconds exactly; SQLite hands them back through a float, which rounding
    to the sixth place restores (sums stay far below the 2**53 micro-seconds where that would fail)."""
    return format(Decimal(str(value)).quantize(GPU_SECONDS_PLACES), "f")


def utc_second(moment: datetime) -> str:
    """FOCUS date/time: ``YYYY-MM-DDTHH:mm:ssZ`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_micro(moment: datetime) -> str:
    """A ledger time to the microsecond it was recorded with, ISO 8601 UTC, the fraction without its
    trailing zeros (as Postgres prints a timestamp): ``2026-11-30T12:00:00.12Z``, ``...T12:00:00Z``."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def boolean(value: bool) -> str:
    return "true" if value else "false"


def milliseconds(value: float | None) -> Cell:
    """A latency measurement (not money) to the microsecond: the float times 1000, rounded half to
    even (as Postgres' ``round(float8)`` does, so both export paths agree), with three places."""
    if value is None:
        return None
    micro = round(value * 1000)
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1000)
    return f"{sign}{whole}.{frac:03d}"


_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _csv_cell(cell: Cell) -> str:
    """Quoted as Postgres' COPY CSV quotes rows of several columns (so both paths give the same bytes):
    when the value holds a comma, a quote, CR or LF, or is empty (an empty string is not a null)."""
    if cell is None:
        return ""
    if cell == "" or _NEEDS_QUOTES.search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def encode_rows(rows: Iterable[Sequence[Cell]]) -> bytes:
    """CSV bytes (UTF-8, RFC 4180 quoting, ``\\n`` line ends); ``None`` is an empty cell."""
    return "".join(",".join(map(_csv_cell, row)) + LINE_END for row in rows).encode("utf-8")
