"""Progress bars on stderr (only on a terminal, for big inputs; rich is imported lazily)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["PROGRESS_MIN_BYTES", "progress_bytes", "progress_files"]

PROGRESS_MIN_BYTES = 8 * 1024 * 1024


def progress_bytes(
    total: int | None, label: str, quiet: bool
) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A byte counter and its stop function (None and a no-op when no bar is shown)."""
    if quiet or total is None or total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return None, lambda: None
    # Imported only when a bar is shown: rich is slow to import.
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    )
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n: bar.advance(task, n)), bar.stop


def progress_files(
    total: int, quiet: bool
) -> tuple[Callable[[Path], None] | None, Callable[[], None]]:
    """A per-file counter and its stop function (None and a no-op when no bar is shown)."""
    if quiet or total < 2 or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress  # noqa: PLC0415

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        transient=True,
    )
    task = bar.add_task("files", total=total)
    bar.start()
    return (lambda _path: bar.advance(task)), bar.stop
