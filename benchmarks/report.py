"""What a benchmark suite returns, and how the runner turns it into Markdown and PNGs.

Every ``benchmarks/bench_*.py`` module exposes ``run(quick: bool) -> Suite``. The
runner (``python -m benchmarks run``) calls each in one process, one after the other,
and writes the tables, the plots and the machine/versions/command caption of each.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    """One Markdown table."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Plot:
    """One PNG: ``series`` maps a peer to its (x, y) points, or to raw samples (``box``)."""

    name: str
    title: str
    xlabel: str
    ylabel: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    logx: bool = True
    logy: bool = False


@dataclass
class Suite:
    """A suite's results: tables, plots, free-form notes and the packages it used."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last call's result."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def latencies(fn: Callable[[], Any], n: int) -> list[float]:
    """Microseconds per call of ``n`` single calls (for latency distributions)."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t = clock()
        fn()
        out.append((clock() - t) / 1e3)
    return out


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt(x: Any) -> str:
    if isinstance(x, float):
        if x != x:  # NaN
            return "n/a"
        if abs(x) >= 100:
            return f"{x:,.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.2f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def markdown(suites: Sequence[Suite], machine: str, command: str, plot_dir: str) -> str:
    lines: list[str] = []
    for s in suites:
        lines += [f"### {s.title} (`{s.name}`)", ""]
        caption = f"*Machine: {machine}. Versions: {', '.join(s.packages) or 'n/a'}. Command: `{command}`; {s.seconds:.1f} s.*"
        for t in s.tables:
            lines += [f"**{t.title}**", "", caption, ""]
            lines.append("| " + " | ".join(t.columns) + " |")
            lines.append("|" + "|".join(["---"] + ["---:"] * (len(t.columns) - 1)) + "|")
            lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in t.rows]
            lines.append("")
        for p in s.plots:
            lines += [
                f"![{p.title}]({plot_dir}/{p.name}.png)",
                "",
                f"*{p.title}. {caption[1:]}",
                "",
            ]
        lines += [f"- {n}" for n in s.notes]
        lines.append("")
    return "\n".join(lines)


def draw(plots: Sequence[Plot], out_dir: Path, caption: str) -> list[Path]:
    """Writes one PNG per plot (needs matplotlib, from the ``bench`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for p in plots:
        fig, ax = plt.subplots(figsize=(8, 4.8))
        if p.samples:
            names = list(p.samples)
            ax.boxplot([p.samples[n] for n in names], showfliers=False)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right", fontsize=8)
        else:
            for label, points in p.series.items():
                if points:
                    xs, ys = zip(*sorted(points), strict=True)
                    ax.plot(xs, ys, marker="o", label=label)
            ax.legend(fontsize=8)
            if p.logx:
                ax.set_xscale("log", base=2)
        if p.logy:
            ax.set_yscale("log")
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel(p.xlabel)
        ax.set_ylabel(p.ylabel)
        ax.grid(True, alpha=0.3)
        fig.text(0.01, 0.01, caption, fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        path = out_dir / f"{p.name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def as_json(suites: Sequence[Suite]) -> list[dict[str, Any]]:
    return [asdict(s) for s in suites]
