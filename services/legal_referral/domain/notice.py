"""书面告知 (导入法律程序告知书): what the petitioner is told when the case goes to a legal channel —
the channel, the body and its receipt number, what to bring, the known time limits. It carries no
personal data: it is addressed to "信访人" and travels on the ledger. Pure domain."""
from __future__ import annotations

from services.legal_referral.domain.channels import Channel

TITLE = "导入法律程序告知书"
_NUMERALS = "①②③④⑤⑥⑦⑧⑨⑩"


def _numbered(items: tuple[str, ...] | list[str]) -> str:
    return "；".join(f"{_NUMERALS[i] if i < len(_NUMERALS) else str(i + 1) + '.'}{x}" for i, x in enumerate(items))


def compose(channel: Channel, *, case_title: str, registered_on: str, body_name: str, receipt_no: str,
            referring_name: str, issued_on: str) -> dict:
    text = (f"信访人：\n"
            f"　　您于{registered_on}反映的“{case_title}”一事，经审查属于{channel.label}事项。依照诉访分离的规定，"
            f"该事项应当依法通过{channel.label}途径解决，不作为信访事项办理。本机关已将该事项移送{body_name}，"
            f"回执编号：{receipt_no}。\n"
            f"　　请携带以下材料到{body_name}办理：{_numbered(channel.bring)}。\n"
            f"　　时限提示：{_numbered(channel.time_limits)}。请注意在法定期限内提出，以免影响您的权利。\n"
            f"　　您可以凭查询码查询办理进度。\n"
            f"{referring_name}\n{issued_on}")
    return {"title": TITLE, "channel": channel.id, "channel_label": channel.label, "body_name": body_name,
            "receipt_no": receipt_no, "bring": list(channel.bring), "time_limits": list(channel.time_limits),
            "issued_by": referring_name, "issued_on": issued_on, "text": text}
