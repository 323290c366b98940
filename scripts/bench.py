"""`make bench`: throughput and latency of authsvc per RPC, over gRPC and through the REST gateway.

The server and the gateway run as separate processes on a fresh data directory with the default bcrypt
cost; load comes from separate client processes (scripts/bench_load.py) with a fixed number of calls in
flight. Users and sessions are prepared through the store directly (the same code the server uses),
because logging in thousands of sessions at bcrypt cost 12 would take minutes: say so in the report.
No test asserts a speed; `--quick` shrinks every count so the test suite keeps the script alive.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import bcrypt
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, event

from authsvc.domain.keys import load_or_create_keys
from authsvc.domain.tokens import TokenCodec, token_hash
from authsvc.store import NewSession, User
from authsvc.store.migrate import migrate
from authsvc.store.sql import SqlStore, open_store
from bench_load import LoadResult, LoadSpec, run_load

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password 1"
HASH_THREADS = 2
ISSUER = AUDIENCE = "authsvc"


@dataclass
class Plan:
    seconds: float
    login_seconds: float
    concurrency: int
    login_concurrency: int
    logout_sessions: int
    logout_all_sizes: tuple[int, ...]
    users: int


FULL = Plan(5.0, 10.0, 32, 16, 25_000, (1, 100, 1_000, 10_000), 16)
QUICK = Plan(0.5, 1.0, 8, 4, 300, (1, 10), 2)


@dataclass
class Row:
    scenario: str
    result: LoadResult | None = None
    note: str = ""
    calls_per_second: float | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- preparation: users and sessions through the store ------------------------------------------------


class Prepared:
    def __init__(self) -> None:
        self.credentials: list[tuple[str, str]] = []
        self.pools: dict[str, list[str]] = {}
        self.logout_all: dict[int, str] = {}
        self.statements: dict[int, int] = {}


async def _sessions(store: SqlStore, codec: TokenCodec, user_id: str, count: int) -> list[tuple[str, str]]:
    now = datetime.now(UTC)
    expires = now + timedelta(days=30)
    pairs = []
    for _ in range(count):
        sid = str(uuid.uuid4())
        token = codec.mint_refresh(user_id=user_id, session_id=sid, generation=0, issued_at=now, expires_at=expires)
        pairs.append((sid, token))
    await asyncio.gather(
        *(store.create_session(NewSession(sid, user_id, token_hash(t), now, expires, "bench", "127.0.0.1")) for sid, t in pairs)
    )
    return pairs


async def _user(store: SqlStore, password_hash: str) -> User:
    user = User(str(uuid.uuid4()), f"bench-{uuid.uuid4().hex[:12]}@example.com", password_hash, "user", datetime.now(UTC))
    await store.create_user(user)
    return user


async def prepare(database_url: str, keys_dir: Path, plan: Plan, rounds: int) -> Prepared:
    await migrate(database_url)
    codec = TokenCodec(load_or_create_keys(keys_dir, datetime.now(UTC)), ISSUER, AUDIENCE)
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode()
    prepared = Prepared()
    store = await open_store(database_url)
    try:
        for _ in range(plan.users):
            prepared.credentials.append(((await _user(store, password_hash)).email, PASSWORD))
        worker = await _user(store, password_hash)
        for pool, count in {
            "refresh": plan.concurrency,
            "refresh_1": 1,
            "logout": plan.logout_sessions,
            "mixed": plan.concurrency + plan.logout_sessions // 20,
            "under_load": 4,
            "rest_refresh": plan.concurrency,
            "rest_refresh_1": 1,
            "rest_logout": plan.logout_sessions,
        }.items():
            prepared.pools[pool] = [token for _, token in await _sessions(store, codec, worker.id, count)]
        now = datetime.now(UTC)
        for size in plan.logout_all_sizes:
            owner = await _user(store, password_hash)
            sid, _ = (await _sessions(store, codec, owner.id, size))[0]
            prepared.logout_all[size] = codec.mint_access(
                user_id=owner.id, session_id=sid, email=owner.email, role="user", now=now, ttl=timedelta(hours=1)
            )
        prepared.statements = await _count_logout_all_statements(store, codec, password_hash, plan)
    finally:
        await store.close()
    return prepared


async def _count_logout_all_statements(
    store: SqlStore, codec: TokenCodec, password_hash: str, plan: Plan
) -> dict[int, int]:
    """Statements the store runs to revoke all of one user's sessions, by number of sessions."""
    counts: dict[int, int] = {}
    seen: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("SELECT", "UPDATE", "INSERT", "DELETE"):
            seen.append(statement)

    for size in (plan.logout_all_sizes[0], plan.logout_all_sizes[-1]):
        owner = await _user(store, password_hash)
        await _sessions(store, codec, owner.id, size)
        seen.clear()
        event.listen(Engine, "before_cursor_execute", _count)
        try:
            revoked = await store.revoke_all_sessions(owner.id, "bench", datetime.now(UTC))
        finally:
            event.remove(Engine, "before_cursor_execute", _count)
        assert revoked == size, (revoked, size)
        counts[size] = len(seen)
    return counts


