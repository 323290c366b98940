"""The Markdown report of `make bench`: one table per backend, kept in docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench_load import LoadResult
from bench_prepare import Prepared


@dataclass
class Row:
    scenario: str
    result: LoadResult | None = None
    calls_per_second: float | None = None
    server_cpu_seconds: float | None = None


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}" if value < 10 else f"{value * 1000:.0f}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def render_table(rows: list[Row]) -> str:
    ceiling = next((r.result for r in rows if r.result is not None and r.result.kind == "health"), None)
    ceiling_rate = len(ceiling.latencies) / ceiling.elapsed if ceiling else None
    lines = [
        "| scenario | calls | calls/s | p50 ms | p99 ms | max ms | errors | vs ceiling"
        " | server CPU µs/call |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        if row.result is None:
            rate = row.calls_per_second or 0.0
            lines.append(f"| {row.scenario} | | {rate:,.1f} | | | | | | |")
            continue
        result = row.result
        rate = len(result.latencies) / result.elapsed if result.elapsed else 0.0
        errors = ", ".join(f"{name} {count}" for name, count in sorted(result.errors.items())) or "0"
        ratio = f"{rate / ceiling_rate:.0%}" if ceiling_rate and "LogoutAll" not in row.scenario else ""
        if result.latencies:
            p50 = _ms(statistics.median(result.latencies))
            p99 = _ms(_percentile(result.latencies, 0.99))
            worst = _ms(max(result.latencies))
        else:
            p50 = p99 = worst = "-"
        cpu = (
            f"{row.server_cpu_seconds / len(result.latencies) * 1e6:,.0f}"
            if row.server_cpu_seconds and result.latencies
            else ""
        )
        cells = [
            row.scenario,
            f"{len(result.latencies):,}",
            f"{rate:,.0f}",
            p50,
            p99,
            worst,
            errors,
            ratio,
            cpu,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _versions() -> str:
    names = [
        "grpcio",
        "protobuf",
        "sqlalchemy",
        "aiosqlite",
        "asyncpg",
        "pyjwt",
        "cryptography",
        "bcrypt",
        "aiohttp",
    ]
    return ", ".join(f"{name} {metadata.version(name)}" for name in names)


def render_report(
    backend: str, rows: list[Row], prepared: Prepared, rss: dict[str, float], command: str
) -> str:
    statements = ", ".join(f"{size:,} sessions: {count}" for size, count in prepared.statements.items())
    rss_text = ", ".join(f"{name} {value:.0f} MB" for name, value in rss.items())
    return "\n".join(
        [
            f"### {backend}",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs"
            f" ({platform.processor() or platform.machine()}),"
            f" Python {platform.python_version()}; {_versions()}.",
            f"Command: `{command}`. Peak RSS: {rss_text}.",
            f"Statements to revoke all of one user's sessions: {statements}.",
            "Users and sessions were prepared through the store directly, not by Login (bcrypt cost 12).",
            "",
            render_table(rows),
            "",
        ]
    )


def write_section(path: Path, backend: str, report: str) -> None:
    begin, end = f"<!-- bench:{backend} -->", f"<!-- /bench:{backend} -->"
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nWritten by `make bench` (scripts/bench.py).\n\n"
    )
    block = f"{begin}\n{report}{end}\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
