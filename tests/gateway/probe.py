"""A throwaway service built in its own descriptor pool, to drive the gateway's generic code with
HTTP rules and field types that authsvc.v1 does not use yet (GET, path variables, query parameters)."""

from __future__ import annotations

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, text_format
from google.protobuf.descriptor import ServiceDescriptor

_T = descriptor_pb2.FieldDescriptorProto


def probe_service(*rules: str) -> ServiceDescriptor:
    """Service `probe.Probe` with one RPC per rule (`Call0`, `Call1`, ...), each taking `probe.Req`:
    `id` string, `count` int32, `active` bool, `tags` repeated string, `page` {`size` int32}."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2, http_pb2, annotations_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="probe.proto", package="probe", syntax="proto3", dependency=["google/api/annotations.proto"]
    )
    page = file.message_type.add(name="Page")
    page.field.add(name="size", json_name="size", number=1, type=_T.TYPE_INT32, label=_T.LABEL_OPTIONAL)
    request = file.message_type.add(name="Req")
    for number, (name, json_name, kind, label) in enumerate(
        [
            ("id", "id", _T.TYPE_STRING, _T.LABEL_OPTIONAL),
            ("count", "count", _T.TYPE_INT32, _T.LABEL_OPTIONAL),
            ("active", "active", _T.TYPE_BOOL, _T.LABEL_OPTIONAL),
            ("tags", "tags", _T.TYPE_STRING, _T.LABEL_REPEATED),
            ("page_info", "pageInfo", _T.TYPE_MESSAGE, _T.LABEL_OPTIONAL),
        ],
        start=1,
    ):
        field = request.field.add(name=name, json_name=json_name, number=number, type=kind, label=label)
        if kind == _T.TYPE_MESSAGE:
            field.type_name = ".probe.Page"
    service = file.service.add(name="Probe")
    for index, rule_text in enumerate(rules):
        method = service.method.add(name=f"Call{index}", input_type=".probe.Req", output_type=".probe.Req")
        rule = http_pb2.HttpRule()
        text_format.Parse(rule_text, rule)
        method.options.Extensions[annotations_pb2.http].CopyFrom(rule)  # type: ignore[index]
    pool.Add(file)
    return pool.FindServiceByName("probe.Probe")
