"""Node configuration: one TOML file per node (agency identity, services, databases, bus, secrets).

A node's config also points at the federation directory — the list of every node with its
addresses — which all nodes of a federation share (see infra/nodes/README.md)."""
from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared import divisions

AgencyType = Literal["petition_bureau", "court", "procuratorate", "hrss", "civil_affairs", "justice",
                     "public_security", "natural_resources", "housing", "ecology", "veterans"]
Role = Literal["clerk", "handler", "supervisor", "leader", "auditor", "admin"]
AGENCY_PATTERN = r"^[a-z0-9][a-z0-9-]{1,40}$"
ServiceName = Literal["intake", "routing", "supervision", "joint_reception", "legal_referral"]
ALL_SERVICES: tuple[str, ...] = ("intake", "routing", "supervision", "joint_reception", "legal_referral")
_SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
# The services this checkout has (a service exists once services/<name>/__main__.py does).
SERVICE_NAMES: tuple[str, ...] = tuple(s for s in ALL_SERVICES if (_SERVICES_DIR / s / "__main__.py").exists())


class Strict(BaseModel):
    """A config section: a key it does not know (a typo such as `databse`) is an error, not ignored."""
    model_config = ConfigDict(extra="forbid")


class ServiceConfig(Strict):
    http: str = Field(description="host:port of the service's HTTP app")
    grpc: str | None = Field(default=None, description="host:port of its gRPC server, if it serves calls")
    database: str = Field(description="SQLAlchemy URL of the service's own database")


class BusConfig(Strict):
    url: str = Field(default="nats://127.0.0.1:4222", description="one server, or every server of a cluster separated by commas")
    user: str | None = None
    password: str | None = None
    stream: str = "LF_LEDGER"
    replicas: int = Field(default=1, ge=1, le=5, description="stream replicas (3 on a JetStream cluster)")


class TlsConfig(Strict):
    """PEM files for mutual TLS. When a node has them, its gRPC servers require client certificates from
    the federation CA, its gRPC calls present its own, and it reaches NATS over TLS (shared/certs.py)."""
    ca: Path = Field(description="the federation CA certificate: the only issuer trusted")
    cert: Path = Field(description="this node's certificate (SAN URI lianfang://agency/<agency>)")
    key: Path = Field(description="its private key")


class Secrets(Strict):
    field_key: str = Field(description="base64 AES-256-GCM key; identity fields at rest")
    old_field_keys: list[str] = Field(default_factory=list, description="previous keys, still readable (rotation)")
    pseudonym_key: str = Field(description="base64 HMAC key shared by the federation; repeat detection")

    @field_validator("field_key", "pseudonym_key")
    @classmethod
    def _32_bytes(cls, v: str) -> str:
        if len(base64.b64decode(v)) != 32:
            raise ValueError("must be 32 bytes, base64-encoded")
        return v


class User(Strict):
    name: str
    role: Role
    token_sha256: str


class NodeConfig(Strict):
    agency: str = Field(pattern=AGENCY_PATTERN)
    name: str
    type: AgencyType
    division: str
    level: Literal["county", "city", "province"]
    auto_sign_for: bool = False
    max_returns: int = 3
    offer_timeout_s: float = 5.0
    data_dir: Path
    directory: Path
    rules: Path | None = None
    legal_channels: Path | None = Field(default=None, description="legal channel rules (default infra/legal/channels.toml)")
    joint_reception_centre: Path | None = Field(
        default=None, description="联合接访中心 config a petition-bureau node hosts (default: "
                                  "infra/joint_reception/centre.toml, hosted by the node it names)")
    bus: BusConfig = BusConfig()
    secrets: Secrets
    tls: TlsConfig | None = Field(default=None, description="absent: plain gRPC and NATS (old configs)")
    services: dict[ServiceName, ServiceConfig]
    users: list[User] = Field(default_factory=list)

    @model_validator(mode="after")
    def _division_matches_level(self) -> "NodeConfig":
        if divisions.level(self.division) != self.level:
            raise ValueError(f"division {self.division} is a {divisions.level(self.division)}, not {self.level}")
        return self


class DirectoryEntry(Strict):
    """One node as the rest of the federation sees it."""
    agency: str
    name: str
    type: AgencyType
    division: str
    level: Literal["county", "city", "province"]
    intake_http: str | None = None
    grpc: dict[str, str] = Field(default_factory=dict, description="service name → host:port of its gRPC server")


class Directory(Strict):
    nodes: list[DirectoryEntry]

    def get(self, agency: str) -> DirectoryEntry | None:
        return next((n for n in self.nodes if n.agency == agency), None)

    def find(self, type_: str, division: str) -> DirectoryEntry | None:
        return next((n for n in self.nodes if n.type == type_ and n.division == division), None)

    def supervising_bureaus(self, division: str) -> list[str]:
        """Petition bureaus of the division and every level above it: they supervise its cases."""
        chain = divisions.chain(division)
        return [n.agency for n in self.nodes if n.type == "petition_bureau" and n.division in chain]


def load_node(path: str | Path) -> NodeConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"{path}: not valid TOML: {e}") from None
    return _validated(NodeConfig, raw, path)


def load_directory(path: str | Path) -> Directory:
    return _validated(Directory, tomllib.loads(Path(path).read_text(encoding="utf-8")), Path(path))


def _validated(model: type[BaseModel], raw: dict, path: Path):
    """The config, or start-up stops with every problem named by its key path."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: "
                             f"{'未知配置项 unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"
                             for err in e.errors())
        raise SystemExit(f"{path}: 配置无效 invalid config — {problems}") from None
