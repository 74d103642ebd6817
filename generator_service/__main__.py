"""``python -m generator_service``: settings from the environment, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from generator_service.app import build_spec
from generator_service.journal import JournalUnavailable
from generator_service.process import ComfyUIStartFailed
from generator_service.settings import GeneratorSettings
from generator_service.templates import TemplateError
from mediagen.scaffold import load_settings
from mediagen.scaffold.server import serve


def main() -> None:
    settings = load_settings(GeneratorSettings)
    try:
        asyncio.run(serve(build_spec, settings))
    except (TemplateError, JournalUnavailable, ComfyUIStartFailed) as exc:
        print(f"mediagen-generator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
