"""`kill -USR1 <pid>`: a service process logs where each of its threads and asyncio tasks is waiting.

For an operator whose node has stopped making progress while its /healthz still answers: py-spy shows
threads, but not which coroutine waits on what. One log record (WARNING, logger shared.stacks) holds it all.
A process whose event loop is blocked cannot answer; `native(pid)` reads its threads from outside."""
from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

log = logging.getLogger(__name__)
HEADING = "stacks on SIGUSR1"  # the log record's first line


def report() -> str:
    """Every thread's stack, then every pending asyncio task's (of the running loop)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = [f"thread {names.get(ident, ident)}:\n{''.join(traceback.format_stack(frame))}"
             for ident, frame in sys._current_frames().items()]
    for task in asyncio.all_tasks():
        parts.append(f"task {task.get_name()}:\n{''.join(_awaiting(task.get_coro()))}")
    return "\n".join(parts)


def _awaiting(coro) -> list[str]:
    """The chain of awaits of a suspended coroutine, outermost first (Task.get_stack gives only the outermost)."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:  # a Future or a finished coroutine: the end of the chain
            lines.append(f"  awaits {coro!r}\n")
            break
        lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}\n')
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return lines


def own_tasks(text: str) -> list[str]:
    """Of a report(): the asyncio tasks waiting in Lianfang's own code (not the server's lifespan, not threads)."""
    return [part for part in text.split("\n\n") if part.lstrip().startswith("task ")
            and ("/shared/" in part or "/services/" in part) and "uvicorn/lifespan" not in part]


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Log report() on SIGUSR1 (from the event loop: a loop that is itself stuck logs nothing, which tells too)."""
    loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning("%s\n%s", HEADING, report()))


def native(pid: int) -> str:
    """Every thread's Python stack of process `pid`, read from outside by py-spy (in the test extras): where
    a process that cannot answer SIGUSR1 is stuck."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        return "(py-spy is not installed: no stacks)"
    try:
        done = subprocess.run([spy, "dump", "--nonblocking", "--pid", str(pid)], capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        return "(py-spy dump did not finish within 20 s)"
    return (done.stdout or done.stderr).strip()
