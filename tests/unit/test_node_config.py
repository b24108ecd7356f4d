"""Node and directory configs (shared/config.py): the committed examples load, and a typo or a missing
setting stops start-up with a message naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import load_directory, load_node

INFRA = Path(__file__).resolve().parents[2] / "infra" / "nodes"


def test_committed_configs_load():
    """The examples and the docker-compose federation's configs."""
    compose = INFRA.parent / "compose"
    files = sorted(INFRA.glob("example-5*.toml")) + sorted((compose / "nodes").glob("*.toml"))
    assert len(files) >= 9
    for f in files:
        cfg = load_node(f)
        assert cfg.agency in f.name and cfg.services
    assert {n.agency for n in load_directory(INFRA / "example-federation.toml").nodes} >= {"510104-xfj", "510104-rsj"}
    assert len(load_directory(compose / "federation.toml").nodes) == 7


def _variant(tmp_path: Path, edit) -> Path:
    text = (INFRA / "example-510104-xfj.toml").read_text(encoding="utf-8")
    out = tmp_path / "node.toml"
    out.write_text(edit(text), encoding="utf-8")
    return out


@pytest.mark.parametrize("edit,named", [
    (lambda t: t.replace("[services.intake]", '[services.intake]\ndatabse = "sqlite:///x.db"', 1),
     "services.intake.databse: 未知配置项 unknown key"),
    (lambda t: "auto_sign = true\n" + t, "auto_sign: 未知配置项 unknown key"),
    (lambda t: t.replace("[bus]", '[bus]\nreplica = 3', 1), "bus.replica: 未知配置项 unknown key"),
    (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("name")), "name: Field required"),
])
def test_a_typo_or_missing_setting_is_named(tmp_path, edit, named):
    with pytest.raises(SystemExit) as e:
        load_node(_variant(tmp_path, edit))
    assert named in str(e.value) and "配置无效" in str(e.value)
