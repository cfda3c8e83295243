"""What a load run sends: pipeline mix, teams and features, models, pace, faults (pure, no I/O but reading
the optional YAML file).

Command-line forms::

    --mix chat=4,rag=3,multiturn=2,agent=1,safety=1     relative weights of the pipelines
    --team search:autocomplete=3,qa --team support:chatbot
                                                       TEAM:FEATURE[=WEIGHT],...; repeat per team

YAML file (``--config-file``; every key optional, command-line options win)::

    proxy: http://127.0.0.1:8080
    mix: {chat: 4, rag: 3, multiturn: 2, agent: 1, safety: 1}
    teams:
      search:                         # a team: a mapping of its features to their options
        autocomplete:
          weight: 3                   # share of queries, relative to every other feature (default 1)
          model: qwen-1b              # pin a model (default: one of `models`, by a hash of team/feature)
          mix: {chat: 1}              # this feature's own pipeline mix (default: the top-level mix)
        qa: {mix: {rag: 3, agent: 1}}
      support: [chatbot, triage]      # or a list of feature names, with default options
    models: [llama-8b, qwen-1b]       # default: what GET /v1/models on the proxy lists
    rps: 5                            # target queries per second; 0: as fast as `concurrency` allows
    concurrency: 8                    # queries in flight at most
    duration_s: 60                    # stop after this long ...
    queries: 500                      # ... or after this many queries (neither: until Ctrl-C)
    seed: 0
    stream_share: 0.5                 # share of generation calls that stream
    retry_rate: 0.05                  # share of calls sent twice (half same body, half X-FinOps-Retry-Of)
    failure_rate: 0.02                # share of calls first failed with X-Sim-Error-Status: 503, retried
    api_key: fo-...
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finops.loadgen.pipelines import PIPELINES, QueryPlan

DEFAULT_MIX: Mapping[str, float] = {"chat": 4.0, "rag": 3.0, "multiturn": 2.0, "agent": 1.0, "safety": 1.0}
DEFAULT_TEAMS: tuple[str, ...] = ("search:autocomplete,qa", "support:chatbot,triage", "research:assistant")
# A subset of what the proxy accepts as a tag value, without the CLI's separators (":", ",", "=").
_NAME = re.compile(r"^[A-Za-z0-9_.@/+-]{1,128}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LoadConfigError(ValueError):
    """A load-generator option or config file that cannot be used."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    team: str
    feature: str
    weight: float = 1.0
    model: str | None = None
    mix: Mapping[str, float] | None = None


