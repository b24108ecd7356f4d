"""类别: petition categories (DESIGN §1). The name is the code (it is also the Open311 service_code)."""

CATEGORIES: dict[str, dict] = {
    "劳动社保": {"group": "民生保障", "keywords": ["工资", "欠薪", "社保", "养老", "劳动合同", "工伤", "失业"]},
    "社会救助": {"group": "民生保障", "keywords": ["低保", "临时救助", "特困", "救助"]},
    "征地拆迁": {"group": "城乡建设", "keywords": ["征地", "拆迁", "补偿", "安置房"]},
    "涉法涉诉": {"group": "政法", "keywords": ["判决", "裁定", "诉讼", "执行", "仲裁", "复议"]},
    "企业改制": {"group": "经济", "keywords": ["改制", "下岗", "国企"]},
    "退役安置": {"group": "民生保障", "keywords": ["退役", "复员", "转业", "军人"]},
    "生态环境": {"group": "城乡建设", "keywords": ["污染", "噪音", "排污", "环境"]},
    "检举控告": {"group": "纪检监察", "keywords": ["检举", "控告", "举报", "贪污", "受贿"]},
    "其他": {"group": "其他", "keywords": []},
}

REPORT_CATEGORY = "检举控告"


def classify(text: str) -> str | None:
    """The category whose keywords occur most in the text, or None when nothing matches."""
    scores = {c: sum(text.count(k) for k in v["keywords"]) for c, v in CATEGORIES.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] else None
