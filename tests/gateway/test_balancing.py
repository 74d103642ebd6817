"""Several generator replicas behind one target are used in turn, with no gateway code involved."""

from __future__ import annotations

from pathlib import Path

from comfyui_sim import SimulatorConfig, SimulatorHandle, start_simulator
from generator_service.app import build_spec as build_generator
from generator_service.settings import GeneratorSettings
from mediagen.scaffold import start_server
from tests.gateway.conftest import start_gateway, stop_gateway
from tests.gateway.runs import output, request, run
from tests.storage.conftest import StorageServer


async def test_round_robin_spreads_outputs_over_generator_replicas(
    sim: SimulatorHandle, storage: StorageServer, tmp_path: Path
) -> None:
    second_sim = await start_simulator(SimulatorConfig(port=0, data_dir=tmp_path / "second"))
    generators = []
    try:
        for url in (sim.url, second_sim.url):
            settings = GeneratorSettings.model_validate(
                {"comfyui_urls": url, "port": 0, "log_format": "text"}
            )
            generators.append(await start_server(await build_generator(settings), settings))
        target = "ipv4:" + ",".join(g.address for g in generators)
        gateway = await start_gateway(generator_target=target, storage_target=storage.address)
        try:
            # round_robin connects to every address at once but picks only among the ready
            # ones: the first calls may all land on whichever answered first.
            for n in range(2):
                await run(gateway.stub, request(output("solid_image", width=8, height=8, color=2000 + n)))
            before = [int(s.state()["prompts_run"]) for s in (sim, second_sim)]  # type: ignore[call-overload]
            for n in range(4):
                result = await run(
                    gateway.stub, request(output("solid_image", width=8, height=8, color=3000 + n))
                )
                assert result.completed.media_stored == 1
        finally:
            await stop_gateway(gateway)
        after = [int(s.state()["prompts_run"]) for s in (sim, second_sim)]  # type: ignore[call-overload]
        assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2]
    finally:
        for running in generators:
            await running.stop(0)
        await second_sim.stop()