def _name(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise LoadConfigError(f"{kind} {value!r}: use 1 to 128 of A-Z a-z 0-9 _ . @ / + -")
    return value


def _weight(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LoadConfigError(f"{what}: the weight must be a number, got {value!r}")
    try:
        weight = float(value)
    except ValueError:
        raise LoadConfigError(f"{what}: the weight must be a number, got {value!r}") from None
    if not weight >= 0 or weight == float("inf"):
        raise LoadConfigError(f"{what}: the weight must be a finite number >= 0, got {value!r}")
    return weight


def check_mix(mix: Mapping[str, Any], where: str = "mix") -> dict[str, float]:
    result: dict[str, float] = {}
    for name, weight in mix.items():
        if name not in PIPELINES:
            raise LoadConfigError(f"{where}: unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
        result[name] = _weight(f"{where}: {name}", weight)
    if not result or sum(result.values()) <= 0:
        raise LoadConfigError(f"{where}: at least one pipeline needs a weight above 0")
    return result


def parse_mix(spec: str) -> dict[str, float]:
    """``chat=4,rag=3``: pipeline weights; a pipeline named without ``=`` weighs 1."""
    mix: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, weight = item.partition("=")
        mix[name.strip()] = weight.strip() or 1
    return check_mix(mix, f"--mix {spec!r}")


def parse_team(spec: str) -> list[FeatureSpec]:
    """``search:autocomplete=3,qa``: a team and its features, each with an optional weight."""
    team, sep, features = spec.partition(":")
    if not sep or not features.strip():
        raise LoadConfigError(f"--team {spec!r}: expected TEAM:FEATURE[=WEIGHT][,FEATURE...]")
    team = _name("team", team.strip())
    result: list[FeatureSpec] = []
    for item in filter(None, (part.strip() for part in features.split(","))):
        feature, _, weight = item.partition("=")
        result.append(
            FeatureSpec(
                team,
                _name("feature", feature.strip()),
                _weight(f"--team {spec!r}", weight.strip()) if weight.strip() else 1.0,
            )
        )
    return result


def parse_teams(specs: Sequence[str]) -> tuple[FeatureSpec, ...]:
    features = [feature for spec in specs for feature in parse_team(spec)]
    return _check_features(features, "--team")


def _check_features(features: Sequence[FeatureSpec], where: str) -> tuple[FeatureSpec, ...]:
    seen: set[tuple[str, str]] = set()
    for spec in features:
        if (spec.team, spec.feature) in seen:
            raise LoadConfigError(f"{where}: feature {spec.team}/{spec.feature} is given twice")
        seen.add((spec.team, spec.feature))
    if not features or sum(spec.weight for spec in features) <= 0:
        raise LoadConfigError(f"{where}: at least one feature needs a weight above 0")
    return tuple(features)


def teams_from_yaml(teams: Any) -> tuple[FeatureSpec, ...]:
    if not isinstance(teams, dict) or not teams:
        raise LoadConfigError("teams: expected a mapping of team names to their features")
    features: list[FeatureSpec] = []
    for team_name, entries in teams.items():
        team = _name("team", team_name)
        if isinstance(entries, list):
            entries = dict.fromkeys(entries)
        if not isinstance(entries, dict) or not entries:
            raise LoadConfigError(f"teams.{team}: expected a list of features or a mapping of features")
        for feature_name, options in entries.items():
            feature = _name("feature", feature_name)
            where = f"teams.{team}.{feature}"
            options = {} if options is None else options
            if not isinstance(options, dict):
                raise LoadConfigError(f"{where}: expected a mapping (weight, model, mix)")
            unknown = set(options) - {"weight", "model", "mix"}
            if unknown:
                raise LoadConfigError(f"{where}: unknown keys {sorted(unknown)}; known: weight, model, mix")
            mix = options.get("mix")
            if mix is not None and not isinstance(mix, dict):
                raise LoadConfigError(f"{where}.mix: expected a mapping of pipelines to weights")
            model = options.get("model")
            if model is not None and (not isinstance(model, str) or not model):
                raise LoadConfigError(f"{where}.model: expected a model name")
            features.append(
                FeatureSpec(
                    team,
                    feature,
                    _weight(f"{where}.weight", options.get("weight", 1)),
                    model,
                    check_mix(mix, f"{where}.mix") if mix is not None else None,
                )
            )
    return _check_features(features, "teams")


@dataclass(frozen=True, slots=True)
class LoadConfig:
    proxy_url: str = "http://127.0.0.1:8080"
    features: tuple[FeatureSpec, ...] = field(default_factory=lambda: parse_teams(DEFAULT_TEAMS))
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    # Empty: the models the proxy lists at GET /v1/models.
    models: tuple[str, ...] = ()
    # Target queries started per second; 0: as fast as `concurrency` allows.
    rps: float = 5.0
    concurrency: int = 8
    # Neither: run until stopped (Ctrl-C, SIGTERM, or the stop event of run_load_async).
    duration_s: float | None = None
    queries: int | None = None
    seed: int = 0
    api_key: str | None = None
    stream_share: float = 0.5
    retry_rate: float = 0.05
    failure_rate: float = 0.02
    # The prefix of every trace id; random per run by default, so that runs with one seed never share traces.
    run_id: str = field(default_factory=lambda: "lg" + secrets.token_hex(4))
    timeout_s: float = 60.0
    # How long a stop waits for the queries in flight before cancelling them.
    grace_s: float = 10.0
    # How long to wait for the proxy to answer GET /v1/models at start (it may still be starting).
    wait_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.proxy_url.startswith(("http://", "https://")):
            raise LoadConfigError(f"proxy URL must start with http:// or https://, got {self.proxy_url!r}")
        check_mix(self.mix)
        _check_features(self.features, "teams")
        for name in ("rps", "timeout_s", "grace_s", "wait_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise LoadConfigError(f"{name} must be >= 0, got {value}")
        if self.concurrency < 1:
            raise LoadConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise LoadConfigError(f"duration must be > 0 seconds, got {self.duration_s}")
        if self.queries is not None and self.queries < 1:
            raise LoadConfigError(f"queries must be >= 1, got {self.queries}")
        for name in ("stream_share", "retry_rate", "failure_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise LoadConfigError(f"{name} must be within [0, 1], got {value}")
        if not _RUN_ID.match(self.run_id):
            raise LoadConfigError(f"run id {self.run_id!r}: use 1 to 64 of A-Z a-z 0-9 _ . -")


# Keys of the YAML file and the LoadConfig field each sets.
FILE_KEYS: Mapping[str, str] = {
    "proxy": "proxy_url",
    "mix": "mix",
    "teams": "features",
    "models": "models",
    "rps": "rps",
    "concurrency": "concurrency",
    "duration_s": "duration_s",
    "queries": "queries",
    "seed": "seed",
    "stream_share": "stream_share",
    "retry_rate": "retry_rate",
    "failure_rate": "failure_rate",
    "api_key": "api_key",
    "run_id": "run_id",
    "timeout_s": "timeout_s",
}


def load_file(path: str | Path) -> dict[str, Any]:
    """The LoadConfig fields a YAML file sets (see the module docstring)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise LoadConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise LoadConfigError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LoadConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - set(FILE_KEYS)
    if unknown:
        raise LoadConfigError(f"{path}: unknown keys {sorted(unknown)}; known: {', '.join(FILE_KEYS)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key == "teams":
            values["features"] = teams_from_yaml(value)
        elif key == "mix":
            if not isinstance(value, dict):
                raise LoadConfigError(f"{path}: mix: expected a mapping of pipelines to weights")
            values["mix"] = check_mix(value)
        elif key == "models":
            if not isinstance(value, list) or not all(isinstance(m, str) and m for m in value):
                raise LoadConfigError(f"{path}: models: expected a list of model names")
            values["models"] = tuple(value)
        else:
            values[FILE_KEYS[key]] = value
    return values


def pick_model(models: Sequence[str], team: str, feature: str) -> str:
    """The model a team's feature uses: fixed by its names, whatever the seed or the list's order."""
    ordered = sorted(set(models))
    if not ordered:
        raise LoadConfigError("no model to send calls to (the proxy lists none; give --model)")
    digest = hashlib.sha256(f"{team}/{feature}".encode()).digest()
    return ordered[int.from_bytes(digest[:8], "big") % len(ordered)]


def plan_query(config: LoadConfig, models: Sequence[str], index: int) -> QueryPlan:
    """Query ``index`` of a run: who sends it, which pipeline, which model; a pure function of the seed."""
    rng = random.Random(f"{config.seed}/{index}/plan")
    features = config.features
    spec = rng.choices(features, weights=[f.weight for f in features])[0]
    mix = spec.mix if spec.mix is not None else config.mix
    pipeline = rng.choices(list(mix), weights=list(mix.values()))[0]
    return QueryPlan(
        index=index,
        trace_id=f"{config.run_id}-{index:06d}",
        team=spec.team,
        feature=spec.feature,
        model=spec.model or pick_model(models, spec.team, spec.feature),
        pipeline=pipeline,
        seed=f"{config.seed}/{index}",
        stream_share=config.stream_share,
        retry_rate=config.retry_rate,
        failure_rate=config.failure_rate,
    )
