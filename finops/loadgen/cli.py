"""``finops loadgen``: drive realistic LLM pipelines through a finops proxy."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finops.loadgen.config import (
    DEFAULT_MIX,
    DEFAULT_TEAMS,
    LoadConfig,
    LoadConfigError,
    load_file,
    parse_mix,
    parse_teams,
)

DESCRIPTION = """\
Sends user queries through a finops proxy as real applications would: each query is one pipeline
(plain chat, RAG, multi-turn chat, tool-using agent, safety-checked chat), its calls sharing one
X-FinOps-Trace-Id, each call with its X-FinOps-Stage and the query's X-FinOps-Team / X-FinOps-Feature.
Some calls are retried (same body, or X-FinOps-Retry-Of) or first failed on purpose
(X-Sim-Error-Status: 503, which the finops sim stand-in honours).
"""

EPILOG = f"""\
pipelines (--mix NAME=WEIGHT,...; default {",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items())}):
  chat       one generation call (system prompt + question)
  rag        embeddings (retrieval), maybe a rerank chat call, then generation with the passages
             as a {{"role": "user", "name": "context"}} message before the question
  multiturn  2-5 generation calls, each re-sending the growing conversation
  agent      1-3 rounds of: generation deciding on tool calls, a "tool" chat call summarising each
             tool's output, fed back as "tool" messages; then the final generation
  safety     a "safety" classification of the question, the generation, one of the answer

teams (--team TEAM:FEATURE[=WEIGHT],...; repeat per team):
  default: {" ".join(f"--team {team}" for team in DEFAULT_TEAMS)}
  each query picks a feature by weight; each feature uses one model, picked from the proxy's
  GET /v1/models (or --model) by a hash of team/feature.

--config-file FILE (YAML) can set all of this, per-feature models and mixes included; its keys are:
  proxy, mix, teams, models, rps, concurrency, duration_s, queries, seed, stream_share, retry_rate,
  failure_rate, api_key, run_id, timeout_s. Options given on the command line win.
  teams: {{search: {{autocomplete: {{weight: 3, model: qwen-1b, mix: {{chat: 1}}}}, qa: {{}}}},
          support: [chatbot, triage]}}

Ctrl-C or SIGTERM: no new queries, the ones in flight finish (up to --grace seconds; a second
Ctrl-C cancels them), then the summary is printed and --json written.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "loadgen",
        help="drive realistic LLM pipelines (RAG, agents, chat, retries) through a finops proxy",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Defaults are None so that a config file's values apply unless an option is given.
    add = parser.add_argument
    add("--proxy", default=None, help="the proxy's base URL (default: http://127.0.0.1:8080)")
    add("--config-file", default=None, metavar="FILE", help="YAML file with any of the options (see below)")
    add("--mix", default=None, metavar="NAME=W,...", help="pipeline weights, e.g. chat=4,rag=3,agent=1")
    add(
        "--team",
        action="append",
        default=None,
        metavar="TEAM:FEATURE[=W],...",
        help="a team and its features",
    )
    add(
        "--model",
        dest="models",
        action="append",
        default=None,
        metavar="MODEL",
        help="a model to use; repeat (default: the proxy's)",
    )
    add("--rps", type=float, default=None, help="target queries per second; 0: no pacing (default: 5)")
    add("--concurrency", type=int, default=None, help="queries in flight at most (default: 8)")
    add("--duration", dest="duration_s", type=float, default=None, metavar="S", help="stop after S seconds")
    add("--queries", type=int, default=None, metavar="N", help="stop after N queries")
    add("--seed", type=int, default=None, help="seed of every choice (default: 0)")
    add("--api-key", default=None, help="a finops API key, sent as Authorization: Bearer")
    add(
        "--stream-share",
        type=float,
        default=None,
        help="share of generation calls that stream (default: 0.5)",
    )
    add("--retry-rate", type=float, default=None, help="share of calls sent twice (default: 0.05)")
    add(
        "--failure-rate",
        type=float,
        default=None,
        help="share of calls failed with a 503 first (default: 0.02)",
    )
    add("--run-id", default=None, help="prefix of the trace ids (default: lg + 8 random hex digits)")
    add(
        "--timeout",
        dest="timeout_s",
        type=float,
        default=None,
        metavar="S",
        help="per-call timeout (default: 60)",
    )
    add(
        "--grace",
        dest="grace_s",
        type=float,
        default=None,
        metavar="S",
        help="wait for queries in flight (default: 10)",
    )
    add(
        "--wait",
        dest="wait_s",
        type=float,
        default=None,
        metavar="S",
        help="wait for the proxy at start (default: 10)",
    )
    add(
        "--json",
        dest="json_path",
        default=None,
        metavar="FILE",
        help="write every call made, and the summary",
    )
    add("--quiet", "-q", action="store_true", help="print only the summary")
    parser.set_defaults(handler=run_command)


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    values: dict[str, Any] = load_file(args.config_file) if args.config_file else {}
    given: dict[str, Any] = {
        "proxy_url": args.proxy.rstrip("/") if args.proxy else None,
        "mix": parse_mix(args.mix) if args.mix is not None else None,
        "features": parse_teams(args.team) if args.team else None,
        "models": tuple(args.models) if args.models else None,
    }
    for name in (
        "rps",
        "concurrency",
        "duration_s",
        "queries",
        "seed",
        "api_key",
        "stream_share",
        "retry_rate",
        "failure_rate",
        "run_id",
        "timeout_s",
        "grace_s",
        "wait_s",
    ):
        given[name] = getattr(args, name)
    values.update({name: value for name, value in given.items() if value is not None})
    if isinstance(values.get("proxy_url"), str):
        values["proxy_url"] = values["proxy_url"].rstrip("/")
    try:
        return LoadConfig(**values)
    except TypeError as exc:  # a config file value of the wrong type
        raise LoadConfigError(f"bad option value: {exc}") from None


def run_command(args: argparse.Namespace) -> int:
    from finops.loadgen.runner import LoadgenError, run_load, stderr_log

    try:
        config = config_from_args(args)
    except LoadConfigError as exc:
        print(f"finops loadgen: {exc}", file=sys.stderr)
        return 2
    try:
        report = run_load(config, log=None if args.quiet else stderr_log)
    except LoadgenError as exc:
        print(f"finops loadgen: {exc}", file=sys.stderr)
        return 1
    print(report.format_summary(), flush=True)
    if args.json_path:
        report.write_json(args.json_path)
    return 0
