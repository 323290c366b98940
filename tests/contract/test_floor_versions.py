"""The contract package and the client import and work at the lowest versions their pyprojects allow.

pip installs exactly the floors (`>=X` of each dependency) into a folder, and a Python that sees only that
folder, the standard library and our sources imports the generated code, encodes and decodes an error,
and builds a client. A floor below what the code needs (say a googleapis-common-protos that caps protobuf
under the version the generated code demands) fails here, not on a user's machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"protos": ROOT / "protos", "clients/python": ROOT / "clients" / "python"}

CHECK = """
import sys
sys.path[:0] = sys.argv[1:]
import grpc, google.protobuf
from authsvc_proto.errors import ErrorReason, details_of, rich_status, word
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
import authsvc_client
status = rich_status(grpc.StatusCode.UNAUTHENTICATED, "no", word(ErrorReason.TOKEN_EXPIRED))
assert details_of(status.trailing_metadata).reason == "TOKEN_EXPIRED"
authsvc_client.AuthClient("127.0.0.1:1").close()
assert auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name["Login"]
print(google.protobuf.__version__, grpc.__version__)
"""


def _floors() -> dict[str, str]:
    """Each third-party dependency's lowest allowed version, from both packages' pyprojects."""
    floors: dict[str, str] = {}
    for folder in PACKAGES.values():
        for spec in tomllib.loads((folder / "pyproject.toml").read_text())["project"]["dependencies"]:
            if spec.startswith("authsvc-"):
                continue  # our own packages: the sources themselves go on the path
            name = re.split(r"[\[<>=~!; ]", spec, maxsplit=1)[0].lower()
            floor = re.search(r"(?:>=|~=|==)\s*([\w.]+)", spec)
            assert floor is not None, f"{spec} has no floor"
            floors[name] = max(floors.get(name, "0"), floor.group(1), key=_version)
    return floors


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def test_the_contract_and_the_client_work_at_their_floor_versions(tmp_path):
    floors = _floors()
    site = tmp_path / "site"
    pins = [f"{name}=={version}" for name, version in sorted(floors.items())]
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(site), *pins],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PIP_CONSTRAINT": ""},
    )
    assert installed.returncode == 0, f"the floors cannot be installed together: {pins}\n{installed.stderr}"
    done = subprocess.run(
        [sys.executable, "-S", "-c", CHECK, str(site), *(str(path) for path in PACKAGES.values())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [floors["protobuf"], floors["grpcio"]]
