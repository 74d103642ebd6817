"""Stop and forget the prompts an earlier run (or a failed clean-up) left on a backend.

Run when a backend comes up: at start-up, after it was down, and whenever a successful health
check finds orphans (a clean-up that could not reach the backend left its entry behind). For an
attached backend each orphan gets the robust cancel sequence (delete from the queue, a targeted
interrupt only while it runs, wait until it has left the queue), then its history entry is
deleted (and, on a managed backend, its files); an entry stays for the next attempt while the
backend cannot confirm. A managed backend that (re)started lost its queue with its process, so
its orphans are simply dropped. Entries name backends by identity (``Backend.identity``), so a
managed ComfyUI that came back on another port still finds its own.
"""

from __future__ import annotations

import asyncio
import logging

from generator_service.cancelling import cancel_prompt, forget_prompt
from generator_service.comfy.client import ComfyClient
from generator_service.job_files import JobFiles
from generator_service.journal import Entry, Journal

log = logging.getLogger("mediagen.generator.recovery")


async def recover(
    client: ComfyClient,
    journal: Journal,
    backend: str,
    *,
    fresh_process: bool,
    cancel_wait: float,
    files: JobFiles | None = None,
) -> int:
    """Clean up every orphan of ``backend`` (its identity); returns how many are gone.

    ``fresh_process``: the backend is a managed ComfyUI that has just (re)started (its job files
    were swept before the start). ``files``: a managed backend's job files, removed with each orphan.
    """
    orphans = journal.orphans(backend)
    if fresh_process:
        for entry in orphans:
            await journal.remove(entry.prompt_id)
        if orphans:
            log.info("%s restarted: %d prompt(s) of its previous process dropped", backend, len(orphans))
        return len(orphans)
    done = await asyncio.gather(*(_stop(client, journal, entry, cancel_wait, files) for entry in orphans))
    if orphans:
        log.info("recovered %d of %d orphaned prompt(s) on %s", sum(done), len(orphans), backend)
    return sum(done)


async def _stop(
    client: ComfyClient, journal: Journal, entry: Entry, cancel_wait: float, files: JobFiles | None
) -> bool:
    if not await cancel_prompt(client, entry.prompt_id, cancel_wait):
        return False
    if not await forget_prompt(client, entry.prompt_id):
        return False
    if files is not None:
        await files.remove(entry.prompt_id)
    await journal.remove(entry.prompt_id)
    return True
