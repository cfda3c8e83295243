"""``finops export``: a FOCUS 1.2 or raw ledger CSV for a period, to a file or stdout."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from finops.config import FinopsConfig
from finops.exports.files import OutputError, atomic_file
from finops.exports.service import (
    ExportError,
    ExportRequest,
    check_request,
    estimate_rows,
    iter_export,
    snapshot_engine,
)


class Progress:
    """Rows written so far on stderr, with a bar when the total is known (only on a terminal)."""

    def __init__(self, total: int | None, stream: IO[str]) -> None:
        self.total, self.stream = total, stream
        self.rows = 0
        self._shown_at = 0.0

    def add(self, chunk: bytes) -> None:
        # Newlines in a chunk are rows (a header, then data rows): no exported cell holds a newline.
        self.rows += chunk.count(b"\n")
        now = time.monotonic()
        if now - self._shown_at >= 0.2:
            self._shown_at = now
            self._show()

    def _show(self) -> None:
        data_rows = max(self.rows - 1, 0)
        if self.total:
            share = min(data_rows / self.total, 1.0)
            bar = "#" * int(share * 30)
            line = f"\r[{bar:<30}] {share:6.1%} {data_rows:,}/{self.total:,} rows"
        else:
            line = f"\r{data_rows:,} rows"
        self.stream.write(line)
        self.stream.flush()

    def done(self) -> None:
        self._show()
        self.stream.write("\n")
        self.stream.flush()


def write_export(chunks: Iterable[bytes], out: IO[bytes], progress: Progress | None) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
        if progress is not None:
            progress.add(chunk)
    return written


def _export(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    req = ExportRequest(args.format, args.start, args.end, args.team, args.feature, args.basis)
    to_stdout = args.output == "-"
    target = Path(args.output)
    if not to_stdout and target.is_dir():
        print(f"finops export: {target} is a folder; give a file name", file=sys.stderr)
        return 2
    if not to_stdout and not os.access(target.parent, os.W_OK):
        print(
            f"finops export: cannot write {target}: {target.parent} is missing or not writable",
            file=sys.stderr,
        )
        return 1
    try:
        with engine_scope(config.database_url) as engine:
            with unit_of_work(engine) as session:
                check_request(session, req)
            if not args.no_refresh:
                _refresh(engine, config)
            with unit_of_work(snapshot_engine(engine)) as session:
                progress = None
                if sys.stderr.isatty():
                    progress = Progress(estimate_rows(session, req), sys.stderr)
                chunks = iter_export(session, config, req)
                if to_stdout:
                    write_export(chunks, sys.stdout.buffer, progress)
                    sys.stdout.buffer.flush()
                else:
                    with atomic_file(target) as out:
                        write_export(chunks, out, progress)
                if progress is not None:
                    progress.done()
    except ExportError as exc:
        print(f"finops export: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"finops export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"finops export: cannot write {args.output}: {exc.strerror or exc}; nothing written",
            file=sys.stderr,
        )
        return 1
    if not to_stdout:
        print(f"finops export: wrote {target}", file=sys.stderr)
    return 0


def _refresh(engine: Engine, config: FinopsConfig) -> None:
    """Bring GPU attribution and rollups up to date first: attribution decides the GPU rows (what the
    gpu basis bills); rollups only make the export faster (hours not rolled up are read from the
    ledgers either way)."""
    from finops.jobs.registry import run_job

    run_job(engine, config, "attribution")
    run_job(engine, config, "rollups")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument
    from finops.worker.cli import parse_time

    parser = subparsers.add_parser(
        "export", help="finance CSV for a period: FOCUS 1.2 charges or the raw ledger (exact, streamed)"
    )
    add_config_argument(parser)
    parser.add_argument(
        "--format",
        default="focus",
        help="focus (FOCUS 1.2 hourly charges) or ledger (one row per call); default: focus",
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=parse_time,
        required=True,
        help="start, inclusive (ISO 8601 date or time, UTC; whole hours for focus)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=parse_time,
        required=True,
        help="end, exclusive (--from 2026-11-01 --to 2026-12-01 is November)",
    )
    parser.add_argument("--team", default=None, help="only this team's calls (leaves idle GPU time out)")
    parser.add_argument(
        "--feature", default=None, help="only this feature's calls (leaves idle GPU time out)"
    )
    parser.add_argument(
        "--basis",
        default="tokens",
        help="focus: what BilledCost bills: tokens (price book) or gpu (GPU-seconds, idle included)",
    )
    parser.add_argument("-o", "--output", required=True, help="file to write, or - for stdout")
    parser.add_argument(
        "--no-refresh",
        action="store_true",
        help="do not run the attribution and rollup jobs first",
    )
    parser.set_defaults(handler=_export)
