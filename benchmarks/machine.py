"""What machine a benchmark ran on, for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(*packages: str) -> str:
    versions = []
    for p in packages:
        try:
            versions.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            versions.append(f"{p} (not installed)")
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {sys.version.split()[0]}; " + ", ".join(versions)
    )
