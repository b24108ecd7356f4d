"""风险等级 from explicit signals (三级 < 二级 < 一级), with the reasons that raised it."""
from __future__ import annotations

LEVELS = ("三级", "二级", "一级")
EXTREME = ("自焚", "跳楼", "自杀", "爆炸", "同归于尽", "极端")
GO_UP = ("进京", "去北京", "到北京", "赴京", "去省里", "到省里", "赴省")


def assess(*, collective: bool, repeat_count: int, text: str) -> dict:
    level, reasons = -1, []

    def raise_to(i: int, why: str) -> None:
        nonlocal level
        level = max(level, i)
        reasons.append(why)

    if repeat_count:
        raise_to(0, f"重复信访 {repeat_count} 次")
    if collective:
        raise_to(1, "集体访（5人以上）")
    if any(w in text for w in GO_UP):
        raise_to(1, "表示将赴省进京")
    if any(w in text for w in EXTREME):
        raise_to(2, "扬言采取极端行为")
    return {"level": LEVELS[level] if level >= 0 else None, "reasons": reasons}


def with_repeat(current: dict, repeat_count: int) -> dict:
    """A repeat petition raises the level to at least 三级 and says how often the matter came back."""
    level = current.get("level")
    if level is None:
        level = LEVELS[0]
    reasons = [r for r in current.get("reasons", []) if not r.startswith("重复信访")]
    return {"level": level, "reasons": [f"重复信访 {repeat_count} 次", *reasons]}
