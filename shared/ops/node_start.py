"""`lianfang node start`: run every service a node config lists, one process each, in the foreground.

For a single machine or a first try; production runs each service under a supervisor (systemd, compose —
docs/OPERATIONS.md §3). Ctrl-C or SIGTERM stops them all; one service exiting stops the rest, so a
supervisor around this command sees the node as down and restarts it whole."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.launcher import REPO


def run(config: Path, services: list[str], say) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = {svc: subprocess.Popen([sys.executable, "-m", f"services.{svc}", "--config", str(config)], cwd=REPO, env=env)
             for svc in services}
    say(f"已启动 started: {', '.join(f'{svc} (pid {p.pid})' for svc, p in procs.items())} — Ctrl-C 停止 to stop")
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    while not stopping and all(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
    exited = [svc for svc, p in procs.items() if p.poll() is not None]
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    if exited and not stopping:
        say(f"服务退出，节点已停止 a service exited, node stopped: {', '.join(exited)}", err=True)
        return 1
    say("已停止 stopped")
    return 0
