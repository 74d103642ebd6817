"""Building gateway requests and reading their event streams, for the tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf import duration_pb2

from mediagen.params import to_value as param
from mediagen.v1 import gateway_pb2, gateway_pb2_grpc, generator_pb2, storage_pb2

Value = str | int | float | bool


def output(template: str, timeout: float = 0, **params: Value) -> gateway_pb2.OutputSpec:
    workflow = generator_pb2.WorkflowSpec(template=template)
    for name, value in params.items():
        workflow.parameters[name].CopyFrom(param(value))
    spec = gateway_pb2.OutputSpec(workflow=workflow)
    if timeout:
        spec.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout), nanos=int(timeout % 1 * 1e9)))
    return spec


def request(
    *outputs: gateway_pb2.OutputSpec,
    concurrency: int = 0,
    run_id: str = "",
    labels: Mapping[str, str] | None = None,
) -> gateway_pb2.GatewayGenerateRequest:
    return gateway_pb2.GatewayGenerateRequest(
        run_id=run_id,
        outputs=outputs,
        concurrency=concurrency,
        context=storage_pb2.RunContext(schema="test", execution_mode="batch", labels=dict(labels or {})),
    )


@dataclass
class RunEvents:
    events: list[gateway_pb2.GatewayEvent] = field(default_factory=list)

    def of(self, kind: str) -> list[gateway_pb2.GatewayEvent]:
        return [event for event in self.events if event.WhichOneof("event") == kind]

    @property
    def kinds(self) -> list[str]:
        return [str(event.WhichOneof("event")) for event in self.events]

    @property
    def run_id(self) -> str:
        return self.events[0].run_created.run.run_id

    @property
    def records(self) -> list[storage_pb2.MediaRecord]:
        return [event.media_stored.record for event in self.of("media_stored")]

    @property
    def completed(self) -> gateway_pb2.RunCompleted:
        assert self.kinds[-1] == "run_completed", self.kinds
        return self.events[-1].run_completed


async def run(
    stub: gateway_pb2_grpc.GatewayServiceAsyncStub,
    req: gateway_pb2.GatewayGenerateRequest,
    deadline: float = 60,
) -> RunEvents:
    result = RunEvents()
    async for event in stub.Generate(req, timeout=deadline):
        result.events.append(event)
    return result
