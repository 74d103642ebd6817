"""Command line: run the predictions simulator until SIGTERM/SIGINT.

Prints ``predictions-sim listening on http://HOST:PORT`` once bound. The bearer token it expects
is read from the variable named by ``--api-key-env`` (never from the command line, where other
users of the machine could read it); without that variable it accepts any request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

from .config import PredictionsSimConfig
from .server import start_predictions_sim


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m predictions_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8191)
    parser.add_argument(
        "--api-key-env", default="REPLICATE_API_TOKEN", help="variable holding the expected token"
    )
    parser.add_argument("--faults-json", default=None, help="a JSON object of Faults fields")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = PredictionsSimConfig(
        host=args.host, port=args.port, api_token=os.environ.get(args.api_key_env, "")
    )
    if args.faults_json:
        config.faults.update(json.loads(args.faults_json))
    handle = await start_predictions_sim(config)
    print(f"predictions-sim listening on {handle.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await handle.stop()


if __name__ == "__main__":
    asyncio.run(main())
