"""Test support: real nats-server, real PostgreSQL, real node processes, and a small HTTP client."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from shared import federation, idnumber
from shared.federation import free_port

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").exists() else None


def valid_id(n: int) -> str:
    """A well-formed 居民身份证号 for person n (birth dates spread over 1960–1989)."""
    body = f"510104{1960 + n % 30}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + idnumber.check_char(body)


class Http:
    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base.rstrip("/"), token

    def call(self, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)


def wait_for(predicate, timeout: float = 20, interval: float = 0.2, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class PostgresServer:
    """A throw-away PostgreSQL cluster on loopback (initdb + pg_ctl), run as the postgres user when root."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.data = root / "pgdata"

    def _as_pg(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start(self) -> "PostgresServer":
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL server binaries missing: run `make pg` (Debian package postgresql)")
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._as_pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-locale")
        self._as_pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"), "-w", "-o",
                    f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300",
                    "start")
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        import sqlalchemy as sa
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        self._as_pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


def pg_database_url(pg: PostgresServer, prefix: str):
    def make(agency: str, service: str) -> str:
        return pg.create_db(f"{prefix}_{agency}_{service}".replace("-", "_"))
    return make


def petition(n: int = 1, **over) -> dict:
    body = {"channel": "visit", "division": "510104", "title": f"拖欠工资{n}",
            "content": f"某建材公司拖欠员工三个月工资，第{n}号，共计{n * 1000}元，多次催要无果。",
            "category": "劳动社保", "persons": 1, "petitioner": {"name": f"测试人{n}", "id_number": valid_id(n)}}
    body.update(over)
    return body


__all__ = ["federation"]


def calls_into(loop) -> list[tuple[str, Callable]]:
    """From now on, every call made into `loop` with call_soon_threadsafe (each wakes it from another
    thread), as (the calling thread's name, the callback)."""
    calls: list[tuple[str, Callable]] = []
    original = loop.call_soon_threadsafe

    def recorded(callback, *args, **kwargs):
        calls.append((threading.current_thread().name, callback))
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = recorded
    return calls
