"""Stop one prompt on ComfyUI and nothing else (the robust cancel sequence).

A pending prompt is deleted from the queue; a prompt seen running gets a *targeted* interrupt
carrying its prompt id, which ComfyUI ignores unless that prompt is the one running, so another
caller's job is never stopped (no interrupt at all is sent for a prompt that was only pending).
The queue is watched until the prompt has left it, within a bound: interrupts are only noticed
between steps (a node that reports no progress runs to its end), and an HTTP call can be slow
while ComfyUI is busy. Both back off exponentially: ComfyUI keeps an interrupt until the running
node looks at it, so repeating one only covers a lost request, and a node deaf for seconds must
not draw a request every few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging

from generator_service.comfy.client import BackendUnreachable, ComfyClient

log = logging.getLogger("mediagen.generator.cancel")
POLL = (0.05, 0.5)
"""First and longest pause between two looks at the queue."""
REPEAT = (0.5, 4.0)
"""First and longest pause before an interrupt is sent again."""


async def cancel_prompt(client: ComfyClient, prompt_id: str, wait_seconds: float) -> bool:
    """True when the prompt is confirmed gone from the queue within ``wait_seconds``."""
    loop = asyncio.get_running_loop()
    poll, repeat = POLL[0], REPEAT[0]
    next_interrupt = 0.0
    interrupts = 0
    try:
        async with asyncio.timeout(wait_seconds):
            await client.delete_queued(prompt_id)
            while True:
                queue = await client.queue()
                if not queue.contains(prompt_id):
                    return True
                if any(item.prompt_id == prompt_id for item in queue.running):
                    if loop.time() >= next_interrupt:
                        await client.interrupt(prompt_id)
                        interrupts += 1
                        next_interrupt, repeat = loop.time() + repeat, min(repeat * 2, REPEAT[1])
                else:  # it was not yet pending when the delete arrived
                    await client.delete_queued(prompt_id)
                await asyncio.sleep(poll)
                poll = min(poll * 2, POLL[1])
    except (BackendUnreachable, TimeoutError) as exc:
        log.warning(
            "cancel of %s not confirmed after %d interrupt(s): %s",
            prompt_id,
            interrupts,
            exc or f"still running after {wait_seconds:g}s",
        )
    return False


async def forget_prompt(client: ComfyClient, prompt_id: str) -> bool:
    """Drop the prompt's history entry once its outputs are no longer needed; False if unreachable."""
    try:
        await client.delete_history(prompt_id)
    except BackendUnreachable as exc:
        log.warning("history of %s not deleted: %s", prompt_id, exc)
        return False
    return True
