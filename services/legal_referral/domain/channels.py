"""Legal channels (诉访分离) and the explainable classification of a case into one. Pure domain.

infra/legal/channels.toml lists the channels (which bodies receive them, what the petitioner brings,
the known time limits) and the rules that choose one from the case's category, its words and the body
reported on. A classification names the channel, the body, the rule and its reasons; the same rules,
asked again with the channels and bodies that declined excluded, give the next candidate."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, get_args

from shared import divisions, rulefile
from shared.categories import CATEGORIES
from shared.config import AgencyType, Directory, DirectoryEntry

AGENCY_TYPES = set(get_args(AgencyType))
DEFAULT_CHANNELS = Path(__file__).resolve().parents[3] / "infra" / "legal" / "channels.toml"


class ChannelFileError(ValueError):
    """The channel file is invalid; the message names the file and line."""


@dataclass(frozen=True)
class Channel:
    id: str
    label: str
    bodies: tuple[str, ...]
    receipt_word: str
    bring: tuple[str, ...]
    time_limits: tuple[str, ...]
    relief: bool = False

    def to_json(self) -> dict:
        return {"id": self.id, "label": self.label, "bodies": list(self.bodies), "receipt_word": self.receipt_word,
                "bring": list(self.bring), "time_limits": list(self.time_limits), "relief": self.relief}


@dataclass(frozen=True)
class ChannelRule:
    id: str
    channel: str
    why: str
    categories: tuple[str, ...] = ()
    keywords: tuple[tuple[str, ...], ...] = ()  # alternatives; each is a tuple of words that must all occur
    exclude: tuple[str, ...] = ()
    reported_types: tuple[str, ...] = ()
    body: str | None = None

    def reasons(self, *, category: str, text: str, reported_type: str | None) -> list[str] | None:
        """Why this rule holds for the case (one line per condition), or None when it does not."""
        why = [f"规则 {self.id}：{self.why}"]
        if self.categories:
            if category not in self.categories:
                return None
            why.append(f"类别“{category}”")
        if self.keywords:
            hit = next((alt for alt in self.keywords if all(w in text for w in alt)), None)
            if hit is None:
                return None
            why.append(f"命中关键词“{'+'.join(hit)}”")
        if any(w in text for w in self.exclude):
            return None
        if self.reported_types:
            if reported_type not in self.reported_types:
                return None
            why.append(f"被检举机构类型 {reported_type}")
        return why


@dataclass
class Classification:
    """Which legal channel, which body, by which rule, and why."""
    channel: str
    channel_label: str
    body_type: str
    body: str
    body_name: str
    rule: str
    reasons: list[str] = field(default_factory=list)
    override: bool = False
    override_reason: str | None = None


@dataclass(frozen=True)
class Catalogue:
    channels: dict[str, Channel]
    rules: tuple[ChannelRule, ...]

    def channel(self, channel_id: str) -> Channel:
        return self.channels[channel_id]


def _strings(e: rulefile.Entry, key: str, allowed: set[str] | None = None, what: str = "value") -> tuple[str, ...]:
    value = e.data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ChannelFileError(f"{e.where}: {key} must be a list of non-empty strings")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise ChannelFileError(f"{e.where}: unknown {what} {v!r}")
    return tuple(value)


def load_channels(path: Path = DEFAULT_CHANNELS) -> Catalogue:
    """Read and check the channel file; any problem raises ChannelFileError naming the line."""
    text, doc = rulefile.parse(path, ChannelFileError)
    unknown = doc.keys() - {"channel", "rule"}
    if unknown:
        raise ChannelFileError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}")
    channels: dict[str, Channel] = {}
    for e in rulefile.entries(path, text, doc, "channel", ChannelFileError):
        e.check_keys({"id", "label", "bodies", "receipt_word", "bring", "time_limits"}, {"relief"}, ChannelFileError)
        if e.data["id"] in channels:
            raise ChannelFileError(f"{e.where}: duplicate channel id {e.data['id']!r}")
        bodies = _strings(e, "bodies", AGENCY_TYPES, "agency type")
        if not bodies:
            raise ChannelFileError(f"{e.where}: bodies must name at least one agency type")
        channels[e.data["id"]] = Channel(id=e.data["id"], label=e.data["label"], bodies=bodies,
                                         receipt_word=e.data["receipt_word"], bring=_strings(e, "bring"),
                                         time_limits=_strings(e, "time_limits"), relief=bool(e.data.get("relief")))
    rules: list[ChannelRule] = []
    for e in rulefile.entries(path, text, doc, "rule", ChannelFileError):
        e.check_keys({"id", "channel", "why"}, {"categories", "keywords", "exclude", "reported_types", "body"},
                     ChannelFileError)
        r = e.data
        if r["channel"] not in channels:
            raise ChannelFileError(f"{e.where}: unknown channel {r['channel']!r}")
        if "body" in r and r["body"] not in channels[r["channel"]].bodies:
            raise ChannelFileError(f"{e.where}: body {r['body']!r} does not receive channel {r['channel']!r} "
                                   f"(its bodies: {', '.join(channels[r['channel']].bodies)})")
        categories = _strings(e, "categories", set(CATEGORIES), "category")
        keywords = _strings(e, "keywords")
        if not categories and not keywords and "reported_types" not in r:
            raise ChannelFileError(f"{e.where}: a rule needs categories, keywords or reported_types (it would match everything)")
        rules.append(ChannelRule(id=r["id"], channel=r["channel"], why=r["why"], categories=categories,
                                 keywords=tuple(tuple(w for w in k.split("+") if w) for k in keywords),
                                 exclude=_strings(e, "exclude"),
                                 reported_types=_strings(e, "reported_types", AGENCY_TYPES, "agency type"),
                                 body=r.get("body")))
    if not channels:
        raise ChannelFileError(f"{path}: no [[channel]] entries")
    if not rules:
        raise ChannelFileError(f"{path}: no [[rule]] entries")
    return Catalogue(channels=channels, rules=tuple(rules))


def find_body(directory: Directory, body_type: str, division: str, avoid: set[str]) -> DirectoryEntry | None:
    """The body of that type for the division, walking up the levels (县 → 市 → 省), skipping `avoid`."""
    for code in divisions.chain(division):
        n = directory.find(body_type, code)
        if n is not None and n.agency not in avoid:
            return n
    return None


def candidates(cat: Catalogue, directory: Directory, *, category: str | None, text: str, division: str,
               reported_agency: str | None = None, excluded_channels: set[str] = frozenset()
               ) -> Iterator[Classification]:
    """Every classification the rules allow, best first. The body reported on (检举控告) is never one;
    a channel whose body declined the case (`excluded_channels`) is not tried again."""
    category = category or "其他"
    reported = directory.get(reported_agency) if reported_agency else None
    avoid = {reported_agency} if reported_agency else set()
    seen: set[tuple[str, str]] = set()
    for rule in cat.rules:
        if rule.channel in excluded_channels:
            continue
        why = rule.reasons(category=category, text=text, reported_type=reported.type if reported else None)
        if why is None:
            continue
        ch = cat.channels[rule.channel]
        body_type = rule.body or ch.bodies[0]
        body = find_body(directory, body_type, division, avoid)
        if body is None or (ch.id, body.agency) in seen:
            continue
        seen.add((ch.id, body.agency))
        where = f"受理机关：{body.name}（{divisions.name(body.division)}，{body.division}）"
        if body.division != division:
            where += f"；{divisions.name(division)}无此类机关或已回避，由上级受理"
        if reported is not None:
            where += f"；被检举机构 {reported.name} 回避"
        yield Classification(channel=ch.id, channel_label=ch.label, body_type=body_type, body=body.agency,
                             body_name=body.name, rule=rule.id, reasons=[*why, where])


def classify(cat: Catalogue, directory: Directory, **case) -> Classification | None:
    """The first classification the rules allow (see `candidates`), or None: the bureau decides by hand."""
    return next(candidates(cat, directory, **case), None)


def override(cat: Catalogue, directory: Directory, *, channel_id: str, reason: str, division: str,
             body_agency: str | None = None, reported_agency: str | None = None,
             previous: Classification | None = None) -> Classification:
    """人工改判: a clerk chooses the channel (and optionally the body), with a reason. ValueError names
    what is wrong with the choice."""
    if channel_id not in cat.channels:
        raise ValueError(f"channel: 未知法律渠道 {channel_id!r}（可选：{', '.join(cat.channels)}）")
    ch = cat.channels[channel_id]
    if body_agency is not None:
        body = directory.get(body_agency)
        if body is None:
            raise ValueError(f"body: 未知机构 {body_agency}")
        if body.type not in ch.bodies:
            raise ValueError(f"body: {body.name}不是“{ch.label}”的受理机关")
    else:
        body = next((b for t in ch.bodies if (b := find_body(directory, t, division, set()))
                     and b.agency != reported_agency), None)
        if body is None:
            raise ValueError(f"channel: 本联盟在{divisions.name(division)}及上级没有“{ch.label}”的受理机关")
    if body.agency == reported_agency:
        raise ValueError("body: 被检举机构不得受理对其本身的检举（回避）")
    reasons = [f"人工改判：{reason}"]
    if previous is not None:
        reasons.append(f"原分类：{previous.channel_label}（规则 {previous.rule}，{previous.body_name}）")
    reasons.append(f"受理机关：{body.name}（{body.division}）")
    return Classification(channel=ch.id, channel_label=ch.label, body_type=body.type, body=body.agency,
                          body_name=body.name, rule="override", reasons=reasons, override=True,
                          override_reason=reason)
