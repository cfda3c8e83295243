"""docker-compose.yml: validated by Docker Compose itself, and every service's command is one finops knows.

No Docker engine runs here, so the stack is not started; `config` validates the file against the
Compose schema and resolves anchors, profiles and variables without one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from finops.cli import build_parser
from finops.config import load_config

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"postgres", "redis", "migrate", "proxy", "worker", "beat", "api", "dashboard"}
SIM_PROFILE = {"sim-small", "sim-large", "loadgen"}
# The file has no default secrets: Compose refuses to start without them.
SECRETS = {"FINOPS_SECRET_KEY": "test-secret", "POSTGRES_PASSWORD": "test-password"}


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.fail("no `docker compose` nor `docker-compose`: run scripts/install-system-packages")


def _config(*profiles: str) -> dict[str, Any]:
    args = [*_compose_command()]
    for profile in profiles:
        args += ["--profile", profile]
    done = subprocess.run(
        [*args, "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **SECRETS},
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = yaml.safe_load(done.stdout)
    return loaded


def test_compose_file_validates_with_the_expected_services() -> None:
    services = _config("sim")["services"]
    assert set(services) == EXPECTED | SIM_PROFILE
    # `docker compose up` starts these; the stand-ins and loadgen only with `--profile sim`.
    assert {name for name, s in services.items() if not s.get("profiles")} == EXPECTED
    assert all(services[name]["profiles"] == ["sim"] for name in SIM_PROFILE)


def test_compose_refuses_to_run_without_the_secrets() -> None:
    done = subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )
    assert done.returncode != 0
    assert "FINOPS_SECRET_KEY" in done.stderr or "POSTGRES_PASSWORD" in done.stderr


def test_services_wait_for_healthy_dependencies_and_the_migration() -> None:
    services = _config("sim")["services"]
    for name in ("postgres", "redis", "proxy", "api", "dashboard", "worker"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("proxy", "worker", "beat", "api", "dashboard"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["loadgen"]["depends_on"]["proxy"]["condition"] == "service_healthy"
    # Postgres keeps its data in a named volume; the proxy's spool survives restarts.
    assert any("postgres-data" in str(v) for v in services["postgres"]["volumes"])
    assert any("/var/lib/finops/spool" in str(v) for v in services["proxy"]["volumes"])


def test_every_finops_service_runs_a_command_finops_accepts() -> None:
    parser = build_parser()
    services = _config("sim")["services"]
    for name, service in services.items():
        if service.get("image") != "finops:latest":
            continue
        assert service["build"], name
        command = service["command"]
        args = parser.parse_args(command)
        assert callable(args.handler), name


def test_the_mounted_config_loads_with_the_compose_environment() -> None:
    services = _config()["services"]
    environment = {k: str(v) for k, v in services["proxy"]["environment"].items()}
    config = load_config(ROOT / "deploy" / "finops.yaml", environ=environment)
    assert config.database_url == "postgresql+psycopg://finops:test-password@postgres:5432/finops"
    assert config.broker_url == "redis://redis:6379/0"
    assert config.limits.redis_url == "redis://redis:6379/1"
    assert {b.name for b in config.backends} == {"sim-small", "sim-large"}
    # The stand-ins of the sim profile serve the models the config routes to them.
    sim = _config("sim")["services"]
    for backend in config.backends:
        command = sim[backend.name]["command"]
        served = {command[i + 1] for i, arg in enumerate(command) if arg == "--model"}
        assert set(backend.models) <= served


def test_dockerfile_installs_the_package_and_runs_finops() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["finops"]' in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
