"""``python -m storage_service``: settings from MEDIAGEN_STORAGE_* and serve."""

from __future__ import annotations

import asyncio

from mediagen.scaffold import load_settings
from mediagen.scaffold.server import serve
from storage_service.app import build_spec
from storage_service.memory import tune_allocator
from storage_service.settings import MiB, StorageSettings


def main() -> None:
    settings = load_settings(StorageSettings)
    tune_allocator(mmap_threshold=min(4 * MiB, settings.part_size // 2))
    asyncio.run(serve(build_spec, settings))


if __name__ == "__main__":
    main()
