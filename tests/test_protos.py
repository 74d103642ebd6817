"""The protos are the source of truth: generated code must match them, and they follow the lint rules."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tools import gen_protos

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "mediagen" / "v1"

PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def test_committed_generated_code_matches_the_protos(tmp_path: Path) -> None:
    fresh = {p.name: p.read_bytes() for p in gen_protos.generate(tmp_path)}
    committed = {p.name: p.read_bytes() for p in GENERATED.iterdir() if p.is_file()}
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_generated_modules_import_with_their_services() -> None:
    from mediagen.v1 import gateway_pb2_grpc, generator_pb2_grpc, storage_pb2_grpc

    assert hasattr(gateway_pb2_grpc, "GatewayServiceStub")
    assert hasattr(generator_pb2_grpc, "GeneratorServiceServicer")
    assert hasattr(storage_pb2_grpc, "add_StorageServiceServicer_to_server")


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path_factory.mktemp("descriptors") / "set.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *(f"-I{d}" for d in gen_protos.include_dirs()),
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *(str(p.relative_to(gen_protos.PROTO_ROOT)) for p in gen_protos.proto_files()),
        ],
        check=True,
        cwd=gen_protos.PROTO_ROOT,
    )
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def lint(files: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Naming and layout rules in the spirit of buf's DEFAULT set."""
    problems: list[str] = []
    for file in files.file:
        where = file.name
        if file.package != "mediagen.v1" or not where.startswith("mediagen/v1/"):
            problems.append(f"{where}: package must be mediagen.v1 in mediagen/v1/")
        if file.syntax != "proto3":
            problems.append(f"{where}: must be proto3")
        for message in _all_messages(file.message_type):
            if not PASCAL.match(message.name):
                problems.append(f"{where}: message {message.name} is not PascalCase")
            problems += [
                f"{where}: field {message.name}.{f.name} is not lower_snake_case"
                for f in message.field
                if not SNAKE.match(f.name)
            ]
        for enum in [*file.enum_type, *(e for m in _all_messages(file.message_type) for e in m.enum_type)]:
            prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
            if enum.value[0].name != prefix + "UNSPECIFIED" or enum.value[0].number != 0:
                problems.append(f"{where}: enum {enum.name} must start with {prefix}UNSPECIFIED = 0")
            problems += [
                f"{where}: enum value {v.name} must be UPPER_SNAKE with prefix {prefix}"
                for v in enum.value
                if not (UPPER_SNAKE.match(v.name) and v.name.startswith(prefix))
            ]
        for service in file.service:
            if not service.name.endswith("Service"):
                problems.append(f"{where}: service {service.name} must end in Service")
            problems += [
                f"{where}: rpc {service.name}.{m.name} is not PascalCase"
                for m in service.method
                if not PASCAL.match(m.name)
            ]
        documented = {tuple(loc.path) for loc in file.source_code_info.location if loc.leading_comments}
        problems += [
            f"{where}: service {s.name} has no comment"
            for i, s in enumerate(file.service)
            if (6, i) not in documented
        ]
    return problems


def _all_messages(
    messages: Iterable[descriptor_pb2.DescriptorProto],
) -> list[descriptor_pb2.DescriptorProto]:
    found = []
    for message in messages:
        found.append(message)
        found += _all_messages(message.nested_type)
    return found


def test_protos_pass_the_lint_rules(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    assert lint(descriptor_set) == []


def test_lint_rules_catch_a_bad_enum(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    broken = descriptor_pb2.FileDescriptorSet()
    broken.CopyFrom(descriptor_set)
    broken.file[0].enum_type[0].value[0].name = "FIRST"
    assert any("UNSPECIFIED" in problem for problem in lint(broken))
