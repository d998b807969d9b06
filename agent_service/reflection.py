"""Server reflection under both names tools ask for: `grpc.reflection.v1` (grpcurl 1.9 and
later, Postman) and `grpc.reflection.v1alpha` (older tools).

grpcio-reflection 1.85 ships v1alpha only (grpc/grpc#38576). v1 is the same protocol,
message for message and field for field, under another package name, so the one servicer
answers both: its handler is registered again under the v1 name, and a v1 copy of its
file descriptor goes into the pool, so `describe grpc.reflection.v1.ServerReflection`
works as well as `list`.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
V1_SERVICE = "grpc.reflection.v1.ServerReflection"
_V1ALPHA, _V1 = "grpc.reflection.v1alpha", "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def enable_reflection(server: grpc.aio.Server, services: Iterable[str]) -> None:
    """Serve reflection for `services` (and for itself) over v1 and v1alpha."""
    _add_v1_descriptor()
    servicer = reflection.aio.ReflectionServicer((*services, V1ALPHA_SERVICE, V1_SERVICE))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": info}),)
    )


def _add_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return  # another server in this process added it
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, _V1
    proto.ClearField("options")  # Java and Go package names of v1alpha
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # a message field, not a scalar
                field.type_name = _renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type)
            method.output_type = _renamed(method.output_type)
    pool.AddSerializedFile(proto.SerializeToString())


def _renamed(type_name: str) -> str:
    return type_name.replace(f".{_V1ALPHA}.", f".{_V1}.", 1)
