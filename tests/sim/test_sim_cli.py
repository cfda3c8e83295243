"""The ``finops sim`` subcommand: arguments to settings, and refusing what cannot run."""

from __future__ import annotations

import socket

import pytest

from finops.cli import build_parser
from finops.sim.cli import settings_from_args
from finops.sim.settings import SimSettings


def test_arguments_map_onto_settings() -> None:
    args = build_parser().parse_args(
        [
            "sim",
            "--model", "a",
            "--model", "b",
            "--ttft-ms", "25",
            "--itl-ms", "4.5",
            "--output-tokens", "64",
            "--error-rate", "0.1",
            "--error-status", "503",
            "--drop-rate", "0.2",
            "--malformed-rate", "0.3",
            "--max-model-len", "4096",
            "--embedding-dim", "16",
            "--seed", "9",
            "--no-usage",
        ]
    )  # fmt: skip

    assert settings_from_args(args) == SimSettings(
        models=("a", "b"),
        ttft_ms=25.0,
        itl_ms=4.5,
        output_tokens=64,
        error_rate=0.1,
        error_status=503,
        drop_rate=0.2,
        malformed_rate=0.3,
        max_model_len=4096,
        embedding_dim=16,
        seed=9,
        usage=False,
    )
    assert (args.host, args.port) == ("127.0.0.1", 9001)


def test_defaults_are_the_settings_defaults() -> None:
    assert settings_from_args(build_parser().parse_args(["sim"])) == SimSettings()


def test_unusable_settings_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["sim", "--port", "0", "--error-rate", "2"])
    assert args.handler(args) == 2
    assert "error_rate must be within [0, 1]" in capsys.readouterr().err


def test_port_in_use_exits_1_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = build_parser().parse_args(["sim", "--port", str(port)])
        assert args.handler(args) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
