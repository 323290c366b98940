"""Schemathesis against the live gateway and the live server: no 5xx, every answer as documented.

The gateway and server run in this test's event loop; schemathesis runs as a subprocess (its CLI), awaited
without blocking that loop. Bounded by a small example count and a time budget (about two minutes at most).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from authsvc.gateway import RunningGateway
from tests.conftest import ServerHandle
from tests.gateway.conftest import running_gateway

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
TIME_BUDGET_SECONDS = 90
MAX_EXAMPLES = 100


@pytest.mark.timeout(TIME_BUDGET_SECONDS + 60)
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    auth_server: ServerHandle, tmp_path: Path
) -> None:
    async with running_gateway(auth_server.target, deadline=10.0) as gateway:
        returncode, output = await _run_schemathesis(gateway, tmp_path)
    (tmp_path / "schemathesis.log").write_text(output)
    assert returncode == 0, output[-20_000:]


async def _run_schemathesis(gateway: RunningGateway, workdir: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        gateway.url + "/api/v1/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "15",
        "--seed",
        "20261127",
        "--workers",
        "1",
        "--suppress-health-check",
        "all",
        "--report-dir",
        str(workdir / "report"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,
        env={"PATH": str(SCHEMATHESIS.parent), "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=TIME_BUDGET_SECONDS + 45)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, stdout.decode(errors="replace")
