"""Running a managed ComfyUI as an operator would: its command, its files, its stop.

The simulator's process stands in for ComfyUI (``python -m comfyui_sim``, or a ``main.py`` that
runs it, as a ComfyUI checkout has); the generator runs in-process or as ``python -m
generator_service`` where what matters is the process (its exit, its shutdown).
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from pathlib import Path

import grpc
import httpx
import psutil
import pydantic
import pytest
from PIL import Image

from generator_service.job_files import upload_name
from generator_service.process import ComfyUIStartFailed, command_argv
from generator_service.settings import GeneratorSettings
from mediagen.ports import free_port
from mediagen.scaffold.channels import open_channel
from mediagen.stack import parts
from mediagen.stack.process import ManagedProcess, ProcessExited
from mediagen.stack.readiness import grpc_serving
from mediagen.v1 import generator_pb2, generator_pb2_grpc
from tests.generator.support import events_until, run, running_node, template_request, wait_until

SIM = f"{sys.executable} -m comfyui_sim --host {{host}} --port {{port}} --data-dir {{data_dir}}"
MAIN_PY = "from comfyui_sim.__main__ import main\nmain()\n"
"""A stand-in for a ComfyUI checkout's ``main.py``, which only runs from its own directory."""


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def _backend(stub) -> generator_pb2.BackendStatus:
    return (await stub.GetBackendStatus(generator_pb2.GetBackendStatusRequest())).backends[0]


# --- the command: how it is run, and a command that cannot start -------------------------------


async def test_a_missing_program_fails_the_start_at_once_with_its_exit_code(generator_factory, tmp_path):
    started = time.monotonic()
    with pytest.raises(ComfyUIStartFailed) as failed:
        await generator_factory(
            comfyui_command="comfyui-not-installed --port {port}", comfyui_data_dir=tmp_path / "data"
        )
    message = str(failed.value)
    assert "exit code 127 before answering" in message
    assert "cannot run 'comfyui-not-installed': No such file or directory" in message
    assert time.monotonic() - started < 10, "it waited for the start timeout (120 s)"


async def test_main_py_runs_only_from_the_working_directory_the_setting_names(generator_factory, tmp_path):
    checkout = tmp_path / "ComfyUI"
    checkout.mkdir()
    (checkout / "main.py").write_text(MAIN_PY)
    command = f"{sys.executable} main.py --host {{host}} --port {{port}} --data-dir {{data_dir}}"
    with pytest.raises(ComfyUIStartFailed) as failed:
        await generator_factory(comfyui_command=command, comfyui_data_dir=tmp_path / "a")
    assert "exit code 2 before answering" in str(failed.value)
    assert "can't open file" in str(failed.value), "python's own words, from the output"

    server = await generator_factory(
        comfyui_command=command, comfyui_workdir=checkout, comfyui_data_dir=tmp_path / "b"
    )
    channel = open_channel(server.address)
    try:
        result = await run(
            generator_pb2_grpc.GeneratorServiceStub(channel),
            template_request("solid_image", width=8, height=8),
        )
        assert result.error is None, result.error
        assert result.completed is not None
    finally:
        await channel.close()


def test_shell_syntax_is_refused_with_what_to_do_instead():
    with pytest.raises(pydantic.ValidationError) as refused:
        GeneratorSettings(comfyui_command="cd /opt/ComfyUI && python main.py --port {port}")
    assert "run without a shell" in str(refused.value)
    assert "MEDIAGEN_GENERATOR_COMFYUI_WORKDIR" in str(refused.value)
    with pytest.raises(pydantic.ValidationError, match="not a directory"):
        GeneratorSettings(comfyui_command=SIM, comfyui_workdir="/nonexistent/ComfyUI")
    argv = command_argv(
        "'my python' main.py --listen {host}:{port} --cuda-device {instance} "
        "--output-directory {data_dir}/output --faults '{\"x\": 1}' $HOME ~",
        "127.0.0.1",
        8190,
        Path("/data/2"),
        2,
    )
    assert argv == [
        "my python",
        "main.py",
        "--listen",
        "127.0.0.1:8190",
        "--cuda-device",
        "2",
        "--output-directory",
        "/data/2/output",
        "--faults",
        '{"x": 1}',
        "$HOME",
        "~",
    ], "split like a shell would, nothing expanded, only the placeholders replaced"


