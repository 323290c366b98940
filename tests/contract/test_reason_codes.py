"""Every reason word carries its gRPC code in the contract (`(authsvc.v1.grpc_code)` in errors.proto), and
every RPC the words it may be refused with (`(authsvc.v1.error_reasons)`): the REST gateway's OpenAPI
document is built from both, so they must be what the server and the gateway really answer."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from authsvc_proto.errors import ErrorReason
from authsvc_proto.v1 import auth_pb2, errors_pb2, options_pb2
from google.rpc import code_pb2

from authsvc.domain import errors as domain_errors
from authsvc.gateway import errors as gateway_errors
from authsvc.transport.errors import status_code_for

ROOT = Path(__file__).resolve().parents[2]
WORDS = [value.name for value in ErrorReason.DESCRIPTOR.values if value.number != 0]


def code_of(word: str) -> grpc.StatusCode:
    option = ErrorReason.DESCRIPTOR.values_by_name[word].GetOptions().Extensions[errors_pb2.grpc_code]
    return grpc.StatusCode[code_pb2.Code.Name(option)]


def domain_error_classes() -> list[type[domain_errors.AuthError]]:
    found, pending = [], [domain_errors.AuthError]
    while pending:
        current = pending.pop()
        pending.extend(current.__subclasses__())
        # The two bases only group their subclasses and are never raised themselves.
        if current not in (domain_errors.AuthError, domain_errors.PermissionDenied):
            found.append(current)
    return found


def raised(error_class: type[domain_errors.AuthError]) -> domain_errors.AuthError:
    if issubclass(error_class, domain_errors.Throttled):
        return error_class(1.0)
    return error_class()


@pytest.mark.parametrize("word", WORDS)
def test_every_word_names_the_code_it_is_answered_with(word: str) -> None:
    assert code_of(word) != grpc.StatusCode.OK


@pytest.mark.parametrize("error_class", domain_error_classes(), ids=lambda cls: cls.__name__)
def test_the_server_answers_each_of_its_words_at_the_code_the_contract_gives_it(
    error_class: type[domain_errors.AuthError],
) -> None:
    assert status_code_for(raised(error_class)) == code_of(error_class.reason)


@pytest.mark.parametrize(
    "answer",
    [
        gateway_errors.not_authenticated(),
        gateway_errors.bad_request("x", "INVALID_JSON"),
        gateway_errors.bad_request("x", "INVALID_FIELD"),
        gateway_errors.bad_request("x", "MALFORMED_HTTP"),
        gateway_errors.bad_request("x", "REQUEST_HEAD_TOO_LARGE"),
        gateway_errors.body_too_large(1),
        gateway_errors.unsupported_media_type(),
        gateway_errors.client_closed(),
        gateway_errors.route_not_found(),
        gateway_errors.method_not_allowed({"GET"}),
        gateway_errors.internal_error(),
    ],
    ids=lambda answer: answer.reason,
)
def test_the_gateway_answers_its_own_words_at_the_code_the_contract_gives_them(
    answer: gateway_errors.GatewayError,
) -> None:
    assert answer.code == code_of(answer.reason).name


def test_every_rpc_lists_words_the_domain_raises_and_every_such_word_is_listed() -> None:
    server_words = {error_class.reason for error_class in domain_error_classes()}
    listed = {
        method.name: {
            ErrorReason.Name(reason) for reason in method.GetOptions().Extensions[options_pb2.error_reasons]
        }
        for method in auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods
    }
    assert all(words <= server_words for words in listed.values()), listed
    assert server_words == set().union(*listed.values())


def test_the_reason_words_table_of_the_docs_gives_each_word_its_code() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    section = api[api.index("## Reason words") : api.index("## Limits")]
    rows = re.findall(r"^\| ([A-Z][A-Z_]+) \| ([A-Z][A-Z_]+) \|", section, re.MULTILINE)
    assert rows
    assert {word: code for word, code in rows} == {word: code_of(word).name for word, _ in rows}
