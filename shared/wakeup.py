"""Wake-ups for the background loops of a service (the outbox relay, the dispatchers), so they sleep while
there is nothing to do instead of polling: an idle federation of 35 processes spent a third of a core on
polls every 0.25–1 s."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from datetime import datetime, timezone
from typing import Awaitable, Callable

log = logging.getLogger(__name__)
IDLE_ENV = "LIANFANG_IDLE_POLL_S"
# A safety net only: what no wake-up announces (rows another process wrote) is found this often. (Tests set
# it out of reach, so whatever they wait for must come from a wake-up.)
IDLE_S = float(os.environ.get(IDLE_ENV, "5"))
ERROR_PAUSE_S = 0.5  # after a failed round (the database failing): not straight back to it


class Wakeup:
    """Wakes one waiting task. It may be rung from any thread: units of work commit on the SQLite
    group-commit writer or on worker threads, not on the event loop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def ring(self) -> None:
        # Already rung and not yet cleared: the waiter has still to clear and then look for work, so it
        # will see what this ring announces (committed before it). Nothing to send across threads then —
        # under load most rings come while set, and each cross-thread call wakes the event loop.
        if self._event.is_set():
            return
        if self._loop is None or threading.get_ident() == self._loop_thread:
            self._event.set()
        else:
            self._loop.call_soon_threadsafe(self._event.set)

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        """Before looking for work: a ring while looking is kept, so the next wait returns at once."""
        self._event.clear()

    async def wait(self, timeout: float = IDLE_S) -> bool:
        """Until rung (True) or `timeout` seconds (False)."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=max(timeout, 0.0))
            return True
        return False


def seconds_until(when: datetime | None) -> float:
    """How long to sleep for something due at `when` (None: nothing is due), at most IDLE_S."""
    if when is None:
        return IDLE_S
    if when.tzinfo is None:  # (SQLite gives back naive UTC)
        when = when.replace(tzinfo=timezone.utc)
    return min(max((when - datetime.now(timezone.utc)).total_seconds(), 0.0), IDLE_S)


async def dispatch(what: str, one_round: Callable[[], Awaitable[bool]],
                   next_due: Callable[[datetime], Awaitable[datetime | None]], wakeup: Wakeup,
                   stop: asyncio.Event) -> None:
    """The loop of a dispatcher that delivers owed calls to other nodes (offers, referrals, invitations):
    a round (True: it may have left work — it took a full batch — so look again at once), else sleep until
    `wakeup` rings (the relay published the event a delivery waits for) or the earliest retry is due.

    `next_due(began)`: the earliest retry due after `began`, the moment the round began. A retry that
    fell due while the round looked is then due now, and the next round takes it. (Asked for retries due
    after *now* instead, a round at the very moment a retry fell due found it not yet due, and next_due
    no longer in the future: the dispatcher slept IDLE_S.)"""
    while not stop.is_set():
        wakeup.clear()
        began = datetime.now(timezone.utc)
        try:
            if await one_round():
                continue
            wait = seconds_until(await next_due(began))
        except Exception as e:
            log.warning("%s: %s", what, e)
            await asyncio.sleep(ERROR_PAUSE_S)
            continue
        await wakeup.wait(wait)
