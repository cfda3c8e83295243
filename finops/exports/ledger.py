"""The raw ledger export: one row per call, the token ledger's columns plus its GPU-seconds and cost.

Two ways to make the same bytes: in Python over batches of rows (every database), and on Postgres as
one ``COPY (SELECT ...) TO STDOUT`` whose cells are spelt in SQL exactly as ``cells`` spells them (a
test holds the two to the same bytes). COPY is what makes ten million rows a matter of seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from finops.exports.cells import Cell, boolean, gpu_seconds, milliseconds, safe_text, usd, utc_micro

Kind = Literal["text", "time", "bool", "int", "ms", "usd", "gpu_seconds", "gpu_usd"]

# (CSV column, token_ledger column, kind), in file order. Money is USD as exact decimal strings.
FIELDS: tuple[tuple[str, str, Kind], ...] = (
    ("request_id", "request_id", "text"),
    ("trace_id", "trace_id", "text"),
    ("started_at", "started_at", "time"),
    ("ended_at", "ended_at", "time"),
    ("team", "team", "text"),
    ("feature", "feature", "text"),
    ("model", "model", "text"),
    ("requested_model", "requested_model", "text"),
    ("backend", "backend", "text"),
    ("stage", "stage", "text"),
    ("endpoint", "endpoint", "text"),
    ("streamed", "streamed", "bool"),
    ("status_code", "status_code", "int"),
    ("prompt_tokens", "prompt_tokens", "int"),
    ("completion_tokens", "completion_tokens", "int"),
    ("cached_tokens", "cached_tokens", "int"),
    ("tokens_estimated", "tokens_estimated", "bool"),
    ("ttft_ms", "ttft_ms", "ms"),
    ("itl_ms", "itl_ms", "ms"),
    ("latency_ms", "latency_ms", "ms"),
    ("prompt_cost_usd", "prompt_cost_nusd", "usd"),
    ("completion_cost_usd", "completion_cost_nusd", "usd"),
    ("cost_usd", "cost_nusd", "usd"),
    ("priced", "priced", "bool"),
    ("api_key_id", "api_key_id", "text"),
    ("finish_reason", "finish_reason", "text"),
    ("error_type", "error_type", "text"),
    ("client_disconnected", "client_disconnected", "bool"),
    ("body_sha256", "body_sha256", "text"),
    ("retry_of", "retry_of", "text"),
    ("prompt_system_tokens", "prompt_system_tokens", "int"),
    ("prompt_history_tokens", "prompt_history_tokens", "int"),
    ("prompt_context_tokens", "prompt_context_tokens", "int"),
    ("prompt_user_tokens", "prompt_user_tokens", "int"),
    # Summed over the call's gpu_ledger rows; empty when it has none (not attributed yet, or it never
    # reached a GPU). Idle time belongs to no call: it is only in the FOCUS export.
    ("gpu_seconds", "gpu_seconds", "gpu_seconds"),
    ("gpu_cost_usd", "gpu_cost_nusd", "gpu_usd"),
)
COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in FIELDS)
LEDGER_COLUMNS: tuple[str, ...] = tuple(source for _, source, kind in FIELDS if not kind.startswith("gpu"))


def _cell(value: Any, kind: Kind) -> Cell:
    if value is None:
        return None
    if kind == "text":
        return safe_text(value) if value != "" else None
    if kind == "time":
        return utc_micro(value)
    if kind == "bool":
        return boolean(bool(value))
    if kind == "int":
        return str(int(value))
    if kind == "ms":
        return milliseconds(float(value))
    if kind in ("usd", "gpu_usd"):
        return usd(int(value))
    return gpu_seconds(value)


def row_cells(ledger_row: Sequence[Any], gpu: tuple[Decimal, int] | None) -> list[Cell]:
    """One call's cells: ``ledger_row`` holds LEDGER_COLUMNS in order; ``gpu`` its (GPU-s, nano-USD)."""
    values = [*ledger_row, *(gpu if gpu is not None else (None, None))]
    return [_cell(value, kind) for value, (_, _, kind) in zip(values, FIELDS, strict=True)]


# --- The same cells spelt in Postgres SQL ---

# The code points of FORMULA_STARTS: =, +, -, @, tab, carriage return (ascii() is the cheapest test).
_FORMULA_CODES_SQL = "(61, 43, 45, 64, 9, 13)"
QUOTE_SQL = "''''"


def _sql_fixed(units: str, places: int) -> str:
    """An integer count of 10**-places as a decimal string, e.g. nano-USD as USD."""
    scale = 10**places
    return (
        f"(CASE WHEN {units} < 0 THEN '-' ELSE '' END) || (abs({units}) / {scale})::text"
        f" || '.' || lpad((abs({units}) %% {scale})::text, {places}, '0')"
    )


def _sql_cell(expression: str, kind: Kind) -> str:
    """One cell in SQL, spelt as ``row_cells`` spells it (the session must use DateStyle ISO)."""
    if kind == "text":
        return (
            f"CASE WHEN ascii({expression}) IN {_FORMULA_CODES_SQL} THEN {QUOTE_SQL} || {expression} "
            f"ELSE NULLIF({expression}, '') END"
        )
    if kind == "time":
        return f"replace(({expression} AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z'"
    if kind == "bool":
        return f"CASE WHEN {expression} THEN 'true' WHEN NOT {expression} THEN 'false' END"
    if kind == "int":
        return f"{expression}::text"
    if kind == "ms":
        # round(float8) rounds half to even, as Python's round() does.
        return _sql_fixed(f"round({expression} * 1000)::bigint", 3)
    if kind in ("usd", "gpu_usd"):
        # sum() of a bigint is a numeric in Postgres: back to an integer, so that / and % are integral.
        return _sql_fixed(f"({expression})::bigint", 9)
    return f"({expression})::numeric(38, 6)::text"


def postgres_copy_sql(*, team: bool, feature: bool) -> str:
    """``COPY ... TO STDOUT`` of the export's rows, with psycopg ``%(name)s`` parameters: start, end,
    and team / feature when filtered.

    Calls are read in (started_at, id) order from the started_at index, each with its GPU sums from
    the request_id index: no sort and no aggregate of the whole period, so the first row goes out at
    once and memory stays flat on the server too. The cells are spelt above, as each row streams out."""
    filters = ["t.started_at >= %(start)s", "t.started_at < %(end)s"]
    if team:
        filters.append("t.team = %(team)s")
    if feature:
        filters.append("t.feature = %(feature)s")
    inner = (
        f"SELECT {', '.join(f't.{name}' for name in LEDGER_COLUMNS)}, g.gpu_seconds, g.gpu_cost_nusd "
        "FROM token_ledger t LEFT JOIN LATERAL ("
        "SELECT sum(gpu_seconds) AS gpu_seconds, sum(cost_nusd) AS gpu_cost_nusd "
        "FROM gpu_ledger WHERE request_id = t.request_id"
        f") g ON true WHERE {' AND '.join(filters)} ORDER BY t.started_at, t.id"
    )
    cells = ", ".join(_sql_cell(f"s.{source}", kind) for _, source, kind in FIELDS)
    return f"COPY (SELECT {cells} FROM ({inner}) s) TO STDOUT WITH (FORMAT csv)"
