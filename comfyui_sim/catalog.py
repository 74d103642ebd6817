"""Every node class the simulator offers, by name.

The simulator deliberately lists far fewer classes than a real server (about 40 against ~500):
the model-free core nodes a generator uses, procedural stand-ins for model nodes, and two
test nodes. ``LoadImage``'s choice list is the live content of ``input/``, so object_info is
rebuilt on each request while execution uses a cached table.
"""

from __future__ import annotations

from typing import Any

from . import nodes_av, nodes_image, nodes_model, nodes_sim
from .files import Folders
from .schema import NodeDef


class Catalog:
    def __init__(self, folders: Folders) -> None:
        self.folders = folders
        self._nodes = self._build()

    def _build(self) -> dict[str, NodeDef]:
        defs = (
            nodes_image.definitions(self.folders)
            + nodes_av.definitions()
            + nodes_model.definitions()
            + nodes_sim.definitions()
        )
        return {d.name: d for d in defs}

    def nodes(self) -> dict[str, NodeDef]:
        return self._nodes

    def object_info(self, name: str | None = None) -> dict[str, Any]:
        """``/object_info`` (all classes) or ``/object_info/{name}`` (``{}`` when unknown)."""
        self._nodes = self._build()
        if name is None:
            return {key: d.info() for key, d in self._nodes.items()}
        return {name: self._nodes[name].info()} if name in self._nodes else {}