# -- processes -----------------------------------------------------------------------------------------


def _start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "authsvc"), "serve"], env=env, stdout=out, stderr=out)


def _start_gateway(env: dict[str, str], log: Path) -> subprocess.Popen[bytes] | None:
    script = ROOT / "scripts" / "rest_gateway.py"
    if not script.exists():
        return None
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, str(script)], env=env, stdout=out, stderr=out)


def _wait_grpc(target: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError("the server did not become SERVING")


def _wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback URL we built)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


# -- scenarios -----------------------------------------------------------------------------------------


def _raw_bcrypt(seconds: float, rounds: int, threads: int) -> float:
    """checkpw calls per second on `threads` threads, as the server's hashing pool runs them."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    deadline = time.perf_counter() + seconds
    done = [0] * threads

    def spin(index: int) -> None:
        while time.perf_counter() < deadline:
            bcrypt.checkpw(PASSWORD.encode(), hashed)
            done[index] += 1

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(spin, range(threads)))
    return sum(done) / (time.perf_counter() - started)


def _run(pool: concurrent.futures.Executor, *specs: LoadSpec) -> list[LoadResult]:
    return [future.result() for future in [pool.submit(run_load, spec) for spec in specs]]


def run_scenarios(
    grpc_target: str, rest_base: str | None, prepared: Prepared, plan: Plan, rounds: int
) -> list[Row]:
    rows: list[Row] = []
    c, s = plan.concurrency, plan.seconds
    creds = prepared.credentials
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        _run(pool, LoadSpec("health", grpc_target, 4, 0.3))  # warm the client process
        for title, spec in [
            (f"gRPC empty call (Health/Check), {c} in flight: the ceiling", LoadSpec("health", grpc_target, c, s)),
            (f"gRPC Refresh, {c} in flight", LoadSpec("refresh", grpc_target, c, s, refresh_tokens=prepared.pools["refresh"])),
            (f"gRPC Logout, {c} in flight", LoadSpec("logout", grpc_target, c, s, refresh_tokens=prepared.pools["logout"])),
            ("gRPC Refresh, 1 in flight", LoadSpec("refresh", grpc_target, 1, s, refresh_tokens=prepared.pools["refresh_1"])),
            (
                f"gRPC Login, {plan.login_concurrency} clients at once",
                LoadSpec("login", grpc_target, plan.login_concurrency, plan.login_seconds, credentials=creds),
            ),
        ]:
            rows.append(Row(title, _run(pool, spec)[0]))
        raw = _raw_bcrypt(plan.seconds, rounds, HASH_THREADS)
        rows.append(Row(f"raw bcrypt checkpw, cost {rounds}, {HASH_THREADS} threads (no server)", calls_per_second=raw))
        for size, access in prepared.logout_all.items():
            result = _run(pool, LoadSpec("logout_all", grpc_target, 1, 60, access_tokens=[access]))[0]
            rows.append(Row(f"gRPC LogoutAll of a user with {size:,} sessions (one call)", result))
        logins, refreshes = _run(
            pool,
            LoadSpec("login", grpc_target, plan.login_concurrency, plan.login_seconds, credentials=creds),
            LoadSpec("refresh", grpc_target, 4, plan.login_seconds, refresh_tokens=prepared.pools["under_load"]),
        )
        rows.append(Row(f"gRPC Refresh, 4 in flight, while {plan.login_concurrency} clients log in", refreshes))
        rows.append(Row(f"  the Logins running meanwhile", logins))
        mixed = _run(
            pool,
            LoadSpec("mixed", grpc_target, c, plan.login_seconds, credentials=creds, refresh_tokens=prepared.pools["mixed"]),
        )[0]
        rows.append(Row(f"gRPC mixed 90% Refresh / 9% Login / 1% Logout, {c} in flight", mixed))
        for op, latencies in sorted(mixed.per_op.items()):
            rows.append(Row(f"  of which {op}", LoadResult(op, latencies, {}, mixed.elapsed)))
        if rest_base is not None:
            for title, spec in [
                (f"REST GET /healthz (gateway + Health/Check), {c} in flight", LoadSpec("rest_health", rest_base, c, s)),
                (f"REST refresh, {c} in flight", LoadSpec("rest_refresh", rest_base, c, s, refresh_tokens=prepared.pools["rest_refresh"])),
                (f"REST logout, {c} in flight", LoadSpec("rest_logout", rest_base, c, s, refresh_tokens=prepared.pools["rest_logout"])),
                ("REST refresh, 1 in flight", LoadSpec("rest_refresh", rest_base, 1, s, refresh_tokens=prepared.pools["rest_refresh_1"])),
                (
                    f"REST login, {plan.login_concurrency} clients at once",
                    LoadSpec("rest_login", rest_base, plan.login_concurrency, plan.login_seconds, credentials=creds),
                ),
            ]:
                rows.append(Row(title, _run(pool, spec)[0]))
    return rows


# -- report --------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value * 1000:.1f}" if value < 10 else f"{value * 1000:.0f}"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def render_table(rows: list[Row]) -> str:
    ceiling = next((r.result for r in rows if r.result is not None and r.result.kind == "health"), None)
    ceiling_rate = len(ceiling.latencies) / ceiling.elapsed if ceiling else None
    lines = [
        "| scenario | calls | calls/s | p50 ms | p99 ms | max ms | errors | vs ceiling |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        if row.result is None:
            rate = row.calls_per_second or 0.0
            lines.append(f"| {row.scenario} | | {rate:,.1f} | | | | | |")
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
        lines.append(
            f"| {row.scenario} | {len(result.latencies):,} | {rate:,.0f} | {p50} | {p99} | {worst} | {errors} | {ratio} |"
        )
    return "\n".join(lines)


def _versions() -> str:
    names = ["grpcio", "protobuf", "sqlalchemy", "aiosqlite", "asyncpg", "pyjwt", "cryptography", "bcrypt", "aiohttp"]
    return ", ".join(f"{name} {metadata.version(name)}" for name in names)


def render_report(backend: str, rows: list[Row], prepared: Prepared, rss: dict[str, float], command: str) -> str:
    statements = ", ".join(f"{size:,} sessions: {count}" for size, count in prepared.statements.items())
    rss_text = ", ".join(f"{name} {value:.0f} MB" for name, value in rss.items())
    return "\n".join(
        [
            f"### {backend}",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}),"
            f" Python {platform.python_version()}; {_versions()}.",
            f"Command: `{command}`. Peak RSS: {rss_text}.",
            f"Statements to revoke all of one user's sessions: {statements}.",
            "Users and sessions were prepared through the store directly, not by Login (bcrypt cost 12).",
            "",
            render_table(rows),
            "",
        ]
    )


def _write_section(path: Path, backend: str, report: str) -> None:
    begin, end = f"<!-- bench:{backend} -->", f"<!-- /bench:{backend} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by `make bench` (scripts/bench.py).\n\n"
    block = f"{begin}\n{report}{end}\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary data directory")
    parser.add_argument("--quick", action="store_true", help="shrink every count: a smoke run")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--output", type=Path, help="Markdown file to update (default docs/benchmarks.md, none with --quick)")
    parser.add_argument("--no-rest", action="store_true", help="skip the gateway scenarios")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    output = args.output or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    workdir = Path(tempfile.mkdtemp(prefix="authsvc-bench-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir}/authsvc.db"
    backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    grpc_port, http_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "AUTHSVC_DATA_DIR": str(workdir),
        "AUTHSVC_DATABASE_URL": database_url,
        "AUTHSVC_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
        "AUTHSVC_GRPC_TARGET": f"127.0.0.1:{grpc_port}",
        "AUTHSVC_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "AUTHSVC_BCRYPT_ROUNDS": str(args.bcrypt_rounds),
        "AUTHSVC_HASH_THREADS": str(HASH_THREADS),
    }
    print(f"preparing users and sessions on {backend} ...", flush=True)
    prepared = asyncio.run(prepare(database_url, workdir / "keys", plan, args.bcrypt_rounds))
    server = _start_server(env, workdir / "server.log")
    gateway = None
    try:
        _wait_grpc(env["AUTHSVC_GRPC_TARGET"], server)
        rest_base = None
        if not args.no_rest:
            gateway = _start_gateway(env, workdir / "gateway.log")
            if gateway is not None:
                rest_base = f"http://127.0.0.1:{http_port}"
                _wait_http(rest_base + "/healthz")
        print("running scenarios ...", flush=True)
        rows = run_scenarios(env["AUTHSVC_GRPC_TARGET"], rest_base, prepared, plan, args.bcrypt_rounds)
        rss = {"server": _peak_rss_mb(server.pid)}
        if gateway is not None:
            rss["gateway"] = _peak_rss_mb(gateway.pid)
    finally:
        _stop(gateway)
        _stop(server)
    command = "python scripts/bench.py " + " ".join(sys.argv[1:])
    report = render_report(backend, rows, prepared, rss, command.strip())
    print(report)
    if output is not None:
        _write_section(output, backend.lower(), report)
        print(f"written to {output}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
