"""`kill -USR1` on a service process (shared/stacks.py): one log record shows where each thread and each
asyncio task waits, down to the innermost await."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from shared import stacks


async def _stuck_on(gate: asyncio.Event) -> None:
    await _deeper(gate)


async def _deeper(gate: asyncio.Event) -> None:
    await gate.wait()


def test_sigusr1_logs_every_thread_and_the_chain_of_awaits_of_every_task(caplog):
    parked = threading.Event()
    worker = threading.Thread(target=parked.wait, name="parked-worker", daemon=True)
    worker.start()

    async def main():
        stacks.install(asyncio.get_running_loop())
        gate = asyncio.Event()
        task = asyncio.create_task(_stuck_on(gate), name="stuck-consumer")
        await asyncio.sleep(0.01)
        with caplog.at_level(logging.WARNING, logger="shared.stacks"):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(100):
                if caplog.records:
                    break
                await asyncio.sleep(0.01)
        gate.set()
        await task
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)

    asyncio.run(main())
    parked.set()
    [record] = caplog.records
    text = record.getMessage()
    assert "thread parked-worker:" in text
    task_part = text.split("task stuck-consumer:")[1]
    assert task_part.index("in _stuck_on") < task_part.index("in _deeper") < task_part.index("in wait")
