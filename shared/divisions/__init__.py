"""GB/T 2260 administrative divisions (行政区划): lookup and the county → city → province chain.

属地管理、分级负责: responsibility follows the division and its level, so routing and supervision
both need to walk a code up its hierarchy."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

LEVELS = ("county", "city", "province")
_TABLE = Path(__file__).with_name("gbt2260.csv")


class UnknownDivision(ValueError):
    pass


@lru_cache(maxsize=1)
def table() -> dict[str, str]:
    rows = (line for line in _TABLE.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    return {r["code"]: r["name"] for r in csv.DictReader(rows)}


def name(code: str) -> str:
    try:
        return table()[code]
    except KeyError:
        raise UnknownDivision(f"未知的行政区划代码 unknown division code: {code}") from None


def level(code: str) -> str:
    """county (区县), city (地市) or province (省) — read off the code's shape."""
    name(code)
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def parent(code: str) -> str | None:
    lvl = level(code)
    if lvl == "province":
        return None
    up = code[:2] + "0000" if lvl == "city" else code[:4] + "00"
    # Municipalities' districts (e.g. 110105) have no listed city row: go straight to the province.
    return up if up in table() else code[:2] + "0000"


def chain(code: str) -> list[str]:
    """The code and its ancestors, nearest first: ['510104', '510100', '510000']."""
    out = [code]
    while (up := parent(out[-1])) is not None:
        out.append(up)
    return out


def contains(outer: str, inner: str) -> bool:
    """True when `inner` lies within `outer` (or is it)."""
    return outer in chain(inner)
