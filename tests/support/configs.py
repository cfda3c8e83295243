"""The config most database tests share: two backends (one GPU at $2.00/h, two at $3.70/h) and
attribution windows closed at once."""

from __future__ import annotations

from typing import Any

from finops.config import AttributionConfig, BackendConfig, FinopsConfig


def two_backend_config(db_url: str, **extra: Any) -> FinopsConfig:
    return FinopsConfig(
        database_url=db_url,
        backends=[
            BackendConfig(
                name="gpu-a", url="http://127.0.0.1:9", models=["llama-8b"], usd_per_gpu_hour="2.0"
            ),
            BackendConfig(
                name="gpu-b", url="http://127.0.0.1:9", models=["qwen-1b"], gpus=2, usd_per_gpu_hour="3.7"
            ),
        ],
        attribution=AttributionConfig(window_s=60, close_delay_s=0),
        **extra,
    )
