"""The OpenAPI document is usable: openapi-python-client generates a client from the live gateway's
document, and that client registers, logs in, refreshes and logs out against the real server.

The generator runs as a subprocess (its CLI), awaited without blocking the event loop the gateway serves
the document from; it reads the document from the gateway and nothing else from the network, and runs no
formatter (`post_hooks: []`), so it needs nothing on PATH. `--fail-on-warning`: a part of the document it
cannot turn into code fails the test instead of leaving a hole in the client.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from authsvc.gateway import RunningGateway
from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway

pytestmark = pytest.mark.slow

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "authsvc_openapi_client"
GENERATOR_CONFIG = f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\npost_hooks: []\n"
GENERATE_TIMEOUT_SECONDS = 90


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The client's calls, not the store, are under test: SQLite alone (the REST suites cover both stores).
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'authsvc.db'}"


@pytest.fixture
def forget_generated_package() -> Iterator[None]:
    """Drop the generated package from sys.modules afterwards, so that no other test imports a stale one."""
    yield
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.mark.timeout(GENERATE_TIMEOUT_SECONDS + 60)
@pytest.mark.usefixtures("forget_generated_package")
async def test_a_client_generated_from_the_document_runs_register_login_refresh_and_logout(
    auth_server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(auth_server.target) as gateway:
        await _generate_client(gateway, tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        generated = importlib.import_module(PACKAGE)
        api = importlib.import_module(f"{PACKAGE}.api.auth_service")
        models = importlib.import_module(f"{PACKAGE}.models")
        for operation in ("register", "login", "refresh", "logout"):
            importlib.import_module(f"{PACKAGE}.api.auth_service.auth_service_{operation}")

        async with generated.Client(base_url=gateway.url, raise_on_unexpected_status=True) as client:
            await _run_the_session(client, api, models)


async def _run_the_session(client: object, api: ModuleType, models: ModuleType) -> None:
    registered = await api.auth_service_register.asyncio_detailed(
        client=client, body=models.AuthsvcV1RegisterRequest(email=" Ada@Example.com ", password=PASSWORD)
    )
    assert registered.status_code == 201
    assert isinstance(registered.parsed, models.AuthsvcV1RegisterResponse)
    assert registered.parsed.email == "ada@example.com"

    logged_in = await api.auth_service_login.asyncio_detailed(
        client=client, body=models.AuthsvcV1LoginRequest(email="ada@example.com", password=PASSWORD)
    )
    assert logged_in.status_code == 200
    pair = logged_in.parsed
    assert isinstance(pair, models.AuthsvcV1TokenPair)
    assert pair.token_type == "Bearer"

    refreshed = await api.auth_service_refresh.asyncio_detailed(
        client=client, body=models.AuthsvcV1RefreshRequest(refresh_token=pair.refresh_token)
    )
    assert refreshed.status_code == 200
    new_pair = refreshed.parsed
    assert isinstance(new_pair, models.AuthsvcV1TokenPair)
    assert new_pair.session_id == pair.session_id
    assert new_pair.refresh_token != pair.refresh_token

    logged_out = await api.auth_service_logout.asyncio_detailed(
        client=client, body=models.AuthsvcV1LogoutRequest(refresh_token=new_pair.refresh_token)
    )
    assert logged_out.status_code == 200
    assert isinstance(logged_out.parsed, models.AuthsvcV1LogoutResponse)
    assert logged_out.parsed.message == "Logged out successfully"

    # Refusals come back as the documented Error model, with the reason word to branch on.
    after_logout = await api.auth_service_refresh.asyncio_detailed(
        client=client, body=models.AuthsvcV1RefreshRequest(refresh_token=new_pair.refresh_token)
    )
    assert after_logout.status_code == 401
    assert isinstance(after_logout.parsed, models.Error)
    assert (after_logout.parsed.code, after_logout.parsed.reason) == ("UNAUTHENTICATED", "SESSION_REVOKED")

    weak = await api.auth_service_register.asyncio_detailed(
        client=client, body=models.AuthsvcV1RegisterRequest(email="bob@example.com", password="short")
    )
    assert weak.status_code == 400
    assert isinstance(weak.parsed, models.Error)
    assert weak.parsed.reason == "WEAK_PASSWORD"


async def _generate_client(gateway: RunningGateway, workdir: Path) -> None:
    config = workdir / "openapi-python-client.yaml"
    config.write_text(GENERATOR_CONFIG)
    no_tools = workdir / "empty-path"
    no_tools.mkdir()
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--url",
        gateway.url + "/api/v1/openapi.json",
        "--output-path",
        str(workdir / PACKAGE),
        "--meta",
        "none",
        "--config",
        str(config),
        "--fail-on-warning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,
        # An empty PATH: a tool the generator looked for (ruff) would be a warning, so a failure.
        env={"PATH": str(no_tools), "NO_COLOR": "1"},
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=GENERATE_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    output = stdout.decode(errors="replace")
    assert process.returncode == 0, output
    assert (workdir / PACKAGE / "__init__.py").exists(), output
