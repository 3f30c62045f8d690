"""One event loop for every input of a fuzz target, as a service runs one.

``asyncio.Runner.run`` swaps the SIGINT handler in and out on every call, and
``signal.getsignal`` and ``signal.signal`` each try the handler as a ``Signals`` value first:
the failed conversion formats the handler, a partial over the running task, whose repr is the
task's coroutine with its arguments (the input's bytes): 13% of a short stage-wire run's
samples (docs/reliability.md). ``run_until_complete`` on one long-lived loop runs the same
coroutine on the same kind of loop without it; each input's task gets a copy of the context,
as a call to a server does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_LOOP: asyncio.AbstractEventLoop | None = None


def run(coro: Coroutine[Any, Any, T]) -> T:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP.run_until_complete(coro)
