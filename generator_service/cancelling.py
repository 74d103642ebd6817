"""Stop one prompt on ComfyUI and nothing else (the robust cancel sequence).

A pending prompt is deleted from the queue; a prompt seen running gets a *targeted* interrupt
carrying its prompt id, which ComfyUI ignores unless that prompt is the one running, so another
caller's job is never stopped (no interrupt at all is sent for a prompt that was only pending).
The queue is watched until the prompt has left it, within a bound: interrupts are only noticed
between steps, and an HTTP call can be slow while ComfyUI is busy.
"""

from __future__ import annotations

import asyncio
import logging

from generator_service.comfy.client import BackendUnreachable, ComfyClient

log = logging.getLogger("generator.cancel")


async def cancel_prompt(client: ComfyClient, prompt_id: str, wait_seconds: float) -> bool:
    """True when the prompt is confirmed gone from the queue within ``wait_seconds``."""
    try:
        async with asyncio.timeout(wait_seconds):
            await client.delete_queued(prompt_id)
            while True:
                queue = await client.queue()
                if not queue.contains(prompt_id):
                    return True
                if any(item.prompt_id == prompt_id for item in queue.running):
                    await client.interrupt(prompt_id)
                else:  # it was not yet pending when the delete arrived
                    await client.delete_queued(prompt_id)
                await asyncio.sleep(0.05)
    except (BackendUnreachable, TimeoutError) as exc:
        log.warning("cancel of %s not confirmed: %s", prompt_id, exc)
    return False


async def forget_prompt(client: ComfyClient, prompt_id: str) -> bool:
    """Drop the prompt's history entry once its outputs are no longer needed; False if unreachable."""
    try:
        await client.delete_history(prompt_id)
    except BackendUnreachable as exc:
        log.warning("history of %s not deleted: %s", prompt_id, exc)
        return False
    return True
