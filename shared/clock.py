"""The one injectable clock: real UTC time plus an offset, so tests move time forward instead of sleeping.

Every place that needs "now" for a statutory clock (event times, deadlines, the 督查督办 checker) calls
`now()`. The offset is read from the JSON file named by the environment variable LIANFANG_CLOCK_FILE
(`{"offset_seconds": 1296000}`), so one file moves time for every service process of a federation.
The file is re-read only when it changes (its stat signature), so `now()` stays cheap. Without the
variable, or without the file, the offset is zero: production runs on real time.

Tests: `set_offset(timedelta(days=14), path)` or `travel_to(datetime(...), path)`; the file is replaced
atomically, so a reader never sees half a write.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

ENV_VAR = "LIANFANG_CLOCK_FILE"
log = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict = {"key": None, "offset": timedelta(0)}


def _path(path: str | Path | None = None) -> str | None:
    return str(path) if path is not None else os.environ.get(ENV_VAR) or None


def offset(path: str | Path | None = None) -> timedelta:
    """The current offset (zero when no clock file is configured or present)."""
    p = _path(path)
    if p is None:
        return timedelta(0)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return timedelta(0)
    key = (p, st.st_ino, st.st_mtime_ns, st.st_size)
    with _lock:
        if key == _cache["key"]:
            return _cache["offset"]
        try:
            seconds = float(json.loads(Path(p).read_text(encoding="utf-8"))["offset_seconds"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("clock file %s unreadable (%s); keeping offset %s", p, e, _cache["offset"])
            return _cache["offset"]
        _cache.update(key=key, offset=timedelta(seconds=seconds))
        return _cache["offset"]


def now() -> datetime:
    """UTC now as the federation sees it (real time + the injected offset)."""
    return datetime.now(timezone.utc) + offset()


def set_offset(delta: timedelta, path: str | Path | None = None) -> None:
    """Write the offset for every process that reads this clock file (atomic replace)."""
    p = _path(path)
    if p is None:
        raise RuntimeError(f"no clock file: pass a path or set {ENV_VAR}")
    tmp = f"{p}.{os.getpid()}.tmp"
    Path(tmp).write_text(json.dumps({"offset_seconds": delta.total_seconds()}), encoding="utf-8")
    os.replace(tmp, p)


def travel_to(moment: datetime, path: str | Path | None = None) -> None:
    """Set the offset so that `now()` reads `moment` at this instant (time then runs on from there)."""
    set_offset(moment - datetime.now(timezone.utc), path)


def advance(delta: timedelta, path: str | Path | None = None) -> None:
    """Move the clock forward by `delta`."""
    set_offset(offset(path) + delta, path)
