"""`finops export`: the file (or stdout) is exactly iter_export's bytes; bad input never leaves a file."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from finops.cli import main
from finops.db import make_engine, unit_of_work
from finops.exports.files import atomic_file
from finops.exports.service import ExportRequest, iter_export
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from tests.exports.support import END, START, calls, config_for

SPAN = ["--from", "2026-11-30T22:00", "--to", "2026-12-01T02:00"]


@pytest.fixture
def setup(db_url: str, tmp_path: Path):
    config = config_for(db_url)
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    engine = make_engine(db_url)
    insert_records(engine, calls())
    run_job(engine, config, "attribution", now=END + timedelta(minutes=10))
    yield engine, config, str(path), tmp_path
    engine.dispose()


def expected(engine, config, req: ExportRequest) -> bytes:
    with unit_of_work(engine) as session:
        return b"".join(iter_export(session, config, req))


@pytest.mark.parametrize(
    "args,req",
    [
        (["--format", "focus"], ExportRequest("focus", START, END)),
        (
            ["--format", "focus", "--basis", "gpu", "--team", "ads"],
            ExportRequest("focus", START, END, "ads", None, "gpu"),
        ),
        (
            ["--format", "ledger", "--feature", "summary"],
            ExportRequest("ledger", START, END, feature="summary"),
        ),
    ],
)
def test_the_file_and_stdout_hold_exactly_the_stream(setup, args, req, capsys):
    engine, config, config_path, tmp = setup
    out = tmp / "out.csv"
    assert main(["export", "--config", config_path, *args, *SPAN, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    stream = expected(engine, config, req)
    assert out.read_bytes() == stream and stream.count(b"\n") > 2
    assert [p.name for p in tmp.iterdir() if p.name.endswith(".part")] == []

    result = subprocess.run(
        [sys.executable, "-m", "finops.cli", "export", "--config", config_path, *args, *SPAN, "-o", "-"],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == stream


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--from", "2026-12-01", "--to", "2026-11-30"], 2, "inverted"),
        (["--from", "2026-11-30", "--to", "2026-11-30"], 2, "inverted"),
        (["--format", "xlsx", *SPAN], 2, "unknown export format 'xlsx'"),
        (["--team", "nobody", *SPAN], 2, "unknown team 'nobody'"),
        (["--basis", "euros", *SPAN], 2, "unknown basis"),
        (["--from", "2026-11-30T22:30", "--to", "2026-12-01"], 2, "whole hours"),
    ],
)
def test_bad_input_is_a_clear_error_and_no_file(setup, args, code, message, capsys):
    _, _, config_path, tmp = setup
    out = tmp / "out.csv"
    assert main(["export", "--config", config_path, *args, "-o", str(out)]) == code
    assert message in capsys.readouterr().err
    assert not out.exists() and not [p for p in tmp.iterdir() if p.name.endswith(".part")]


def test_an_open_ended_range_is_refused(setup, capsys):
    _, _, config_path, tmp = setup
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", config_path, "--from", "2026-11-30", "-o", str(tmp / "out.csv")])
    assert exit_info.value.code == 2
    assert "--to" in capsys.readouterr().err


def test_an_unwritable_path_is_refused_before_any_work(setup, capsys):
    _, _, config_path, tmp = setup
    missing = tmp / "no-such-folder" / "out.csv"
    assert main(["export", "--config", config_path, *SPAN, "-o", str(missing)]) == 1
    assert f"cannot write {missing}" in capsys.readouterr().err
    assert main(["export", "--config", config_path, *SPAN, "-o", str(tmp)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_failure_half_way_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "export.csv"

    def chunks():
        yield b"header\n"
        yield b"row 1\n"
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError), atomic_file(target) as out:
        for chunk in chunks():
            out.write(chunk)
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"last month's complete file\n")
    with pytest.raises(RuntimeError), atomic_file(target) as out:
        for chunk in chunks():
            out.write(chunk)
    assert target.read_bytes() == b"last month's complete file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]
