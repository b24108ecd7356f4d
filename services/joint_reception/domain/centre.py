"""联合接访中心: the centre's configuration file and the rules it carries. Pure domain (no framework).

The file (infra/joint_reception/centre.toml, or the node config's `joint_reception_centre`) says which
petition-bureau node hosts the hall, which topics (事项) visitors take tickets for and their category,
the windows (窗口) of the participating agencies, the duty roster (值班) with the sensitive periods
(敏感期) that require two people on duty, and the leader reception days (领导接访日). It is read once at
start; anything wrong stops the service with a message naming the file, the line and the rule."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from shared import divisions
from shared.categories import CATEGORIES
from shared.config import AGENCY_PATTERN

MIN_DUTY_ON_SENSITIVE_DAYS = 2  # 敏感日双人值班
GAP_HORIZON_DAYS = 30           # sensitive days without duty are reported this far ahead


class CentreConfigError(ValueError):
    """The centre file is wrong; the message names the file, the line and what to fix."""


@dataclass(frozen=True)
class Window:
    """窗口: one agency's desk in the hall and the topics it receives."""
    id: str
    agency: str
    name: str
    prefix: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class Duty:
    """值班: who is on duty in the hall on one day (and the leader in charge, 带班领导)."""
    day: date
    people: tuple[str, ...]
    lead: str | None = None


@dataclass(frozen=True)
class SensitivePeriod:
    """敏感期 (e.g. 国庆, 全国两会): every day in it needs two people on duty."""
    name: str
    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class LeaderDay:
    """领导接访日: which leader receives visitors on which day, for which topics. No leader = a gap."""
    day: date
    leader: str | None
    title: str | None = None
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Centre:
    host: str
    name: str
    division: str | None                   # None: the hosting node's division
    place: str
    topics: dict[str, str]                 # topic → category
    windows: tuple[Window, ...]
    roster: dict[date, Duty] = field(default_factory=dict)
    sensitive: tuple[SensitivePeriod, ...] = ()
    leader_days: dict[date, LeaderDay] = field(default_factory=dict)

    def category_of(self, topic: str) -> str:
        return self.topics[topic]

    def windows_for(self, topic: str) -> list[Window]:
        return [w for w in self.windows if topic in w.topics]

    def window(self, window_id: str) -> Window | None:
        return next((w for w in self.windows if w.id == window_id), None)

    def windows_of(self, agency: str) -> list[Window]:
        return [w for w in self.windows if w.agency == agency]

    def sensitive_period(self, day: date) -> SensitivePeriod | None:
        return next((p for p in self.sensitive if day in p), None)

    def duty_problem(self, day: date, people: list[str] | tuple[str, ...]) -> str | None:
        """Why a roster entry for `day` is refused, or None. The same rule at start and at run time."""
        names = [p.strip() for p in people]
        if not names or any(not n for n in names):
            return "值班人员不能为空 (people on duty must be named)"
        if len(set(names)) != len(names):
            return f"值班人员重复：{'、'.join(names)} (the same person is listed twice)"
        period = self.sensitive_period(day)
        if period and len(names) < MIN_DUTY_ON_SENSITIVE_DAYS:
            return (f"{day.isoformat()}为敏感日（{period.name}），须{MIN_DUTY_ON_SENSITIVE_DAYS}人以上双人值班，"
                    f"现仅{len(names)}人（{'、'.join(names)}） "
                    f"(a sensitive day needs at least {MIN_DUTY_ON_SENSITIVE_DAYS} people on duty, got {len(names)})")
        return None


def gaps(centre: Centre, today: date, roster: dict[date, Duty], leader_days: dict[date, LeaderDay],
         known_agencies: set[str] | None = None, horizon_days: int = GAP_HORIZON_DAYS) -> list[dict]:
    """缺位: what the centre's screen flags for the office to fill — leader reception days (from today on)
    with no leader assigned, sensitive days in the horizon with nobody on duty, and windows whose agency
    is not in the federation directory."""
    out: list[dict] = []
    for day in sorted(d for d in leader_days if d >= today):
        ld = leader_days[day]
        if not ld.leader:
            out.append({"kind": "leader_day_unassigned", "date": day.isoformat(), "topics": list(ld.topics),
                        "message": f"{day.isoformat()} 领导接访日尚未安排接访领导 (no leader assigned)"})
    for i in range(horizon_days + 1):
        day = today + timedelta(days=i)
        period = centre.sensitive_period(day)
        if period and day not in roster:
            out.append({"kind": "sensitive_day_without_duty", "date": day.isoformat(), "period": period.name,
                        "message": f"{day.isoformat()}（{period.name}）为敏感日，尚未安排双人值班 (no one on duty)"})
    if known_agencies is not None:
        for w in centre.windows:
            if w.agency not in known_agencies:
                out.append({"kind": "window_agency_unknown", "window": w.id, "agency": w.agency,
                            "message": f"窗口“{w.name}”的机构 {w.agency} 不在联盟目录中，无法接待 "
                                       "(the window's agency is not in the federation directory)"})
    out.sort(key=lambda g: (g.get("date") or "", g["kind"]))
    return out


