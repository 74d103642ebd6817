"""Both overlays rendered once for the module that asks."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import OVERLAYS, Obj, render


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    work_dir = tmp_path_factory.mktemp("kustomize")
    return {overlay: render(overlay, work_dir) for overlay in OVERLAYS}
