"""The Markdown report of `make bench`: the issue's targets first, then one table of every scenario, per
backend, kept in docs/benchmarks.md between markers."""

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

NOT_AVAILABLE = "not available"

# The peers' published REST numbers (docs/benchmarks.md's own comparison; issue 17's table).
SIMPLEJWT_REFRESH_PER_SECOND = 241.0
SIMPLEJWT_LOGOUT_PER_SECOND = 307.0
FASTAPI_USERS_LOGOUT_PER_SECOND = 304.0
FASTAPI_USERS_LOGOUT_ALL_MS = 28.8  # the fastest peer's logout-all of 10,000 sessions
PEER_FACTOR = 5.0  # REST rates: at least 5x each peer
MIN_RATIO = 0.5  # Refresh and Logout: at least half the empty call's throughput
MAX_ADDED_LATENCY_MS = 1.0
WORKERS_CPU_SLACK = 1.10  # CPU per call with more workers: no more than 10% above one worker's (noise)
# Per backend: server CPU per Refresh (µs) and LogoutAll of 10,000 sessions (ms).
CPU_PER_REFRESH_US = {"SQLite": 600.0, "PostgreSQL": 800.0}
LOGOUT_ALL_MS = {"SQLite": 25.0, "PostgreSQL": 60.0}


