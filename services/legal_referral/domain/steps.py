"""检调对接 "5+1" at the procuratorate: 书面告知 → 风险评估 → 预调解 → 监督和解 → 跟踪回访, plus 公开听证
when it is chosen. Steps are recorded in order; none may be skipped silently. Pure domain."""
from __future__ import annotations

from datetime import date

STEPS = ("书面告知", "风险评估", "预调解", "监督和解", "跟踪回访")
HEARING = "公开听证"
ALL_STEPS = (*STEPS, HEARING)


class StepRefused(ValueError):
    """A step out of order: `missing` names the step that has to be recorded first (or None)."""

    def __init__(self, message: str, missing: str | None = None):
        super().__init__(message)
        self.missing = missing


def check_step(done: list[dict], step: str, on: date, hearing: bool = False) -> None:
    """Raise StepRefused unless `step` may be recorded now, after the steps `done` ({step, date, hearing}).

    The five steps go in order. 公开听证 is optional: it may be held after 风险评估 and before 跟踪回访, and
    it becomes required before 跟踪回访 when chosen (风险评估 recorded with hearing = true)."""
    if step not in ALL_STEPS:
        raise ValueError(f"step: 未知步骤 {step!r}（应为 {'、'.join(ALL_STEPS)}）")
    names = [d["step"] for d in done]
    if step in names:
        raise StepRefused(f"“{step}”已记录，不能重复记录 (step already recorded)")
    if done and on < max(date.fromisoformat(d["date"]) for d in done):
        last = max(done, key=lambda d: d["date"])
        raise StepRefused(f"日期 {on.isoformat()} 早于已记录的“{last['step']}”（{last['date']}）(date before an earlier step)")
    if step == HEARING:
        needed = STEPS[:2]
        if STEPS[-1] in names:
            raise StepRefused(f"已“{STEPS[-1]}”，不能再安排“{HEARING}” (hearing after follow-up)")
    else:
        needed = STEPS[:STEPS.index(step)]
    for prior in needed:
        if prior not in names:
            raise StepRefused(f"尚未记录“{prior}”，不能跳过该步骤记录“{step}” (missing step: {prior})", prior)
    chosen = any(d.get("hearing") for d in done if d["step"] == STEPS[1])
    if step == STEPS[-1] and chosen and HEARING not in names:
        raise StepRefused(f"风险评估决定举行“{HEARING}”，尚未记录，不能跳过该步骤记录“{step}” (missing step: {HEARING})",
                          HEARING)


def next_steps(done: list[dict]) -> list[str]:
    """What may be recorded next (for the clerk's screen)."""
    out = []
    for step in ALL_STEPS:
        try:
            check_step(done, step, max((date.fromisoformat(d["date"]) for d in done), default=date.min))
        except (StepRefused, ValueError):
            continue
        out.append(step)
    return out
