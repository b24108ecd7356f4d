"""Responsibility rules (infra/routing/rules.toml) and the decision they produce. Pure domain."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from shared import divisions, rulefile
from shared.categories import CATEGORIES
from shared.config import AgencyType, Directory

AGENCY_TYPES = set(get_args(AgencyType))
SKIPPED_LEVEL_NOTICE = ("您反映的事项属于{county}职权范围，依照《信访工作条例》逐级走访的规定，"
                        "已转交{body}办理，请向该机关了解办理情况。")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    lead: str
    why: str
    keywords: tuple[str, ...] = ()
    co_handlers: tuple[str, ...] = ()
    legal: bool = False


@dataclass
class Decision:
    """Which body, by which rule, and why. `manual` = no body found: the bureau decides by hand."""
    rule: str
    reason: str
    target: str
    co_handlers: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    manual: bool = False
    notice: str | None = None


def load_rules(path: Path) -> list[Rule]:
    text, doc = rulefile.parse(path, RuleError)
    rules = []
    for e in rulefile.entries(path, text, doc, "rule", RuleError):
        e.check_keys({"id", "category", "lead", "why"}, {"keywords", "co_handlers", "legal"}, RuleError)
        r = e.data
        if r["category"] not in CATEGORIES:
            raise RuleError(f"{e.where}: unknown category {r['category']!r}")
        for t in [r["lead"], *r.get("co_handlers", [])]:
            if t not in AGENCY_TYPES:
                raise RuleError(f"{e.where}: unknown agency type {t!r}")
        rules.append(Rule(id=r["id"], category=r["category"], lead=r["lead"], why=r["why"],
                          keywords=tuple(r.get("keywords", ())), co_handlers=tuple(r.get("co_handlers", ())),
                          legal=bool(r.get("legal", False))))
    if not rules:
        raise RuleError(f"{path}: no [[rule]] entries")
    return rules


def _bureau_for(directory: Directory, division: str) -> str | None:
    """The petition bureau nearest the division, walking up the hierarchy."""
    for code in divisions.chain(division):
        if bureau := directory.find("petition_bureau", code):
            return bureau.agency
    return None


def decide(rules: list[Rule], directory: Directory, *, category: str | None, division: str, text: str,
           origin: str, excluded: set[str] = frozenset(), reported: str | None = None) -> Decision:
    """属地管理、分级负责，谁主管、谁负责: the responsible body at the case's own division and level."""
    category = category or "其他"
    rule = next((r for r in rules if r.category == category and (not r.keywords or any(k in text for k in r.keywords))),
                None)
    bureau = _bureau_for(directory, division)
    if rule is None:
        return Decision("none", f"没有适用于类别“{category}”的规则，转信访局人工分办", bureau or origin, manual=True)
    flags = ["legal_channel"] if rule.legal else []
    origin_entry = directory.get(origin)
    body = directory.find(rule.lead, division)
    if origin_entry and divisions.LEVELS.index(origin_entry.level) > divisions.LEVELS.index(divisions.level(division)):
        flags.append("skipped_level")  # 越级: lodged above the level the matter belongs to
    co = [n.agency for t in rule.co_handlers if (n := directory.find(t, division)) and n.agency != reported]
    reason = f"规则 {rule.id}：{rule.why}；属地 {divisions.name(division)}（{division}）"
    if body is not None and body.agency in excluded:
        # Returned (退回) as not competent: the same kind of body one level up decides, if the federation has it.
        upper = next((n for code in divisions.chain(division)[1:] if (n := directory.find(rule.lead, code))), None)
        if upper is not None and upper.agency not in excluded and upper.agency != reported:
            return Decision(rule.id, f"{reason}；{body.name}已退回，转上一级{upper.name}", upper.agency, co, flags)
    if body is None or body.agency in excluded or body.agency == reported:
        why = ("该机构已退回" if body and body.agency in excluded else
               "被检举对象不得承办" if body and body.agency == reported else "本联盟在该属地没有此类机构")
        return Decision(rule.id, f"{reason}；{why}，转信访局人工分办", bureau or origin, co, flags, manual=True)
    notice = None
    if "skipped_level" in flags:
        notice = SKIPPED_LEVEL_NOTICE.format(county=divisions.name(division), body=body.name)
    return Decision(rule.id, reason, body.agency, co, flags, notice=notice)
