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
from collections import Counter
from pathlib import Path

import bcrypt
import grpc
from bench_load import LoadResult, LoadSpec, run_load
from bench_prepare import FULL, PASSWORD, QUICK, Plan, Prepared, prepare
from bench_report import Row, render_report, write_section
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
HASH_THREADS = 2
STARTED = time.monotonic()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: robust to other load on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of every process below it (a server's workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    tree, total = [pid], 0.0
    while tree:
        current = tree.pop()
        try:
            total += _cpu_seconds(current)
        except OSError:
            continue
        tree.extend(child for child, parent in parents.items() if parent == current)
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- processes -----------------------------------------------------------------------------------------


def _start_server(env: dict[str, str], log: Path, *flags: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "authsvc"), "serve", *flags], env=env, stdout=out, stderr=out
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
    process.terminate()  # a server with workers stops them on SIGTERM
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:160].replace("|", "/") if lines else "no output"


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


class Runner:
    """Runs load specs in client processes and reads the server's (and gateway's) CPU time around them."""

    def __init__(self, pool: concurrent.futures.Executor, server_pid: int, gateway_pid: int | None) -> None:
        self.pool = pool
        self.server_pid = server_pid
        self.gateway_pid = gateway_pid

    def run(self, title: str, *specs: LoadSpec, key: str = "") -> list[Row]:
        """One row per spec, run at the same time; CPU goes to the first row (the scenario's calls)."""
        print(f"  {time.monotonic() - STARTED:5.0f} s  {title}", flush=True)
        server_before = _tree_cpu_seconds(self.server_pid)
        gateway_before = _cpu_seconds(self.gateway_pid) if self.gateway_pid else 0.0
        results = [future.result() for future in [self.pool.submit(run_load, spec) for spec in specs]]
        server = _tree_cpu_seconds(self.server_pid) - server_before
        gateway = _cpu_seconds(self.gateway_pid) - gateway_before if self.gateway_pid else None
        rows = [Row(title, results[0], server_cpu_seconds=server, gateway_cpu_seconds=gateway, key=key)]
        rows.extend(Row("", result) for result in results[1:])
        return rows

    def run_split(self, title: str, spec: LoadSpec, processes: int, key: str = "") -> Row:
        """One spec's calls in flight spread over several client processes, merged into one row."""
        share = spec.concurrency // processes
        specs = [
            LoadSpec(
                spec.kind,
                spec.target,
                share,
                spec.seconds,
                refresh_tokens=spec.refresh_tokens[index * share : (index + 1) * share],
                seed=index,
                connections=spec.connections,
            )
            for index in range(processes)
        ]
        rows = self.run(title, *specs, key=key)
        merged = LoadResult(
            spec.kind,
            [latency for row in rows if row.result for latency in row.result.latencies],
            dict(sum((Counter(row.result.errors) for row in rows if row.result), Counter())),
            max(row.result.elapsed for row in rows if row.result),
        )
        return Row(title, merged, server_cpu_seconds=rows[0].server_cpu_seconds, key=key)


