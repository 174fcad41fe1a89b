"""Background asyncio tasks (heartbeats, probes, load loops): stopping them cleanly."""
from __future__ import annotations

import asyncio


async def cancel_and_wait(*tasks: asyncio.Future | None) -> None:
    """Cancel ``tasks`` and wait until each has finished; ``None`` (never started) is skipped."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
