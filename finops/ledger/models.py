"""The token ledger: one row per proxied call that reached routing (see docs/ledger.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime


class TokenLedgerRow(Base):
    __tablename__ = "token_ledger"
    __table_args__ = (
        Index("ix_token_ledger_started_at", "started_at"),
        Index("ix_token_ledger_team_started_at", "team", "started_at"),
        Index("ix_token_ledger_trace_id", "trace_id"),
        Index("ix_token_ledger_backend_started_at", "backend", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The caller's trace id; a call that names none is a trace of one and carries its own request id.
    trace_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    # The model the backend served (its response's "model"); what the client asked for beside it.
    model: Mapped[str] = mapped_column(String(256))
    requested_model: Mapped[str] = mapped_column(String(256))
    backend: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str | None] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(32))
    streamed: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    # Prompt tokens served from the prefix cache (a subset of prompt_tokens).
    cached_tokens: Mapped[int] = mapped_column(Integer)
    # True when the backend gave no usage and the counts come from tiktoken.
    tokens_estimated: Mapped[bool] = mapped_column(Boolean)
    ttft_ms: Mapped[float | None] = mapped_column(Float(53))
    itl_ms: Mapped[float | None] = mapped_column(Float(53))
    latency_ms: Mapped[float] = mapped_column(Float(53))
    # Integer nano-USD at the price in force when the call started; cost = prompt + completion parts.
    prompt_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    completion_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    cost_nusd: Mapped[int] = mapped_column(BigInteger)
    # False when no price was in force for the model: the costs are zero, not known.
    priced: Mapped[bool] = mapped_column(Boolean)
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    # Why a call failed: upstream_unreachable, upstream_timeout, upstream_error, client_disconnected, ...
    error_type: Mapped[str | None] = mapped_column(String(64))
    client_disconnected: Mapped[bool] = mapped_column(Boolean)
    # SHA-256 of the request body as forwarded (tags removed), for retry detection.
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    retry_of: Mapped[str | None] = mapped_column(String(64))
    # How a chat prompt divides (finops.tokens.parts), scaled to add up to prompt_tokens; null otherwise.
    prompt_system_tokens: Mapped[int | None] = mapped_column(Integer)
    prompt_history_tokens: Mapped[int | None] = mapped_column(Integer)
    prompt_context_tokens: Mapped[int | None] = mapped_column(Integer)
    prompt_user_tokens: Mapped[int | None] = mapped_column(Integer)
