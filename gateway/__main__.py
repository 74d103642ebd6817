"""``python -m gateway``: run the gateway until SIGTERM, configured from the environment."""

from __future__ import annotations

import asyncio

from gateway.app import build_spec
from gateway.settings import GatewaySettings
from mediagen.scaffold import load_settings
from mediagen.scaffold.server import serve


def main() -> None:
    asyncio.run(serve(build_spec, load_settings(GatewaySettings)))


if __name__ == "__main__":
    main()
