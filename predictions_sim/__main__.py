"""Command line: run the predictions simulator until SIGTERM/SIGINT.

Prints ``predictions-sim listening on http://HOST:PORT`` once bound. The bearer token it expects
is read from the variable named by ``--api-key-env`` (never from the command line, where other
users of the machine could read it); without that variable it accepts any request.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from sim_scaffold.serving import apply_faults_json, provider_arguments, serve_until_signalled

from .config import PredictionsSimConfig
from .server import start_predictions_sim


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = provider_arguments("python -m predictions_sim", __doc__, 8191, "REPLICATE_API_TOKEN", "token")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = PredictionsSimConfig(
        host=args.host, port=args.port, api_token=os.environ.get(args.api_key_env, "")
    )
    apply_faults_json(config.faults, args.faults_json)
    await serve_until_signalled(await start_predictions_sim(config), "predictions-sim")


if __name__ == "__main__":
    asyncio.run(main())
