"""回执编号: the receiving body's own reference number, in the style of Chinese case numbers,
e.g. "(2026)川0104诉引12号" — year, province abbreviation + the rest of the division code, the word
of the channel, a serial per body, word and year. Pure domain."""
from __future__ import annotations

# GB/T 2260 province prefixes → the one-character abbreviation used in case numbers.
PROVINCE_ABBR = {"11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉", "23": "黑",
                 "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣", "37": "鲁", "41": "豫",
                 "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼", "50": "渝", "51": "川", "52": "贵",
                 "53": "云", "54": "藏", "61": "陕", "62": "甘", "63": "青", "64": "宁", "65": "新", "71": "台",
                 "81": "港", "82": "澳"}


def division_part(division: str) -> str:
    """川0104 for a county (510104), 川01 for a city (510100), 川 for the province (510000)."""
    rest = division[2:]
    while rest.endswith("00"):
        rest = rest[:-2]
    return PROVINCE_ABBR.get(division[:2], division[:2]) + rest


def receipt_number(division: str, year: int, word: str, serial: int) -> str:
    return f"({year}){division_part(division)}{word}{serial}号"
