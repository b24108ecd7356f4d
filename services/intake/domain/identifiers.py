"""Case ids and 查询码 (query codes). Query codes are unguessable: 60 random bits."""
import hashlib
import secrets

from shared.db.base import utcnow

_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed by petitioners


def _random_chars(n: int) -> str:
    """n characters of _ALPHABET, uniformly: one draw from the OS's random source, not one per character."""
    value, out = secrets.randbelow(len(_ALPHABET) ** n), []
    for _ in range(n):
        value, digit = divmod(value, len(_ALPHABET))
        out.append(_ALPHABET[digit])
    return "".join(out)


def new_case_id(division: str) -> str:
    return f"LF{division}{utcnow():%Y%m%d}{_random_chars(8)}"


def new_query_code() -> str:
    raw = _random_chars(12)
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def query_code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()
