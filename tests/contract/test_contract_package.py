"""The contract package: the one place the protos, their generated code and the error words live."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import authsvc_proto
import grpc
import pytest
from authsvc_proto.errors import (
    ERROR_DOMAIN,
    ErrorReason,
    decode_details,
    details_of,
    rich_status,
    word,
)
from authsvc_proto.v1 import auth_pb2
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from authsvc.domain import errors as domain_errors

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = ("protos/pyproject.toml", "pyproject.toml", "clients/python/pyproject.toml")


def _generated_protobuf_version() -> tuple[int, int, int]:
    """The protobuf runtime the generated code demands at import (ValidateProtobufRuntimeVersion)."""
    text = Path(auth_pb2.__file__).read_text()
    found = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", text)
    assert found is not None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


@pytest.mark.parametrize("pyproject", PYPROJECTS)
def test_every_package_declares_the_protobuf_floor_the_generated_code_needs(pyproject):
    dependencies = tomllib.loads((ROOT / pyproject).read_text())["project"]["dependencies"]
    [protobuf] = [spec for spec in dependencies if re.match(r"protobuf\b", spec)]
    floor = re.search(r">=\s*([\d.]+)", protobuf)
    assert floor is not None, protobuf
    assert tuple(int(part) for part in floor.group(1).split(".")) == _generated_protobuf_version()


@pytest.mark.parametrize("pyproject", PYPROJECTS[1:])
def test_the_server_and_the_client_depend_on_the_contract_package(pyproject):
    dependencies = tomllib.loads((ROOT / pyproject).read_text())["project"]["dependencies"]
    version = tomllib.loads((ROOT / PYPROJECTS[0]).read_text())["project"]["version"]
    assert f"authsvc-proto=={version}" in dependencies


def test_the_generated_code_lives_only_in_the_contract_package():
    generated = sorted(
        str(path.relative_to(ROOT))
        for folder in ("authsvc", "clients", "protos")
        for path in (ROOT / folder).rglob("*_pb2*.py")
    )
    assert generated
    assert all(name.startswith("protos/authsvc_proto/v1/") for name in generated), generated
    assert Path(authsvc_proto.__file__).resolve().parent == ROOT / "protos" / "authsvc_proto"


def test_every_reason_the_domain_raises_is_a_word_of_the_enum():
    classes = [domain_errors.AuthError]
    reasons = set()
    while classes:
        current = classes.pop()
        reasons.add(current.reason)
        classes.extend(current.__subclasses__())
    # Two bases only group their subclasses and are never raised themselves.
    reasons -= {domain_errors.AuthError.reason, domain_errors.PermissionDenied.reason}
    words = set(ErrorReason.keys())
    assert reasons and reasons <= words, reasons - words


def test_docs_list_every_reason_word_and_no_other():
    api = (ROOT / "docs" / "api.md").read_text()
    section = api[api.index("## Reason words") : api.index("## Limits")]
    named = set(re.findall(r"`([A-Z][A-Z_]+)`|^\| ([A-Z][A-Z_]+) \|", section, re.MULTILINE))
    documented = {name for pair in named for name in pair if name}
    words = set(ErrorReason.keys()) - {"ERROR_REASON_UNSPECIFIED"}
    assert words <= documented, sorted(words - documented)


def test_a_status_round_trips_through_the_one_encoder_and_decoder():
    status = rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", word(ErrorReason.THROTTLED), 2.2)
    details = details_of(status.trailing_metadata)
    assert (details.reason, details.retry_after) == ("THROTTLED", 3.0)  # whole seconds, rounded up


def test_a_reason_of_another_domain_or_a_malformed_payload_is_no_reason():
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="QUOTA", domain="example.com"))
    foreign = status_pb2.Status(code=8, message="x", details=[info]).SerializeToString()
    assert decode_details(foreign).reason is None
    assert decode_details(b"\xff\xff not a status").reason is None
    assert decode_details(None).reason is None
    assert ERROR_DOMAIN == "authsvc"
