"""``finops loadgen``: realistic LLM pipelines driven through the proxy, for demos and tests.

- ``text``: plausible words from a small built-in vocabulary (pure, seeded);
- ``pipelines``: each user query as a generator of calls that reads earlier answers (pure);
- ``config``: the mix, teams, features, faults, and how one query is planned from the seed (pure);
- ``runner``: the only I/O: an ``httpx.AsyncClient`` that sends the calls, paces and records them.
"""

from __future__ import annotations

from finops.loadgen.config import LoadConfig, LoadConfigError
from finops.loadgen.runner import LoadReport, run_load, run_load_async

__all__ = ["LoadConfig", "LoadConfigError", "LoadReport", "run_load", "run_load_async"]
