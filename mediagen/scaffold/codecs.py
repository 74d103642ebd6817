"""A service registered with its own wire codec for the one method that carries media.

The generated ``add_XServicer_to_server`` gives every method the protobuf
classes' ``FromString``/``SerializeToString``. For a method whose messages are
nearly all media chunks that costs copies of every byte: parsing copies the
message into protobuf's arena and reading ``chunk`` copies it out again;
building an event copies the data in and serializing copies it once more.
:func:`with_codecs` wraps the generated adder so that one method uses codecs
the service supplies (which still fall back to protobuf for any other
message) while every other method keeps the generated ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
from grpc import aio

ServicerAdder = Callable[[Any, aio.Server], None]
_FACTORIES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


class _Registration:
    """Stands in for the server while the generated adder hands over its handlers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        """The generic handler is rebuilt from the registered ones below."""

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.service, self.handlers = service, dict(handlers)


def with_codecs(
    add: ServicerAdder,
    method: str,
    *,
    request_deserializer: Callable[[bytes], Any] | None = None,
    response_serializer: Callable[[Any], bytes] | None = None,
) -> ServicerAdder:
    """``add`` with ``method``'s deserializer and/or serializer replaced."""

    def adder(servicer: Any, server: aio.Server) -> None:
        registration = _Registration()
        add(servicer, registration)  # type: ignore[arg-type]
        handlers = registration.handlers
        old = handlers[method]  # a KeyError here is a misspelt method name
        attr, factory = _FACTORIES[(old.request_streaming, old.response_streaming)]
        handlers[method] = factory(  # type: ignore[operator]
            getattr(old, attr),
            request_deserializer=request_deserializer or old.request_deserializer,
            response_serializer=response_serializer or old.response_serializer,
        )
        generic = grpc.method_handlers_generic_handler(registration.service, handlers)
        server.add_generic_rpc_handlers((generic,))
        server.add_registered_method_handlers(registration.service, handlers)

    return adder