def grpc_rows(runner: Runner, target: str, prepared: Prepared, plan: Plan, rounds: int) -> list[Row]:
    c, s = plan.concurrency, plan.seconds
    creds, pools = prepared.credentials, prepared.pools
    rows: list[Row] = []
    runner.run("warm-up", LoadSpec("health", target, 4, 0.3))
    rows += runner.run(
        f"gRPC empty call (Health/Check), {c} in flight: the ceiling",
        LoadSpec("health", target, c, s),
        key="health",
    )
    rows += runner.run(
        f"gRPC Refresh, {c} in flight",
        LoadSpec("refresh", target, c, s, refresh_tokens=pools["refresh"]),
        key="refresh",
    )
    rows += runner.run(
        f"gRPC Logout, {c} in flight",
        LoadSpec("logout", target, c, s, refresh_tokens=pools["logout"]),
        key="logout",
    )
    rows += runner.run(
        "gRPC Refresh, 1 in flight", LoadSpec("refresh", target, 1, s, refresh_tokens=pools["refresh_1"])
    )
    rows += runner.run(
        f"gRPC Login, {plan.login_concurrency} clients at once",
        LoadSpec("login", target, plan.login_concurrency, plan.login_seconds, credentials=creds),
        key="login",
    )
    raw = _raw_bcrypt(plan.seconds, rounds, HASH_THREADS)
    rows.append(
        Row(f"raw bcrypt checkpw, cost {rounds}, {HASH_THREADS} threads (no server)", calls_per_second=raw)
    )
    largest = max(prepared.logout_all)
    for size, access in sorted(prepared.logout_all.items()):
        rows += runner.run(
            f"gRPC LogoutAll of a user with {size:,} sessions (one call)",
            LoadSpec("logout_all", target, 1, 60, access_tokens=[access]),
            key="logout_all" if size == largest else "",
        )
    refreshes, logins = runner.run(
        f"gRPC Refresh, 4 in flight, while {plan.login_concurrency} clients log in",
        LoadSpec("refresh", target, 4, plan.login_seconds, refresh_tokens=pools["under_load"]),
        LoadSpec("login", target, plan.login_concurrency, plan.login_seconds, credentials=creds),
    )
    refreshes.server_cpu_seconds = None  # shared with the Logins: no per-call figure
    logins.scenario = "  the Logins running meanwhile"
    rows += [refreshes, logins]
    # Half the calls in flight: with all of them, the Logins queued behind two hash threads outgrow the
    # server's queue limit (RESOURCE_EXHAUSTED) and their tail outlasts the scenario many times over.
    mixed_c = max(1, c // 2)
    [mixed] = runner.run(
        f"gRPC mixed 90% Refresh / 9% Login / 1% Logout, {mixed_c} in flight",
        LoadSpec(
            "mixed", target, mixed_c, plan.login_seconds, credentials=creds, refresh_tokens=pools["mixed"]
        ),
    )
    rows.append(mixed)
    assert mixed.result is not None
    for op, latencies in sorted(mixed.result.per_op.items()):
        rows.append(Row(f"  of which {op}", LoadResult(op, latencies, {}, mixed.result.elapsed)))
    return rows


def _spread(spec: LoadSpec) -> LoadSpec:
    """`spec` over 8 connections per client process: the kernel hands each connection to one of the
    workers sharing the port, so two connections could all land on one worker."""
    spec.connections = 8
    return spec


def one_process_row(runner: Runner, target: str, prepared: Prepared, plan: Plan) -> Row:
    """The load of the workers' row against the one-process server: run last, next to it in time."""
    return runner.run_split(
        f"gRPC Refresh, {plan.concurrency} in flight from 2 client processes, 1 server process",
        _spread(
            LoadSpec(
                "refresh",
                target,
                plan.concurrency,
                plan.seconds,
                refresh_tokens=prepared.pools["workers_refresh_1"],
            )
        ),
        2,
        key="workers_1",
    )


def rest_rows(runner: Runner, base: str, target: str, prepared: Prepared, plan: Plan) -> list[Row]:
    c, rc, s = plan.concurrency, plan.rest_concurrency, plan.seconds
    pools = prepared.pools
    rows: list[Row] = []
    rows += runner.run(
        f"REST GET /healthz (gateway + Health/Check), {c} in flight", LoadSpec("rest_health", base, c, s)
    )
    rows += runner.run(
        f"REST refresh, {rc} clients",
        LoadSpec("rest_refresh", base, rc, s, refresh_tokens=pools["rest_refresh"]),
        key="rest_refresh",
    )
    rows += runner.run(
        f"REST logout, {rc} clients",
        LoadSpec("rest_logout", base, rc, s, refresh_tokens=pools["rest_logout"]),
        key="rest_logout",
    )
    [pair] = runner.run(
        "gRPC and REST Refresh, 1 in flight, alternating (the added latency)",
        LoadSpec("latency_pair", target, 1, s, refresh_tokens=pools["latency_pair"], rest_target=base),
        key="latency_pair",
    )
    rows.append(pair)
    assert pair.result is not None
    for op, title in (("grpc", "  of which gRPC, straight to the server"), ("rest", "  of which REST")):
        part = Row(title, LoadResult(op, pair.result.per_op.get(op, []), {}, pair.result.elapsed))
        if op == "rest":  # the gateway worked for these calls only
            part.gateway_cpu_seconds, pair.gateway_cpu_seconds = pair.gateway_cpu_seconds, None
        rows.append(part)
    rows += runner.run(
        f"REST login, {plan.login_concurrency} clients at once",
        LoadSpec(
            "rest_login", base, plan.login_concurrency, plan.login_seconds, credentials=prepared.credentials
        ),
    )
    for size, access in prepared.rest_logout_all.items():
        rows += runner.run(
            f"REST logout-all of a user with {size:,} sessions (one call)",
            LoadSpec("rest_logout_all", base, 1, 60, access_tokens=[access]),
            key="rest_logout_all",
        )
    return rows


def worker_rows(
    pool: concurrent.futures.Executor,
    env: dict[str, str],
    workdir: Path,
    prepared: Prepared,
    plan: Plan,
    workers: int,
) -> list[Row]:
    """Refresh against `authsvc serve --workers N` on a port of its own; "not available" when the server
    refuses the flag or fails to start with it (it exits at once)."""
    title = f"gRPC Refresh, {plan.concurrency} in flight from 2 client processes, {workers} server workers"
    port = _free_port()
    env = {**env, "AUTHSVC_GRPC_LISTEN": f"127.0.0.1:{port}"}
    log = workdir / "server-workers.log"
    server = _start_server(env, log, "--workers", str(workers))
    try:
        try:
            _wait_grpc(f"127.0.0.1:{port}", server)
        except RuntimeError as exc:
            _stop(server)
            return [Row(title, key=f"workers_{workers}", missing=f"{exc}: {_last_line(log)}")]
        runner = Runner(pool, server.pid, None)
        target = f"127.0.0.1:{port}"
        # Every worker opens its store connections and warms up on its first calls: not measured.
        warm = prepared.pools["workers_warm"]
        runner.run_split(
            "warm-up", _spread(LoadSpec("refresh", target, len(warm), 1.0, refresh_tokens=warm)), 2
        )
        spec = LoadSpec(
            "refresh",
            target,
            plan.concurrency,
            plan.seconds,
            refresh_tokens=prepared.pools["workers_refresh_n"],
        )
        return [runner.run_split(title, _spread(spec), 2, key=f"workers_{workers}")]
    finally:
        _stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url",
        help="default: a fresh SQLite file in a temporary data directory; for PostgreSQL,"
        " postgresql+asyncpg://USER@HOST:PORT/DB (an existing database; the bench adds its own users)",
    )
    parser.add_argument("--quick", action="store_true", help="shrink every count: a smoke run")
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument(
        "--output", type=Path, help="Markdown file to update (default docs/benchmarks.md, none with --quick)"
    )
    parser.add_argument("--no-rest", action="store_true", help="skip the gateway scenarios")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="also measure Refresh against `authsvc serve --workers N` (default 2; 0 skips it)",
    )
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
    started = time.monotonic()
    print(f"preparing users and sessions on {backend} ...", flush=True)
    prepared = asyncio.run(prepare(database_url, workdir / "keys", plan, args.bcrypt_rounds))
    print(f"prepared in {time.monotonic() - started:.0f} s; running scenarios ...", flush=True)
    server = _start_server(env, workdir / "server.log")
    gateway = None
    rss: dict[str, float] = {}
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            _wait_grpc(env["AUTHSVC_GRPC_TARGET"], server)
            rest_base = None
            if not args.no_rest:
                gateway = _start_gateway(env, workdir / "gateway.log")
                if gateway is not None:
                    rest_base = f"http://127.0.0.1:{http_port}"
                    _wait_http(rest_base + "/healthz")
            target = env["AUTHSVC_GRPC_TARGET"]
            rows = grpc_rows(Runner(pool, server.pid, None), target, prepared, plan, args.bcrypt_rounds)
            if rest_base is not None and gateway is not None:
                rest_runner = Runner(pool, server.pid, gateway.pid)
                rows += rest_rows(rest_runner, rest_base, target, prepared, plan)
            if args.workers > 0:
                rows.append(one_process_row(Runner(pool, server.pid, None), target, prepared, plan))
            rss["server"] = _peak_rss_mb(server.pid)
            if gateway is not None:
                rss["gateway"] = _peak_rss_mb(gateway.pid)
        finally:
            _stop(gateway)
            _stop(server)
        if args.workers > 0:
            rows += worker_rows(pool, env, workdir, prepared, plan, args.workers)
    command = "python scripts/bench.py " + " ".join(sys.argv[1:])
    notes = [
        f"Users and sessions were prepared through the store directly, not by Login (bcrypt cost"
        f" {args.bcrypt_rounds}).",
        f"Load: gRPC through grpc.aio clients, REST through a minimal keep-alive HTTP/1.1 client"
        f" (scripts/bench_load.py), each in its own process. Whole run: {time.monotonic() - started:.0f} s.",
        "CPU per call is read from /proc in 10 ms ticks (summed over a server's workers), so a single"
        " short call (LogoutAll of few sessions) shows none; REST rows also give the gateway's.",
    ]
    report = render_report(backend, rows, prepared, rss, command.strip(), notes)
    print(report)
    if output is not None:
        write_section(output, backend.lower(), report)
        print(f"written to {output}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
