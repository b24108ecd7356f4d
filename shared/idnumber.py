"""居民身份证号 (GB 11643-1999): 18 characters, the last a mod-11 check character."""
import re

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


def check_char(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def problem(id_number: str) -> str | None:
    """None when valid, else a zh-CN/English message saying what is wrong."""
    s = id_number.strip().upper()
    if not _SHAPE.match(s):
        return "身份证号应为18位（前17位数字，末位数字或X） must be 18 characters: 17 digits and a digit or X"
    if check_char(s[:17]) != s[17]:
        return "身份证号校验位错误 the ID number's check character is wrong"
    return None