@dataclass
class Row:
    scenario: str
    result: LoadResult | None = None
    calls_per_second: float | None = None
    server_cpu_seconds: float | None = None
    gateway_cpu_seconds: float | None = None
    key: str = ""  # how the targets table finds the row
    missing: str = ""  # why the scenario could not run: the row then reads "not available"

    @property
    def calls(self) -> int:
        return len(self.result.latencies) if self.result is not None else 0

    @property
    def rate(self) -> float:
        if self.result is None:
            return self.calls_per_second or 0.0
        return self.calls / self.result.elapsed if self.result.elapsed else 0.0

    def cpu_us(self, seconds: float | None) -> float | None:
        return seconds / self.calls * 1e6 if seconds and self.calls else None

    @property
    def server_cpu_us(self) -> float | None:
        return self.cpu_us(self.server_cpu_seconds)

    @property
    def gateway_cpu_us(self) -> float | None:
        return self.cpu_us(self.gateway_cpu_seconds)

    @property
    def p50(self) -> float | None:
        return statistics.median(self.result.latencies) if self.result and self.result.latencies else None


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}" if value < 10 else f"{value * 1000:.0f}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _us(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else ""


def render_table(rows: list[Row]) -> str:
    ceiling = next((r for r in rows if r.key == "health"), None)
    ceiling_rate = ceiling.rate if ceiling is not None else None
    lines = [
        "| scenario | calls | calls/s | p50 ms | p99 ms | max ms | errors | vs ceiling"
        " | server CPU µs/call | gateway CPU µs/call |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        if row.missing:
            lines.append(f"| {row.scenario} | | {NOT_AVAILABLE}: {row.missing} | | | | | | | |")
            continue
        if row.result is None:
            lines.append(f"| {row.scenario} | | {row.rate:,.1f} | | | | | | | |")
            continue
        result = row.result
        errors = ", ".join(f"{name} {count}" for name, count in sorted(result.errors.items())) or "0"
        one_call = "LogoutAll" in row.scenario or "logout-all" in row.scenario
        ratio = f"{row.rate / ceiling_rate:.0%}" if ceiling_rate and not one_call else ""
        if result.latencies:
            p50 = _ms(statistics.median(result.latencies))
            p99 = _ms(_percentile(result.latencies, 0.99))
            worst = _ms(max(result.latencies))
        else:
            p50 = p99 = worst = "-"
        cells = [
            row.scenario,
            f"{row.calls:,}",
            f"{row.rate:,.0f}",
            p50,
            p99,
            worst,
            errors,
            ratio,
            _us(row.server_cpu_us),
            _us(row.gateway_cpu_us),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "no")


def target_rows(backend: str, rows: list[Row], logout_all_size: int) -> list[tuple[str, str, str, str]]:
    """(row, target, measured, met?) for each line of the issue's table, read from the scenario rows."""
    by_key = {row.key: row for row in rows if row.key}
    out: list[tuple[str, str, str, str]] = []

    def usable(*keys: str) -> bool:
        return all(k in by_key and not by_key[k].missing and by_key[k].calls for k in keys)

    def add(name: str, target: str, measured: str | None, ok: bool | None) -> None:
        out.append((name, target, measured if measured is not None else NOT_AVAILABLE, _met(ok)))

    for what in ("refresh", "logout"):
        title = f"{what.capitalize()} / empty call, gRPC throughput"
        if usable(what, "health"):
            ratio = by_key[what].rate / by_key["health"].rate
            measured = f"{ratio:.2f} ({by_key[what].rate:,.0f}/s vs {by_key['health'].rate:,.0f}/s)"
            add(title, f">= {MIN_RATIO}", measured, ratio >= MIN_RATIO)
        else:
            add(title, f">= {MIN_RATIO}", None, None)
    limit = CPU_PER_REFRESH_US.get(backend, 600.0)
    cpu = by_key["refresh"].server_cpu_us if usable("refresh") else None
    add(
        "server CPU per Refresh",
        f"<= {limit:,.0f} µs",
        f"{cpu:,.0f} µs" if cpu is not None else None,
        cpu <= limit if cpu is not None else None,
    )
    limit_ms = LOGOUT_ALL_MS.get(backend, 25.0)
    row = by_key.get("logout_all")
    took = row.p50 if row is not None and usable("logout_all") else None
    add(
        f"LogoutAll of {logout_all_size:,} sessions, gRPC",
        f"< {limit_ms:g} ms",
        f"{took * 1000:.1f} ms" if took is not None else None,
        took * 1000 < limit_ms if took is not None else None,
    )
    if usable("rest_refresh"):
        rate = by_key["rest_refresh"].rate
        times = rate / SIMPLEJWT_REFRESH_PER_SECOND
        add(
            f"REST refresh vs simplejwt ({SIMPLEJWT_REFRESH_PER_SECOND:.0f}/s)",
            f">= {PEER_FACTOR:g}x",
            f"{rate:,.0f}/s, {times:.1f}x",
            times >= PEER_FACTOR,
        )
    else:
        add(
            f"REST refresh vs simplejwt ({SIMPLEJWT_REFRESH_PER_SECOND:.0f}/s)",
            f">= {PEER_FACTOR:g}x",
            None,
            None,
        )
    title = (
        f"REST logout vs simplejwt / fastapi-users ({SIMPLEJWT_LOGOUT_PER_SECOND:.0f}/s,"
        f" {FASTAPI_USERS_LOGOUT_PER_SECOND:.0f}/s)"
    )
    if usable("rest_logout"):
        rate = by_key["rest_logout"].rate
        low = rate / max(SIMPLEJWT_LOGOUT_PER_SECOND, FASTAPI_USERS_LOGOUT_PER_SECOND)
        measured = (
            f"{rate:,.0f}/s, {rate / SIMPLEJWT_LOGOUT_PER_SECOND:.1f}x /"
            f" {rate / FASTAPI_USERS_LOGOUT_PER_SECOND:.1f}x"
        )
        add(title, f">= {PEER_FACTOR:g}x both", measured, low >= PEER_FACTOR)
    else:
        add(title, f">= {PEER_FACTOR:g}x both", None, None)
    title = f"REST logout-all of {logout_all_size:,} vs fastapi-users ({FASTAPI_USERS_LOGOUT_ALL_MS} ms)"
    row = by_key.get("rest_logout_all")
    took = row.p50 if row is not None and usable("rest_logout_all") else None
    add(
        title,
        f"< {FASTAPI_USERS_LOGOUT_ALL_MS} ms (faster than every peer)",
        f"{took * 1000:.1f} ms" if took is not None else None,
        took * 1000 < FASTAPI_USERS_LOGOUT_ALL_MS if took is not None else None,
    )
    pair = by_key.get("latency_pair")
    title = "REST added latency, Refresh p50, 1 in flight"
    if pair is not None and usable("latency_pair") and pair.result and all(pair.result.per_op.values()):
        direct = statistics.median(pair.result.per_op["grpc"])
        through = statistics.median(pair.result.per_op["rest"])
        added = (through - direct) * 1000
        measured = f"{added:+.2f} ms (gRPC {direct * 1000:.2f} ms, REST {through * 1000:.2f} ms)"
        add(title, f"< +{MAX_ADDED_LATENCY_MS:g} ms", measured, added < MAX_ADDED_LATENCY_MS)
    else:
        add(title, f"< +{MAX_ADDED_LATENCY_MS:g} ms", None, None)
    workers = sorted(
        (row for row in rows if row.key.startswith("workers_") and row.key != "workers_1"),
        key=lambda row: row.key,
    )
    one = by_key.get("workers_1")  # the same load, two client processes, against the one-process server
    for row in workers:
        count = row.key.removeprefix("workers_")
        title = f"Refresh with {count} workers vs 1: server CPU per call"
        if usable("workers_1", row.key) and one is not None:
            cpu_one, cpu_n = one.server_cpu_us, row.server_cpu_us
            measured = (
                f"{row.rate:,.0f}/s vs {one.rate:,.0f}/s; {_us(cpu_n)} µs vs {_us(cpu_one)} µs per call"
            )
            ok = cpu_one is not None and cpu_n is not None and cpu_n <= cpu_one * WORKERS_CPU_SLACK
            add(title, "no more than 1 worker's (+10% noise)", measured, ok)
        else:
            add(title, "no more than 1 worker's (+10% noise)", None, None)
    return out


def render_targets(backend: str, rows: list[Row], logout_all_size: int) -> str:
    lines = [f"| {backend}: row | target | measured | met? |", "|---|---|---|---|"]
    for cells in target_rows(backend, rows, logout_all_size):
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
    backend: str,
    rows: list[Row],
    prepared: Prepared,
    rss: dict[str, float],
    command: str,
    notes: list[str] | None = None,
) -> str:
    counted = ", ".join(f"{size:,} sessions: {count}" for size, count in prepared.statements.items())
    if not any(prepared.statements.values()):
        counted = "not counted (the store runs it on the raw driver, which SQLAlchemy's events do not see)"
    rss_text = ", ".join(f"{name} {value:.0f} MB" for name, value in rss.items())
    logout_all_size = max(prepared.logout_all, default=0)
    return "\n".join(
        [
            f"### {backend}",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs"
            f" ({platform.processor() or platform.machine()}),"
            f" Python {platform.python_version()}; {_versions()}.",
            f"Command: `{command}`. Peak RSS: {rss_text}.",
            f"Statements to revoke all of one user's sessions: {counted}.",
            *(notes or []),
            "",
            render_targets(backend, rows, logout_all_size),
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
