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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import bcrypt
import grpc
from bench_load import LoadResult, LoadSpec, run_load
from bench_prepare import FULL, PASSWORD, QUICK, Plan, Prepared, prepare
from bench_report import Row, render_report, write_section
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
HASH_THREADS = 2


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: robust to other load on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- processes -----------------------------------------------------------------------------------------


def _start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "authsvc"), "serve"], env=env, stdout=out, stderr=out
        )


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
                if (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError("the server did not become SERVING")


def _wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
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


def run_scenarios(
    grpc_target: str, rest_base: str | None, prepared: Prepared, plan: Plan, rounds: int, server_pid: int
) -> list[Row]:
    rows: list[Row] = []
    cpu_used = [0.0]

    def _run(pool: concurrent.futures.Executor, *specs: LoadSpec) -> list[LoadResult]:
        before = _cpu_seconds(server_pid)
        results = [future.result() for future in [pool.submit(run_load, spec) for spec in specs]]
        cpu_used[0] = _cpu_seconds(server_pid) - before
        return results

    c, s = plan.concurrency, plan.seconds
    creds = prepared.credentials
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        _run(pool, LoadSpec("health", grpc_target, 4, 0.3))  # warm the client process
        for title, spec in [
            (
                f"gRPC empty call (Health/Check), {c} in flight: the ceiling",
                LoadSpec("health", grpc_target, c, s),
            ),
            (
                f"gRPC Refresh, {c} in flight",
                LoadSpec("refresh", grpc_target, c, s, refresh_tokens=prepared.pools["refresh"]),
            ),
            (
                f"gRPC Logout, {c} in flight",
                LoadSpec("logout", grpc_target, c, s, refresh_tokens=prepared.pools["logout"]),
            ),
            (
                "gRPC Refresh, 1 in flight",
                LoadSpec("refresh", grpc_target, 1, s, refresh_tokens=prepared.pools["refresh_1"]),
            ),
            (
                f"gRPC Login, {plan.login_concurrency} clients at once",
                LoadSpec("login", grpc_target, plan.login_concurrency, plan.login_seconds, credentials=creds),
            ),
        ]:
            rows.append(Row(title, _run(pool, spec)[0], server_cpu_seconds=cpu_used[0]))
        raw = _raw_bcrypt(plan.seconds, rounds, HASH_THREADS)
        rows.append(
            Row(
                f"raw bcrypt checkpw, cost {rounds}, {HASH_THREADS} threads (no server)", calls_per_second=raw
            )
        )
        for size, access in prepared.logout_all.items():
            result = _run(pool, LoadSpec("logout_all", grpc_target, 1, 60, access_tokens=[access]))[0]
            rows.append(Row(f"gRPC LogoutAll of a user with {size:,} sessions (one call)", result))
        logins, refreshes = _run(
            pool,
            LoadSpec("login", grpc_target, plan.login_concurrency, plan.login_seconds, credentials=creds),
            LoadSpec(
                "refresh", grpc_target, 4, plan.login_seconds, refresh_tokens=prepared.pools["under_load"]
            ),
        )
        rows.append(
            Row(f"gRPC Refresh, 4 in flight, while {plan.login_concurrency} clients log in", refreshes)
        )
        rows.append(Row("  the Logins running meanwhile", logins))
        mixed = _run(
            pool,
            LoadSpec(
                "mixed",
                grpc_target,
                c,
                plan.login_seconds,
                credentials=creds,
                refresh_tokens=prepared.pools["mixed"],
            ),
        )[0]
        rows.append(Row(f"gRPC mixed 90% Refresh / 9% Login / 1% Logout, {c} in flight", mixed))
        for op, latencies in sorted(mixed.per_op.items()):
            rows.append(Row(f"  of which {op}", LoadResult(op, latencies, {}, mixed.elapsed)))
        if rest_base is not None:
            for title, spec in [
                (
                    f"REST GET /healthz (gateway + Health/Check), {c} in flight",
                    LoadSpec("rest_health", rest_base, c, s),
                ),
                (
                    f"REST refresh, {c} in flight",
                    LoadSpec("rest_refresh", rest_base, c, s, refresh_tokens=prepared.pools["rest_refresh"]),
                ),
                (
                    f"REST logout, {c} in flight",
                    LoadSpec("rest_logout", rest_base, c, s, refresh_tokens=prepared.pools["rest_logout"]),
                ),
                (
                    "REST refresh, 1 in flight",
                    LoadSpec(
                        "rest_refresh", rest_base, 1, s, refresh_tokens=prepared.pools["rest_refresh_1"]
                    ),
                ),
                (
                    f"REST login, {plan.login_concurrency} clients at once",
                    LoadSpec(
                        "rest_login", rest_base, plan.login_concurrency, plan.login_seconds, credentials=creds
                    ),
                ),
            ]:
                rows.append(Row(title, _run(pool, spec)[0], server_cpu_seconds=cpu_used[0]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary data directory")
    parser.add_argument("--quick", action="store_true", help="shrink every count: a smoke run")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument(
        "--output", type=Path, help="Markdown file to update (default docs/benchmarks.md, none with --quick)"
    )
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
        rows = run_scenarios(
            env["AUTHSVC_GRPC_TARGET"], rest_base, prepared, plan, args.bcrypt_rounds, server.pid
        )
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
        write_section(output, backend.lower(), report)
        print(f"written to {output}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
