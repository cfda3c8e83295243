"""A pipeline through the real proxy to the stand-in, closed by the traces job: the exact factor."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import openai
from sqlalchemy import select

from finops.config import load_config
from finops.db import unit_of_work
from finops.jobs.registry import run_job
from finops.tokens.counting import count_prompt_input
from finops.tokens.parts import count_parts
from finops.traces.models import TraceCostRow
from tests.support.stack import ProxyStack, backend, start_sim

SYSTEM = {"role": "system", "content": "Answer from the documents only."}
CONTEXT = {"role": "user", "name": "context", "content": "Doc: idle H100s cost 2.49 USD an hour each."}
QUESTION = {"role": "user", "content": "What does an idle H100 cost?"}


def test_rag_pipeline_with_a_retry_gets_the_exact_factor(tmp_path, pg_url):
    sim, sim_url = start_sim(tmp_path, ("llama-8b",))
    proxy = ProxyStack(tmp_path, pg_url, [backend("gpu-a", sim_url, ["llama-8b"])]).start()
    try:
        client = openai.OpenAI(
            base_url=proxy.base_url,
            api_key="EMPTY",
            max_retries=0,
            default_headers={
                "X-FinOps-Team": "search",
                "X-FinOps-Feature": "qa",
                "X-FinOps-Trace-Id": "trace-rag-1",
            },
        )
        client.embeddings.create(
            model="llama-8b",
            input=["What does an idle H100 cost?"],
            extra_headers={"X-FinOps-Stage": "retrieval"},
        )
        messages = [SYSTEM, CONTEXT, QUESTION]
        first = client.chat.completions.with_raw_response.create(
            model="llama-8b", messages=messages, max_tokens=12, extra_headers={"X-FinOps-Stage": "generation"}
        )
        # The client timed out and asked again, saying so.
        client.chat.completions.create(
            model="llama-8b",
            messages=messages,
            max_tokens=12,
            extra_headers={
                "X-FinOps-Stage": "generation",
                "X-FinOps-Retry-Of": first.headers["x-finops-request-id"],
            },
        )
        rows = proxy.wait_rows(lambda rows: len(rows) == 3)

        config = load_config(proxy.config_path, environ={})
        result = run_job(proxy.engine, config, "traces", now=datetime.now(UTC) + timedelta(hours=1))
        assert result.closed == 1
        with unit_of_work(proxy.engine) as session:
            trace = session.scalars(select(TraceCostRow)).one()

        parts = count_parts(messages)
        retrieval = count_prompt_input(["What does an idle H100 cost?"])
        generation = parts.total + 12
        assert (trace.trace_id, trace.team, trace.feature, trace.calls, trace.retries) == (
            "trace-rag-1",
            "search",
            "qa",
            3,
            1,
        )
        assert (
            trace.total_tokens
            == retrieval + 2 * generation
            == sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
        )
        assert trace.total_cost_nusd == sum(r["cost_nusd"] for r in rows)
        assert trace.baseline_tokens == parts.user + 12
        assert trace.context_expansion_tokens == parts.system + parts.context
        assert trace.retries_tokens == generation
        assert trace.retrieval_tokens == retrieval
        assert trace.tool_steps_tokens == trace.safety_tokens == trace.other_tokens == 0
        parts_cost = sum(
            getattr(trace, f"{p}_cost_nusd")
            for p in (
                "baseline",
                "context_expansion",
                "retries",
                "tool_steps",
                "safety",
                "retrieval",
                "other",
            )
        )
        assert parts_cost == trace.total_cost_nusd
        expected = Fraction(trace.total_tokens, trace.baseline_tokens)
        assert abs(Fraction(trace.amplification_tokens) - expected) < Fraction(1, 10**6)

        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "finops.cli",
                "traces",
                "show",
                "trace-rag-1",
                "--json",
                "--config",
                str(proxy.config_path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        document = json.loads(shown.stdout)
        assert [c["stage"] for c in document["calls"]] == ["retrieval", "generation", "generation"]
        assert [c["retry"] for c in document["calls"]] == [None, None, "header"]
        assert document["breakdown_tokens"]["baseline"] == trace.baseline_tokens
        assert Fraction(document["amplification_tokens"]) == expected

        top = subprocess.run(
            [
                sys.executable,
                "-m",
                "finops.cli",
                "traces",
                "top",
                "--feature",
                "qa",
                "--config",
                str(proxy.config_path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "trace-rag-1" in top.stdout

        # A call that arrives after the trace was closed reopens it; it is recomputed when quiet again.
        client.chat.completions.create(
            model="llama-8b", messages=[QUESTION], max_tokens=5, extra_headers={"X-FinOps-Stage": "safety"}
        )
        proxy.wait_rows(lambda rows: len(rows) == 4)
        run_job(proxy.engine, config, "traces", now=datetime.now(UTC) + timedelta(hours=2))
        with unit_of_work(proxy.engine) as session:
            grown = session.scalars(select(TraceCostRow)).one()
        assert grown.calls == 4 and grown.safety_tokens > 0
        assert grown.total_tokens == trace.total_tokens + grown.safety_tokens
    finally:
        proxy.close()
        sim.stop()
