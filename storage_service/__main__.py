"""``python -m storage_service``: settings from MEDIAGEN_STORAGE_* and serve."""

from __future__ import annotations

import asyncio

from mediagen.scaffold import load_settings
from mediagen.scaffold.server import serve
from storage_service.app import build_spec
from storage_service.settings import StorageSettings


def main() -> None:
    asyncio.run(serve(build_spec, load_settings(StorageSettings)))


if __name__ == "__main__":
    main()
