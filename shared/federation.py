"""Generate a federation: the shared directory plus one node config per agency, with secrets,
per-role demo tokens, free loopback ports, TLS material from a dev CA (root/tls/, shared/certs.py)
and one NATS user per node. Used by `make run`, the tests and the benchmark."""
from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from shared import divisions
from shared.certs import NATS_SERVER, DevCA
from shared.config import SERVICE_NAMES, TlsConfig
from shared.crypto import new_key, token_hash

ROLES = ("clerk", "handler", "supervisor", "leader", "auditor", "admin")

# The demo federation of DESIGN §4: one county (锦江区 510104) and its city (成都市 510100).
DEMO_NODES = [
    ("510104-xfj", "锦江区信访局", "petition_bureau", "510104"),
    ("510104-fy", "锦江区人民法院", "court", "510104"),
    ("510104-jcy", "锦江区人民检察院", "procuratorate", "510104"),
    ("510104-rsj", "锦江区人力资源和社会保障局", "hrss", "510104"),
    ("510104-mzj", "锦江区民政局", "civil_affairs", "510104"),
    ("510104-sfj", "锦江区司法局", "justice", "510104"),
    ("510100-xfj", "成都市信访局", "petition_bureau", "510100"),
]


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now, and not already handed out by this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class NodeSpec:
    agency: str
    name: str
    type: str
    division: str
    config_path: Path
    http: dict[str, str] = field(default_factory=dict)   # service → host:port
    grpc: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # role → clear demo token
    tls: TlsConfig | None = None       # the node's certificate, key and the federation CA
    bus_password: str | None = None    # its NATS user is its agency id

    @property
    def level(self) -> str:
        return divisions.level(self.division)

    def url(self, service: str = "intake") -> str:
        return f"http://{self.http[service]}"


@dataclass
class Federation:
    root: Path
    nats_url: str
    nodes: list[NodeSpec]
    nats_tls: TlsConfig | None = None  # the NATS server's certificate (no agency identity)

    def node(self, agency: str) -> NodeSpec:
        return next(n for n in self.nodes if n.agency == agency)

    def bus_users(self) -> dict[str, str]:
        """NATS user (agency id) → password, for the server's authorization block."""
        return {n.agency: n.bus_password for n in self.nodes if n.bus_password}


def _toml_str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build(root: Path, nats_url: str, nodes=DEMO_NODES, *, database_url: Callable[[str, str], str] | None = None,
          auto_sign_for: bool = True, rules: Path | None = None, manual_sign: set[str] = frozenset(),
          tls: bool = True, replicas: int = 1) -> Federation:
    """Write root/federation.toml and root/nodes/<agency>.toml. `database_url(agency, service)` picks
    the database; SQLite files under root/<agency>/ by default. Agencies in `manual_sign` have
    auto_sign_for off (a clerk signs, as in production). With `tls` (the default) a dev CA under
    root/tls/ issues each node's certificate and the NATS server's, the nodes reach NATS at tls://
    as their own users, and the NATS server must be given them (`NatsServer.secure(federation)`)."""
    root = root.resolve()
    (root / "nodes").mkdir(parents=True, exist_ok=True)
    pseudonym_key = new_key()
    ca = DevCA.load_or_create(root / "tls") if tls else None
    if tls:  # (a cluster's url lists every server)
        nats_url = ",".join("tls://" + u.removeprefix("nats://") if u.startswith("nats://") else u
                            for u in nats_url.split(","))
    specs = []
    for agency, name, type_, division in nodes:
        spec = NodeSpec(agency, name, type_, division, root / "nodes" / f"{agency}.toml")
        for svc in SERVICE_NAMES:
            spec.http[svc] = f"127.0.0.1:{free_port()}"
            spec.grpc[svc] = f"127.0.0.1:{free_port()}"
        spec.tokens = {role: f"lf_{agency}_{role}_{secrets.token_urlsafe(18)}" for role in ROLES}
        if ca:
            spec.tls = ca.issue_node(agency)
            spec.bus_password = secrets.token_urlsafe(24)
        specs.append(spec)

    directory = ["# Federation directory: every node as the others see it. Shared by all nodes.\n"]
    for n in specs:
        directory.append(f"[[nodes]]\nagency = {_toml_str(n.agency)}\nname = {_toml_str(n.name)}\n"
                         f"type = {_toml_str(n.type)}\ndivision = {_toml_str(n.division)}\nlevel = {_toml_str(n.level)}\n"
                         f"intake_http = {_toml_str(n.http['intake'])}\n"
                         f"grpc = {{ {', '.join(f'{svc} = {_toml_str(addr)}' for svc, addr in n.grpc.items())} }}\n\n")
    (root / "federation.toml").write_text("".join(directory), encoding="utf-8")

    for n in specs:
        data_dir = root / n.agency
        data_dir.mkdir(exist_ok=True)
        lines = [f"# Node config for {n.name} — generated by shared/federation.py",
                 f"agency = {_toml_str(n.agency)}", f"name = {_toml_str(n.name)}", f"type = {_toml_str(n.type)}",
                 f"division = {_toml_str(n.division)}", f"level = {_toml_str(n.level)}",
                 f"auto_sign_for = {'true' if auto_sign_for and n.agency not in manual_sign else 'false'}",
                 f"data_dir = {_toml_str(str(data_dir))}", f"directory = {_toml_str(str(root / 'federation.toml'))}"]
        if rules:
            lines.append(f"rules = {_toml_str(str(rules))}")
        lines += ["", "[bus]", f"url = {_toml_str(nats_url)}", f"replicas = {replicas}"]
        if n.bus_password:
            lines += [f"user = {_toml_str(n.agency)}", f"password = {_toml_str(n.bus_password)}"]
        lines += ["", "[secrets]", f"field_key = {_toml_str(new_key())}", f"pseudonym_key = {_toml_str(pseudonym_key)}", ""]
        if n.tls:
            lines += ["[tls]", *(f"{k} = {_toml_str(str(getattr(n.tls, k)))}" for k in ("ca", "cert", "key")), ""]
        for svc in SERVICE_NAMES:
            db = database_url(n.agency, svc) if database_url else f"sqlite:///{data_dir / (svc + '.db')}"
            lines += [f"[services.{svc}]", f"http = {_toml_str(n.http[svc])}", f"grpc = {_toml_str(n.grpc[svc])}",
                      f"database = {_toml_str(db)}", ""]
        for role, tok in n.tokens.items():
            lines += ["[[users]]", f"name = {_toml_str(f'demo-{role}')}", f"role = {_toml_str(role)}",
                      f"token_sha256 = {_toml_str(token_hash(tok))}", ""]
        n.config_path.touch(mode=0o600)
        n.config_path.chmod(0o600)  # secrets and the bus password
        n.config_path.write_text("\n".join(lines), encoding="utf-8")
    return Federation(root=root, nats_url=nats_url, nodes=specs,
                      nats_tls=ca.issue_server(NATS_SERVER) if ca else None)
