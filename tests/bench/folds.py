"""CPU of one projection fold, per event: the ledger events a `make bench` run left in the 人社局's
supervision database, folded again into fresh intake and supervision SQLite databases (the real Alembic
migrations), one unit of work per event as the consumers do, on this process's own CPU clock. For
profiling the projections without the federation around them:

    python -m tests.bench.folds [--source var/bench/fed/510104-rsj/supervision.db] [--profile]

Figures, not assertions (the 2-core test machine: intake ≈ 0.73 ms, supervision ≈ 0.88 ms a fold, from
1.6 / 1.9 ms with ORM objects and 0.93 / 1.20 ms with statements built anew each time). A unit of work
per event, as here, is the consumers' worst case: they fold a pulled batch in units of up to 32 events."""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import sqlite3
import time
from pathlib import Path

from services.intake import handlers as intake
from services.supervision import handlers as supervision
from shared.bus.envelope import Event
from shared.config import load_directory, load_node
from shared.db.migrations import upgrade_head
from shared.db.session import Database
from shared.launcher import REPO

FED = REPO / "var" / "bench" / "fed"
WARM_UP = 200  # events folded before timing (the first cases, imports, statement caches)


def ledger_events(source: Path) -> list[tuple[Event, int]]:
    with sqlite3.connect(source) as db:
        found = db.execute("SELECT event_id, case_id, type, agency, actor, time, audience, payload, stream_seq "
                           "FROM sv_events ORDER BY stream_seq").fetchall()
    return [(Event(id=r[0], case_id=r[1], type=r[2], agency=r[3], actor=r[4], time=r[5], audience=json.loads(r[6]),
                   payload=json.loads(r[7])), r[8]) for r in found]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=FED / "510104-rsj" / "supervision.db")
    ap.add_argument("--node", type=Path, default=FED / "nodes" / "510104-rsj.toml")
    ap.add_argument("--profile", action="store_true", help="cProfile the timed folds (top 30 by cumulative time)")
    a = ap.parse_args()
    if not a.source.exists():
        raise SystemExit(f"{a.source} not found: run `make bench` first (its databases stay under var/bench/)")
    events = ledger_events(a.source)
    cfg = load_node(a.node)
    ctx = supervision.SupervisionContext(cfg=cfg, directory=load_directory(cfg.directory))
    folds = {"intake": lambda s, ev, seq: intake.fold_event(s, cfg.agency, ev, seq, True),
             "supervision": lambda s, ev, seq: supervision.project_event(s, ctx, ev, seq, True)}
    work = REPO / "var" / "bench-folds"
    for service, fold in folds.items():
        shutil.rmtree(work / service, ignore_errors=True)
        (work / service).mkdir(parents=True)
        url = f"sqlite:///{work / service / 'fold.db'}"
        upgrade_head(REPO / "services" / service, url)
        db = Database(url)
        for ev, seq in events[:WARM_UP]:
            db.run_alone(lambda s: fold(s, ev, seq))
        profile = cProfile.Profile() if a.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        for ev, seq in events[WARM_UP:]:
            db.run_alone(lambda s: fold(s, ev, seq))  # (in this thread: the CPU clock and cProfile see it)
        if profile:
            profile.disable()
        n = len(events) - WARM_UP
        print(f"{service:12} {n} events: {1000 * (time.process_time() - cpu) / n:.2f} ms CPU, "
              f"{1000 * (time.perf_counter() - wall) / n:.2f} ms wall per fold")
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        db.dispose()


if __name__ == "__main__":
    main()
