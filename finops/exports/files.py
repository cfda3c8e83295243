"""Files that appear only when complete: written under a temporary name beside them, then renamed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class OutputError(Exception):
    """The output file cannot be written (its folder is missing, read-only, the disk is full...)."""


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A file that appears at ``path`` only once complete: written under a temporary name beside it,
    flushed to disk, then renamed. On any error the temporary file is removed and ``path`` untouched."""
    folder = path.parent
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, renamed or removed)
            mode="wb", dir=folder, prefix=f".{path.name}.", suffix=".part", delete=False
        )
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    temp = Path(handle.name)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
