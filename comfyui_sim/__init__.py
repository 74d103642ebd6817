"""comfyui_sim: a protocol-faithful ComfyUI simulator for tests.

It speaks ComfyUI 0.3.64's HTTP + WebSocket protocol (same routes, status codes, JSON shapes,
event order and known pitfalls) and runs a small catalog of real model-free nodes plus
procedural stand-ins for model nodes, writing real media files. Nothing is downloaded and no
GPU is needed.

Stable API::

    from comfyui_sim import SimulatorConfig, Faults, start_simulator, running_simulator

    sim = await start_simulator(SimulatorConfig(host="127.0.0.1", port=0, data_dir=tmp_path))
    sim.url          # "http://127.0.0.1:PORT"  (sim.ws_url is the matching ws://.../ws)
    sim.faults       # live Faults object, the same one POST /sim/faults edits
    sim.data_dir     # holds input/, output/, temp/
    sim.state()      # what GET /sim/state returns
    await sim.stop()

    async with running_simulator(SimulatorConfig(port=0)) as sim:
        ...

Command line: ``python -m comfyui_sim --host 127.0.0.1 --port 8188 [--data-dir DIR] [knobs]``.
Simulator-only additions (not in a real ComfyUI): ``/sim/faults``, ``/sim/state`` and the
``SimLargeImage`` node.
"""

from .config import Faults, SimulatorConfig
from .server import SimulatorHandle, running_simulator, start_simulator

__all__ = ["Faults", "SimulatorConfig", "SimulatorHandle", "running_simulator", "start_simulator"]
