"""The life of a long-running process: start, serve until SIGTERM or SIGINT, stop."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve_until_signal(service: Service) -> int:
    """Starts ``service``, waits for SIGTERM or SIGINT, then stops it (also when start fails)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
        log.info("signal received, stopping")
    finally:
        await service.stop()
    return 0
