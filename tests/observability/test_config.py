"""Config of latency alerts and observability: defaults, and clear errors for bad values."""

from __future__ import annotations

import pytest

from finops.config import ConfigError, load_config
from finops.sim.knobs import KnobError, parse_overrides


def test_defaults(tmp_path):
    config = load_config(environ={})
    assert config.latency_alerts == []
    assert config.observability.scrape_every_s == 15.0
    path = tmp_path / "finops.yaml"
    path.write_text(
        "channels: {ops: {type: console}}\n"
        "latency_alerts:\n  - {name: ttft, channels: [ops]}\n"
        "observability: {context_limit_tokens: {llama-8b: 8000, '*': 4096}}\n"
    )
    rule = load_config(path, environ={}).latency_alerts[0]
    assert (rule.metric, rule.percentile, rule.by, rule.window_s, rule.factor) == (
        "ttft",
        90,
        "model",
        900,
        2.0,
    )
    assert (rule.baseline_weeks, rule.min_calls, rule.min_baseline_calls) == (1, 20, 100)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "latency_alerts: [{name: a, channels: [nowhere]}]",
            "latency alert 'a' names unknown channels: nowhere",
        ),
        ("latency_alerts: [{name: a}, {name: a}]", "latency alert names must be unique; repeated: a"),
        ("latency_alerts: [{name: a, factor: 1}]", "latency_alerts.0.factor"),
        ("latency_alerts: [{name: a, percentile: 100}]", "latency_alerts.0.percentile"),
        ("latency_alerts: [{name: a, metric: tpot}]", "latency_alerts.0.metric"),
        ("latency_alerts: [{name: a, scope: {region: eu}}]", "latency_alerts.0.scope.region"),
        ("observability: {context_limit_tokens: {m: 0}}", "context_limit_tokens must be >= 1; not for: m"),
        ("observability: {scrape_every_s: 0}", "observability.scrape_every_s"),
    ],
)
def test_bad_values_name_the_key(tmp_path, yaml_text, message):
    path = tmp_path / "finops.yaml"
    path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(path, environ={})


def test_stand_in_context_knob():
    assert parse_overrides([(b"x-sim-max-model-len", b"16")]).max_model_len == 16
    with pytest.raises(KnobError, match="X-Sim-max-model-len must be >= 2"):
        parse_overrides([(b"x-sim-max-model-len", b"1")])
