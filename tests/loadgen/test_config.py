from __future__ import annotations

import argparse

import pytest

from finops.loadgen.cli import config_from_args, register
from finops.loadgen.config import (
    FeatureSpec,
    LoadConfig,
    LoadConfigError,
    load_file,
    parse_mix,
    parse_teams,
    pick_model,
    plan_query,
)


def parse_cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="finops")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["loadgen", *argv])


def test_mix_weights_and_bare_names():
    assert parse_mix("chat=4, rag=2.5,agent") == {"chat": 4.0, "rag": 2.5, "agent": 1.0}


@pytest.mark.parametrize("bad", ["", "chat=0", "chat=-1", "chat=x", "poetry=1", "chat=nan"])
def test_bad_mixes_are_refused(bad):
    with pytest.raises(LoadConfigError):
        parse_mix(bad)


def test_teams_with_features_and_weights():
    features = parse_teams(["search:autocomplete=3,qa", "support:chatbot"])
    assert features == (
        FeatureSpec("search", "autocomplete", 3.0),
        FeatureSpec("search", "qa", 1.0),
        FeatureSpec("support", "chatbot", 1.0),
    )


@pytest.mark.parametrize(
    "bad", [["search"], ["search:"], ["search:a,a"], ["se arch:a"], ["s:a=x"], ["s:a", "s:a"], ["s:a=0"]]
)
def test_bad_teams_are_refused(bad):
    with pytest.raises(LoadConfigError):
        parse_teams(bad)


def test_yaml_file(tmp_path):
    path = tmp_path / "load.yaml"
    path.write_text(
        """
proxy: http://127.0.0.1:9999
mix: {chat: 1, rag: 2}
teams:
  search:
    autocomplete: {weight: 3, model: qwen-1b, mix: {chat: 1}}
    qa:
  support: [chatbot, triage]
models: [llama-8b]
rps: 2
queries: 10
retry_rate: 0.1
"""
    )
    values = load_file(path)
    config = LoadConfig(**values)
    assert config.proxy_url == "http://127.0.0.1:9999"
    assert config.mix == {"chat": 1.0, "rag": 2.0}
    assert config.features == (
        FeatureSpec("search", "autocomplete", 3.0, "qwen-1b", {"chat": 1.0}),
        FeatureSpec("search", "qa"),
        FeatureSpec("support", "chatbot"),
        FeatureSpec("support", "triage"),
    )
    assert (config.models, config.rps, config.queries, config.retry_rate) == (("llama-8b",), 2, 10, 0.1)
    # The pinned model and the feature's own mix apply to its queries.
    plans = [plan_query(config, ["llama-8b"], i) for i in range(60)]
    autocomplete = [p for p in plans if p.feature == "autocomplete"]
    assert autocomplete and all(p.model == "qwen-1b" and p.pipeline == "chat" for p in autocomplete)
    assert {p.pipeline for p in plans if p.feature != "autocomplete"} == {"chat", "rag"}


@pytest.mark.parametrize(
    "content",
    [
        "nonsense: 1",
        "teams: [a, b]",
        "teams: {search: {qa: {colour: red}}}",
        "teams: {search: {qa: {mix: {poetry: 1}}}}",
        "mix: [chat]",
        "models: llama-8b",
        "rps: -1",
        "- a list",
        "{unclosed",
    ],
)
def test_bad_files_are_refused(tmp_path, content):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(LoadConfigError):
        LoadConfig(**load_file(path))


def test_command_line_wins_over_the_file(tmp_path):
    path = tmp_path / "load.yaml"
    path.write_text("rps: 2\nseed: 5\nteams: {ads: [copy]}\nproxy: http://127.0.0.1:1/\n")
    config = config_from_args(parse_cli("--config-file", str(path), "--rps", "7", "--team", "x:y"))
    assert (config.rps, config.seed, config.proxy_url) == (7.0, 5, "http://127.0.0.1:1")
    assert config.features == (FeatureSpec("x", "y"),)
    defaults = config_from_args(parse_cli())
    assert (defaults.rps, defaults.concurrency, defaults.proxy_url) == (5.0, 8, "http://127.0.0.1:8080")
    assert len(defaults.features) == 5


def test_config_checks_ranges():
    for bad in (
        {"retry_rate": 1.5},
        {"concurrency": 0},
        {"duration_s": 0},
        {"queries": 0},
        {"run_id": "a b"},
    ):
        with pytest.raises(LoadConfigError):
            LoadConfig(**bad)
    with pytest.raises(LoadConfigError):
        LoadConfig(proxy_url="127.0.0.1:8080")


def test_model_choice_is_stable_and_spread():
    models = ["a", "b", "c"]
    assert pick_model(models, "search", "qa") == pick_model(list(reversed(models)), "search", "qa")
    chosen = {pick_model(models, "team", f"feature{i}") for i in range(30)}
    assert chosen == set(models)
    with pytest.raises(LoadConfigError):
        pick_model([], "t", "f")
