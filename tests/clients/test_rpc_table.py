"""The clients' table of RPCs (authsvc_client/rpcs.py) against the contract: an RPC added to
`authsvc.v1.AuthService` without a row, a row without a method on both clients, or a method whose bearer
disagrees with the contract fails here."""

from __future__ import annotations

import inspect

import pytest
from authsvc_client import AsyncAuthClient, AuthClient
from authsvc_client.rpcs import TABLE, Bearer
from authsvc_proto.v1 import auth_pb2, options_pb2

SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
ROWS = {row.name: row for row in TABLE}


def test_the_table_has_one_row_per_rpc_of_the_service():
    assert SERVICE.full_name == "authsvc.v1.AuthService"
    assert len(ROWS) == len(TABLE)
    assert sorted(ROWS) == sorted(method.name for method in SERVICE.methods)


@pytest.mark.parametrize("method", list(SERVICE.methods), ids=lambda method: method.name)
def test_each_row_sends_the_request_message_of_its_rpc(method):
    assert ROWS[method.name].prepare().request.DESCRIPTOR.full_name == method.input_type.full_name


def test_the_rows_that_present_an_access_token_are_those_the_contract_says_require_one():
    requiring = {m.name for m in SERVICE.methods if m.GetOptions().Extensions[options_pb2.requires_bearer]}
    assert {row.name for row in TABLE if row.bearer is Bearer.ACCESS_TOKEN} == requiring


def _public_methods(client: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(client, inspect.isfunction) if not name.startswith("_")}


@pytest.mark.parametrize("client", [AuthClient, AsyncAuthClient])
def test_each_client_has_exactly_one_method_per_row_besides_close(client):
    assert _public_methods(client) - {"close"} == {row.method for row in TABLE}


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.name)
def test_both_clients_take_the_same_arguments_and_an_access_token_exactly_where_the_row_says(row):
    blocking = inspect.signature(getattr(AuthClient, row.method))
    awaited = getattr(AsyncAuthClient, row.method)
    assert inspect.iscoroutinefunction(awaited)
    assert inspect.signature(awaited).parameters == blocking.parameters
    arguments = list(blocking.parameters)[1:]  # after self
    assert (arguments[:1] == ["access_token"]) == (row.bearer is Bearer.ACCESS_TOKEN)
    assert arguments[-1] == "timeout"
