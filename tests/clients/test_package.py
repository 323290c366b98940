"""The client library's public names are pinned, and it works without the server package installed."""

from __future__ import annotations

import subprocess
import sys

import authsvc_client
import pytest


def test_the_client_exports_exactly_its_public_names():
    assert sorted(authsvc_client.__all__) == [
        "Account",
        "AlreadyExists",
        "AsyncAuthClient",
        "AsyncTokenKeeper",
        "AuthClient",
        "AuthServiceError",
        "BearerGuard",
        "BlockingBearerGuard",
        "DeadlineExceeded",
        "GuardError",
        "GuardInterceptor",
        "Introspection",
        "InvalidArgument",
        "InvalidCredentials",
        "InvalidToken",
        "NO_RETRIES",
        "NotFound",
        "PermissionDenied",
        "Profile",
        "RetryPolicy",
        "Session",
        "SessionEnded",
        "Throttled",
        "Tls",
        "TokenKeeper",
        "TokenPair",
        "Unauthenticated",
        "Unavailable",
        "User",
        "UserStatus",
        "current_user",
    ]
    for name in authsvc_client.__all__:
        assert getattr(authsvc_client, name) is not None


BLOCKED_SERVER = """
import importlib.abc, sys

class NoServer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "authsvc" or name.startswith("authsvc."):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, NoServer())
import authsvc_client
from authsvc_client import AuthClient
from authsvc_proto.v1 import auth_pb2
AuthClient("127.0.0.1:1").close()
print(auth_pb2.TokenPair.__module__, sorted(m for m in sys.modules if m.split(".")[0] == "authsvc"))
"""


@pytest.mark.slow
def test_the_client_imports_and_builds_a_client_with_the_contract_package_but_not_the_server(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_SERVER], check=False, capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["authsvc_proto.v1.auth_pb2", "[]"]
