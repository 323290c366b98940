"""The Python client README's examples and the scripts in clients/examples run as written, against a real
`authsvc serve` process (on a free port rather than 50051, the only change made to them)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from authsvc_client import AuthClient, DeadlineExceeded, Unavailable

from tests.clients.conftest import PASSWORD
from tests.ports import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "clients" / "examples"
README_TARGET = "127.0.0.1:50051"


def python_client_section() -> str:
    readme = (ROOT / "clients" / "python" / "README.md").read_text()
    section = readme.split("\n## Examples\n", 1)[1]
    return section.split("\n## ", 1)[0]


def wait_until_serving(target: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with AuthClient(target, timeout=1) as client:
        while True:
            try:
                client.get_jwks()
                return
            except (Unavailable, DeadlineExceeded):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def authsvc_process(tmp_path) -> Iterator[str]:
    """`authsvc serve` in its own process, as `make run` starts it; yields its address."""
    target = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "AUTHSVC_GRPC_LISTEN": target,
        "AUTHSVC_DATA_DIR": str(tmp_path / "data"),
        "AUTHSVC_BCRYPT_ROUNDS": "4",
    }
    with (tmp_path / "authsvc.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "authsvc.cli", "serve"], env=env, stdout=log, stderr=log
        )
        try:
            wait_until_serving(target)
            yield target
        finally:
            process.terminate()
            process.wait(timeout=30)


def run_python(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_python_examples_run_against_a_running_service(authsvc_process, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", python_client_section(), flags=re.DOTALL)
    assert len(blocks) == 3
    outputs = [run_python(block.replace(README_TARGET, authsvc_process), tmp_path) for block in blocks]
    calling, keeping, guarding = outputs
    assert "refused: SESSION_REVOKED" in calling
    assert "1 live sessions" in keeping and "log in again: SESSION_REVOKED" in keeping
    assert "b'you are ada@example.com'" in guarding


def test_the_demo_prints_what_the_readme_shows():
    env = {**os.environ, "AUTHSVC_BCRYPT_ROUNDS": "4"}  # read by the demo's server: only speed changes
    command = [sys.executable, str(EXAMPLES / "demo.py")]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    section = python_client_section()
    shown = section.split(".venv/bin/python clients/examples/demo.py\n", 1)[1].split("```", 1)[0]
    expected = [line.removeprefix("# ") for line in shown.strip().splitlines()]
    printed = done.stdout.strip().splitlines()
    assert len(printed) == len(expected)
    for line, documented in zip(printed, expected, strict=True):
        prefix = documented.split("session ")[0] if "session 5f0c" in documented else documented
        assert line.startswith(prefix), (line, documented)


def test_the_greeter_example_serves_only_callers_with_a_valid_token(authsvc_process):
    listen = f"127.0.0.1:{free_port()}"
    with AuthClient(authsvc_process) as client:
        client.register("ada@example.com", PASSWORD)
        pair = client.login("ada@example.com", PASSWORD)
    greeter = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "greeter.py"), "--auth", authsvc_process, "--listen", listen],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert greeter.stdout is not None
        assert "greeter listening" in greeter.stdout.readline()
        with grpc.insecure_channel(listen) as channel:
            hello = channel.unary_unary("/example.v1.Greeter/Hello", None, None)
            answer = hello(b"", metadata=(("authorization", f"Bearer {pair.access_token}"),), timeout=5)
            assert answer.decode().startswith("hello ada@example.com, role user")
            with pytest.raises(grpc.RpcError) as caught:
                hello(b"", timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        greeter.terminate()
        greeter.wait(timeout=30)


def test_the_greeter_example_exits_quietly_on_ctrl_c(authsvc_process):
    greeter = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "greeter.py"), "--auth", authsvc_process, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert greeter.stdout is not None
        assert "greeter listening" in greeter.stdout.readline()
        greeter.send_signal(signal.SIGINT)
        _, stderr = greeter.communicate(timeout=30)
    finally:
        if greeter.poll() is None:
            greeter.kill()
            greeter.wait()
    assert "Traceback" not in stderr, stderr
    assert greeter.returncode == 0
