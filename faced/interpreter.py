"""The interpreter's process-wide settings for a daemon whose event loop has a latency goal.

Owns: ``interpreter_ctx``, the last component to start (faced.app's list), which
sets how soon a thread waiting for the interpreter lock asks the holder to let go
(``sys.setswitchinterval``) and freezes what start-up allocated out of the cyclic
collector's reach (``gc.freeze``); at cleanup both go back to what they were, so a
process that runs several daemons in turn (the tests) ends each as it began. Does not
own any component's work, nor the figures (docs/performance.md, "Soak"; `faced bench
soak` times every collection and how long the loop waited for a CPU).

Why, measured with `faced bench soak` on the 2-core dev VM:

* the event loop shares the interpreter lock with the tracking thread (the pipeline's
  Python between its native calls), the capture and the analyze threads. A thread
  that wants the lock waits ``switchinterval`` (Python's default 5 ms) before it asks
  the holder to drop it, so the loop woke up to 5 ms late — half the 10 ms lag goal —
  on top of its own work. ``SWITCH_INTERVAL_S`` = 1 ms caps that wait nearer 1 ms; the
  extra hand-overs cost the tracking thread microseconds each.
* a full (generation 2) collection walks every tracked object, and a started daemon
  holds ~62,000 of them, nearly all from start-up (modules, the models' wrappers, the
  routes): 75–105 ms per collection on that VM, which stalls the loop whichever thread
  it runs on (the collector holds the lock). Collected once and then frozen, start-up's
  objects are skipped: the same collection takes ~0.1 ms.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

SWITCH_INTERVAL_S: Final = 0.001
"""How long a thread waits for the interpreter lock before it asks the holder to drop it."""


_daemons = 0  # started in this process and not yet cleaned up
_interval_before = 0.0


async def interpreter_ctx(app: web.Application) -> AsyncIterator[None]:
    """Once every component above has started: the switch interval, then start-up's
    garbage collected and the rest frozen. Undone when the last daemon of the process
    cleans up (tests run several at once)."""
    del app
    global _daemons, _interval_before  # noqa: PLW0603  (process-wide, as the settings)
    if not _daemons:
        _interval_before = sys.getswitchinterval()
    _daemons += 1
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # Start-up's garbage (cycles from imports, parsing the config) is collected first:
    # frozen, it would never be.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        _daemons -= 1
        if not _daemons:
            gc.unfreeze()
            sys.setswitchinterval(_interval_before)
