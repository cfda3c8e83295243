"""Fixtures that run the real stand-in (see ``tests.sim.harness``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sim.harness import SimLauncher, SimServer, start_server, stop_server


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimServer]:
    """A stand-in with default settings and two models, shared by tests that only add requests."""
    server = start_server(
        ["--model", "llama-8b", "--model", "other-model"], tmp_path_factory.mktemp("sim") / "log"
    )
    yield server
    stop_server(server)


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[SimLauncher]:
    """Start stand-ins with the given CLI arguments; they are stopped after the test."""
    launcher = SimLauncher(tmp_path)
    yield launcher
    launcher.stop_all()
