"""`make bench` stays alive: a --quick run completes every scenario without a failed call.

It asserts no speed (the numbers live in docs/benchmarks.md); it only keeps the script working.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_a_quick_benchmark_runs_every_scenario_without_errors(tmp_path):
    report = tmp_path / "benchmarks.md"
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--quick",
            "--bcrypt-rounds",
            "6",
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = [line for line in report.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    scenarios = {row.split(" | ")[0].lstrip("| ") for row in rows[1:]}
    for expected in (
        "gRPC empty call",
        "gRPC Refresh",
        "gRPC Logout",
        "gRPC Login",
        "raw bcrypt",
        "gRPC LogoutAll",
    ):
        assert any(name.startswith(expected) for name in scenarios), (expected, scenarios)
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if cells[1]:  # a load row: some calls, and no errors
            assert int(cells[1].replace(",", "")) > 0, row
            assert cells[6] == "0", row