async def test_the_generator_process_exits_with_the_comfyui_failure_and_the_stack_shows_it(tmp_path):
    port = free_port()
    env = {
        **parts.base_env(),
        **parts.generator_env(
            port,
            "",
            f"{sys.executable} -c \"import sys; print('loading nodes'); sys.exit('CUDA not available')\"",
            {"MEDIAGEN_GENERATOR_STATE_DIR": str(tmp_path / "state")},
        ),
        "TMPDIR": str(tmp_path),  # where its temporary data dir goes, to see it removed
    }
    generator = ManagedProcess("generator", parts.service_argv("generator_service"), env, tmp_path / "g.log")
    started = time.monotonic()
    with pytest.raises(ProcessExited) as exited:
        await asyncio.to_thread(
            generator.wait_until, lambda: grpc_serving(f"127.0.0.1:{port}"), 60, "SERVING"
        )
    assert time.monotonic() - started < 20
    report = str(exited.value)
    assert "generator exited with 2" in report
    assert "managed-0: ComfyUI process exited with exit code 1 before answering" in report
    assert "| loading nodes" in report
    assert "| CUDA not available" in report
    assert not list(tmp_path.glob("mediagen-comfyui-*")), "its temporary data dir was left behind"


# --- shutdown ------------------------------------------------------------------------------------