# --- loading -------------------------------------------------------------------------------------

_TOP_KEYS = {"centre", "topics", "window", "duty", "sensitive_period", "leader_day"}
_KEYS = {"centre": ({"host", "name"}, {"division", "place"}),
         "window": ({"id", "agency", "name", "prefix"}, {"topics", "categories"}),
         "duty": ({"date", "people"}, {"lead"}),
         "sensitive_period": ({"name"}, {"from", "to", "date"}),
         "leader_day": ({"date"}, {"leader", "title", "topics"})}
_WINDOW_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def load_centre(path: str | Path) -> Centre:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CentreConfigError(f"{path}: 无法读取联合接访中心配置 (cannot read the centre file): {e}") from None
    return parse_centre(text, str(path))


def parse_centre(text: str, source: str = "centre.toml") -> Centre:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CentreConfigError(f"{source}: 不是有效的 TOML (not valid TOML): {e}") from None
    lines = {name: [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == f"[[{name}]]"]
             for name in ("window", "duty", "sensitive_period", "leader_day")}
    unknown = raw.keys() - _TOP_KEYS
    if unknown:
        raise CentreConfigError(f"{source}: 未知的配置项 unknown section(s) {', '.join(sorted(unknown))}; "
                                f"expected {', '.join(sorted(_TOP_KEYS))}")

    def where(kind: str, i: int, label: object) -> str:
        n = lines[kind][i] if i < len(lines[kind]) else "?"
        return f"{source} line {n} ([[{kind}]] {label})"

    def check_keys(kind: str, entry: dict, at: str) -> None:
        if not isinstance(entry, dict):
            raise CentreConfigError(f"{at}: 应为表 (must be a table)")
        required, optional = _KEYS[kind]
        missing = required - entry.keys()
        if missing:
            raise CentreConfigError(f"{at}: 缺少 missing {', '.join(sorted(missing))}")
        extra = entry.keys() - required - optional
        if extra:
            raise CentreConfigError(f"{at}: 未知的键 unknown key(s) {', '.join(sorted(extra))}")

    # [centre]
    c = raw.get("centre")
    if c is None:
        raise CentreConfigError(f"{source}: 缺少 [centre] 段 (missing [centre] with host and name)")
    check_keys("centre", c, f"{source} [centre]")
    host = _text(c["host"], f"{source} [centre] host")
    if not re.fullmatch(AGENCY_PATTERN, host):
        raise CentreConfigError(f"{source} [centre] host: 不是有效的机构标识 not an agency id: {host!r}")
    division = str(c["division"]) if "division" in c else None  # default: the hosting node's
    if division is not None:
        try:
            divisions.name(division)
        except ValueError:
            raise CentreConfigError(f"{source} [centre] division: 未知的行政区划代码 unknown division {division!r}") from None

    # [topics]
    topics_raw = raw.get("topics")
    if not isinstance(topics_raw, dict) or not topics_raw:
        raise CentreConfigError(f"{source}: 缺少 [topics] 段：事项 = 类别 (missing [topics]: topic = category)")
    topics: dict[str, str] = {}
    for topic, category in topics_raw.items():
        if not isinstance(category, str) or category not in CATEGORIES:
            raise CentreConfigError(f"{source} [topics] {topic!r}: 未知类别 unknown category {category!r}; "
                                    f"one of {', '.join(CATEGORIES)}")
        topics[topic.strip()] = category

    # [[window]]
    windows: list[Window] = []
    for i, w in enumerate(raw.get("window", [])):
        at = where("window", i, w.get("id", i + 1) if isinstance(w, dict) else i + 1)
        check_keys("window", w, at)
        wid, agency = _text(w["id"], f"{at} id"), _text(w["agency"], f"{at} agency")
        if not _WINDOW_ID.match(wid):
            raise CentreConfigError(f"{at}: 窗口标识应为小写字母、数字或连字符 (id must match [a-z0-9-]) : {wid!r}")
        if any(x.id == wid for x in windows):
            raise CentreConfigError(f"{at}: 窗口标识重复 duplicate window id {wid!r}")
        if not re.fullmatch(AGENCY_PATTERN, agency):
            raise CentreConfigError(f"{at}: 不是有效的机构标识 not an agency id: {agency!r}")
        prefix = _text(w["prefix"], f"{at} prefix")
        if not re.fullmatch(r"[A-Z]", prefix):
            raise CentreConfigError(f"{at}: 号码前缀应为一个大写字母 (prefix must be one letter A-Z): {prefix!r}")
        if any(x.prefix == prefix for x in windows):
            raise CentreConfigError(f"{at}: 号码前缀 {prefix} 已被其他窗口使用 (prefix already used)")
        served: list[str] = []
        for t in _list(w.get("topics", []), f"{at} topics"):
            if t not in topics:
                raise CentreConfigError(f"{at}: 事项 {t!r} 未在 [topics] 中定义 (topic not defined in [topics])")
            served.append(t)
        for cat in _list(w.get("categories", []), f"{at} categories"):
            if cat not in CATEGORIES:
                raise CentreConfigError(f"{at}: 未知类别 unknown category {cat!r}")
            served += [t for t, tc in topics.items() if tc == cat and t not in served]
        if not served:
            raise CentreConfigError(f"{at}: 窗口未受理任何事项 (the window serves no topic: give topics or categories)")
        windows.append(Window(id=wid, agency=agency, name=_text(w["name"], f"{at} name"), prefix=prefix,
                              topics=tuple(served)))
    if not windows:
        raise CentreConfigError(f"{source}: 至少需要一个 [[window]] 窗口 (no windows)")
    orphans = [t for t in topics if not any(t in w.topics for w in windows)]
    if orphans:
        raise CentreConfigError(f"{source}: 事项 {'、'.join(orphans)} 没有窗口受理 (no window serves these topics)")

    # [[sensitive_period]]
    periods: list[SensitivePeriod] = []
    for i, p in enumerate(raw.get("sensitive_period", [])):
        at = where("sensitive_period", i, p.get("name", i + 1) if isinstance(p, dict) else i + 1)
        check_keys("sensitive_period", p, at)
        if "date" in p and ("from" in p or "to" in p):
            raise CentreConfigError(f"{at}: date 与 from/to 只能二选一 (give date, or from and to)")
        if "date" in p:
            start = end = _date(p["date"], f"{at} date")
        elif "from" in p and "to" in p:
            start, end = _date(p["from"], f"{at} from"), _date(p["to"], f"{at} to")
        else:
            raise CentreConfigError(f"{at}: 缺少日期 (give date, or from and to)")
        if end < start:
            raise CentreConfigError(f"{at}: 结束日期早于开始日期 (to {end} is before from {start})")
        periods.append(SensitivePeriod(name=_text(p["name"], f"{at} name"), start=start, end=end))

    centre = Centre(host=host, name=_text(c["name"], f"{source} [centre] name"), division=division,
                    place=str(c.get("place", "")), topics=topics, windows=tuple(windows), sensitive=tuple(periods))

    # [[duty]]
    for i, d in enumerate(raw.get("duty", [])):
        at = where("duty", i, d.get("date", i + 1) if isinstance(d, dict) else i + 1)
        check_keys("duty", d, at)
        day = _date(d["date"], f"{at} date")
        if day in centre.roster:
            raise CentreConfigError(f"{at}: {day} 的值班已在前面安排 (duplicate roster day)")
        people = tuple(p.strip() for p in _list(d["people"], f"{at} people"))
        problem = centre.duty_problem(day, people)
        if problem:
            raise CentreConfigError(f"{at}: {problem}")
        lead = d.get("lead")
        centre.roster[day] = Duty(day=day, people=people, lead=_text(lead, f"{at} lead") if lead else None)

    # [[leader_day]]
    known = set(topics) | set(CATEGORIES)
    for i, ld in enumerate(raw.get("leader_day", [])):
        at = where("leader_day", i, ld.get("date", i + 1) if isinstance(ld, dict) else i + 1)
        check_keys("leader_day", ld, at)
        day = _date(ld["date"], f"{at} date")
        if day in centre.leader_days:
            raise CentreConfigError(f"{at}: {day} 已是领导接访日 (duplicate leader reception day)")
        for t in (ld_topics := _list(ld.get("topics", []), f"{at} topics")):
            if t not in known:
                raise CentreConfigError(f"{at}: 未知的事项或类别 unknown topic or category {t!r}")
        leader = ld.get("leader")
        if leader is not None and not isinstance(leader, str):
            raise CentreConfigError(f"{at} leader: 应为文字 (must be a string)")
        centre.leader_days[day] = LeaderDay(day=day, leader=(leader or "").strip() or None,
                                            title=(str(ld["title"]).strip() or None) if ld.get("title") else None,
                                            topics=tuple(ld_topics))
    return centre


def _text(v: object, at: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise CentreConfigError(f"{at}: 应为非空文字 (must be a non-empty string)")
    return v.strip()


def _list(v: object, at: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise CentreConfigError(f"{at}: 应为文字列表 (must be a list of strings)")
    return v


def _date(v: object, at: str) -> date:
    if isinstance(v, date) and not hasattr(v, "hour"):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise CentreConfigError(f"{at}: 日期应写作 YYYY-MM-DD (a date like 2026-10-01), got {v!r}")
