from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from finops.config import ConfigError, load_config

ISSUE_EXAMPLE = """
database_url: postgresql+psycopg://postgres@127.0.0.1:5432/finops   # default: sqlite:///finops.db
backends:
  - name: gpu-a
    url: http://127.0.0.1:9001          # a vLLM server (OpenAI API under /v1)
    models: [llama-8b]
    gpus: 1
    usd_per_gpu_hour: 2.0
prices:
  llama-8b: {input_per_mtok: 0.10, output_per_mtok: 0.20}
tagging:
  untagged: reject                      # or: unallocated
"""


def write(tmp_path, text):
    path = tmp_path / "finops.yaml"
    path.write_text(text)
    return path


def test_the_documented_example_loads_as_written(tmp_path):
    config = load_config(write(tmp_path, ISSUE_EXAMPLE), environ={})
    assert config.database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/finops"
    backend = config.backends[0]
    assert (backend.name, backend.api_base, backend.models) == (
        "gpu-a",
        "http://127.0.0.1:9001/v1",
        ["llama-8b"],
    )
    assert backend.usd_per_gpu_hour == Decimal("2.0")
    price = config.prices["llama-8b"]
    assert not isinstance(price, list)
    assert price.input_per_mtok == Decimal("0.10")
    assert config.tagging.untagged == "reject"


def test_defaults_without_a_file():
    config = load_config(None, environ={})
    assert config.database_url == "sqlite:///finops.db"
    assert config.tagging.untagged == "unallocated"


def test_environment_overrides_the_file(tmp_path):
    env = {
        "FINOPS_DATABASE_URL": "sqlite:///other.db",
        "FINOPS_TAGGING__UNTAGGED": "unallocated",
        "FINOPS_PROXY__MAX_BODY_BYTES": "1024",
        "FINOPS_LOG_LEVEL": "debug",  # not a config key: ignored
    }
    config = load_config(write(tmp_path, ISSUE_EXAMPLE), environ=env)
    assert config.database_url == "sqlite:///other.db"
    assert config.tagging.untagged == "unallocated"
    assert config.proxy.max_body_bytes == 1024
    assert config.backends[0].name == "gpu-a"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("backends: [{name: a, url: ftp://x, models: [m]}]", "backends.0.url"),
        ("backends: [{name: a, url: http://x, models: []}]", "backends.0.models"),
        (
            "backends: [{name: a, url: http://x, models: [m]}, {name: a, url: http://y, models: [m]}]",
            "unique",
        ),
        ("prices: {m: {input_per_mtok: -1, output_per_mtok: 1}}", "prices.m"),
        ("tagging: {untagged: maybe}", "tagging.untagged"),
        ("surprise: 1", "surprise"),
        ("- a list", "mapping"),
        ("a: [unclosed", "not valid YAML"),
    ],
)
def test_bad_configs_say_which_key(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert fragment in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_the_readme_configuration_reference_loads_and_names_every_section():
    from dashboards.passwords import hash_password
    from finops.config import FinopsConfig

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    # The reference shows a placeholder where a real hash goes.
    block = block.replace('"scrypt$..."', f'"{hash_password("example")}"')
    data = yaml.safe_load(block)
    config = FinopsConfig.model_validate(data)
    assert config.budgets[0].channels == ["slack-search", "finance-mail"]
    # A section of the config that the reference leaves out is a section nobody can find.
    assert set(FinopsConfig.model_fields) == set(data)