async def test_shutdown_is_bounded_whatever_comfyui_does(tmp_path):
    """A node deaf to interrupts in a ComfyUI deaf to SIGTERM: the generator still exits in time."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = f"{SIM} --hang-node ImageInvert --uninterruptible ImageInvert=3600 --ignore-sigterm"
    grace, stop_wait = 1.0, 1.0
    env = {
        **parts.base_env(),
        **parts.generator_env(
            port,
            "",
            command,
            {
                "MEDIAGEN_GENERATOR_STATE_DIR": str(tmp_path / "state"),
                "MEDIAGEN_GENERATOR_COMFYUI_DATA_DIR": str(tmp_path / "data"),
                "MEDIAGEN_GENERATOR_GRACE_SECONDS": str(grace),
                "MEDIAGEN_GENERATOR_COMFYUI_STOP_SECONDS": str(stop_wait),
                "MEDIAGEN_GENERATOR_CANCEL_WAIT_SECONDS": "60",  # waiting for the cancel would show
            },
        ),
    }
    generator = ManagedProcess("generator", parts.service_argv("generator_service"), env, tmp_path / "g.log")
    comfyui: psutil.Process | None = None
    channel = open_channel(address)
    try:
        await asyncio.to_thread(generator.wait_until, lambda: grpc_serving(address), 30, "SERVING")
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        comfyui = _child_comfyui(generator.pid)
        call = stub.Generate(template_request("inverted_image", width=8, height=8), timeout=120)
        await events_until(call, running_node("ImageInvert"))
        stopping = time.monotonic()
        code = await asyncio.to_thread(generator.stop, 60.0)
        took = time.monotonic() - stopping
        print(f"\nSIGTERM to exit: {took:.2f}s (grace {grace:g}s, stop wait {stop_wait:g}s)")
        assert code == 0, generator.log_tail()
        assert took < grace + stop_wait + 8, f"shutdown took {took:.1f}s\n{generator.log_tail()}"
        assert not _alive(comfyui), "the managed ComfyUI outlived its generator"
        with pytest.raises(grpc.RpcError):
            async for _ in call:
                pass
    finally:
        await channel.close()
        generator.kill()
        if comfyui is not None and _alive(comfyui):
            comfyui.kill()


def _child_comfyui(pid: int) -> psutil.Process:
    (child,) = [c for c in psutil.Process(pid).children() if "comfyui_sim" in " ".join(c.cmdline())]
    return child


def _alive(process: psutil.Process) -> bool:
    return process.is_running() and process.status() != psutil.STATUS_ZOMBIE


# --- files ---------------------------------------------------------------------------------------


async def test_a_jobs_outputs_and_uploads_are_removed_once_streamed(generator_factory, tmp_path):
    data = tmp_path / "data"
    server = await generator_factory(comfyui_command=SIM, comfyui_data_dir=data)
    channel = open_channel(server.address, max_message_bytes=16 * 1024 * 1024)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    output, uploads = data / "0" / "output", data / "0" / "input"
    try:
        result = await run(stub, template_request("solid_image", width=8, height=8, batch_size=2))
        assert result.error is None, result.error
        assert len(result.media) == 2
        await wait_until(lambda: not _files(output), within=5)

        png = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 30)).save(png, "PNG")
        request = template_request("sd15_img2img", prompt="a cat", steps=2)
        request.workflow.inputs.append(
            generator_pb2.InputMedia(parameter="image", filename="start.png", data=png.getvalue())
        )
        async with httpx.AsyncClient(base_url=(await _backend(stub)).url) as http:
            await http.post("/sim/faults", json={"node_delay_s": {"KSampler": 1.0}})
            call = stub.Generate(request, timeout=30)
            seen = await events_until(call, running_node("KSampler"))
            prompt_id = seen[0].accepted.prompt_id
            assert _files(uploads) == [upload_name(prompt_id, "start.png")], "named for its job"
            rest = [e async for e in call]
            assert rest[-1].HasField("completed")
            await wait_until(lambda: not _files(uploads) and not _files(output), within=5)

            await http.post("/sim/faults", json={"node_delay_s": {}, "hang_nodes": ["ImageInvert"]})
            failed = await run(stub, template_request("inverted_image", timeout=1.0, width=8, height=8))
            assert failed.error is not None
            assert failed.error.code == grpc.StatusCode.DEADLINE_EXCEEDED
            await wait_until(lambda: not _files(output), within=5)
    finally:
        await channel.close()


def test_uploads_are_named_for_their_job_within_file_name_limits():
    prompt_id = "0b6c4d8e-2f7a-4a51-9a36-1c2d3e4f5a6b"
    assert upload_name(prompt_id, "start.png") == f"{prompt_id}-start.png"
    long = upload_name(prompt_id, "é" * 300 + ".webp")
    assert long.startswith(f"{prompt_id}-é")
    assert long.endswith("é.webp")
    assert len(long.encode()) <= 200


async def test_a_temporary_data_dir_goes_with_the_generator(generator_factory, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = await generator_factory(comfyui_command=SIM)
    (root,) = tmp_path.glob("mediagen-comfyui-*")
    assert (root / "0").is_dir()
    await server.stop(1.0)
    assert not root.exists()


# --- a failure's timings -------------------------------------------------------------------------


async def test_a_job_whose_comfyui_died_reports_the_time_it_ran(generator_factory, tmp_path):
    server = await generator_factory(comfyui_command=SIM, comfyui_data_dir=tmp_path / "data")
    channel = open_channel(server.address)
    stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        async with httpx.AsyncClient(base_url=(await _backend(stub)).url) as http:
            await http.post(
                "/sim/faults", json={"node_delay_s": {"EmptyImage": 1.5}, "crash_on_node": ["ImageInvert"]}
            )
        result = await run(stub, template_request("inverted_image", width=8, height=8))
        assert result.error is not None
        assert result.error.code == grpc.StatusCode.UNAVAILABLE, result.error
        assert float(result.error.metadata["execution_seconds"]) >= 1.5
        assert float(result.error.metadata["queue_wait_seconds"]) >= 0
    finally:
        await channel.close()


# --- the journal across generator restarts ----------------------------------------------------


async def test_a_restarted_generator_recognises_its_managed_backends_prompts(tmp_path):
    """The managed ComfyUI comes back on another port: its prompts are still its own, not "unconfigured"."""
    state, data = tmp_path / "state", tmp_path / "data"
    first, address = await _generator(tmp_path, "first", state, data)
    channel = open_channel(address)
    try:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        async with httpx.AsyncClient(base_url=(await _backend(stub)).url) as http:
            await http.post("/sim/faults", json={"hang_nodes": ["ImageInvert"]})
        call = stub.Generate(template_request("inverted_image", width=8, height=8), timeout=60)
        seen = await events_until(call, running_node("ImageInvert"))
        prompt_id = seen[0].accepted.prompt_id
        assert [p.name for p in state.iterdir()] == [f"{prompt_id}.json"]
        first.kill()  # its ComfyUI goes with it (the kernel ends it)
        call.cancel()
    finally:
        await channel.close()
    leftover = data / "0" / "output" / "mediagen" / f"{prompt_id}-leftover.png"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"a file of the killed generator's job")

    second, _ = await _generator(tmp_path, "second", state, data)
    try:
        await wait_until(lambda: not any(state.iterdir()), within=10)
        log = (tmp_path / "second.log").read_text()
        assert "unconfigured backend" not in log
        assert "managed-0 restarted: 1 prompt(s) of its previous process dropped" in log
        assert not leftover.exists(), "swept before the new process started"
    finally:
        await asyncio.to_thread(second.stop, 10.0)


async def _generator(tmp_path: Path, name: str, state: Path, data: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **parts.base_env(),
        **parts.generator_env(
            port,
            "",
            SIM,
            {
                "MEDIAGEN_GENERATOR_STATE_DIR": str(state),
                "MEDIAGEN_GENERATOR_COMFYUI_DATA_DIR": str(data),
                "MEDIAGEN_GENERATOR_HOST": "127.0.0.1",
            },
        ),
    }
    process = ManagedProcess(name, parts.service_argv("generator_service"), env, tmp_path / f"{name}.log")
    await asyncio.to_thread(process.wait_until, lambda: grpc_serving(address), 30, "SERVING")
    return process, address
