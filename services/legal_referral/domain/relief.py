"""救助 amounts: exact decimal yuan on the ledger and the wire ("30000.00"), integer fen at rest."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MAX_YUAN = Decimal("10000000")


def yuan(value: str | Decimal | int) -> Decimal:
    """Parse an amount in yuan; ValueError unless it is positive, at most 2 decimals, and ≤ 10,000,000."""
    try:
        d = Decimal(str(value))
    except Exception:
        raise ValueError(f"金额格式不正确 (not an amount): {value!r}") from None
    if not d.is_finite() or d <= 0 or d > MAX_YUAN or d != d.quantize(Decimal("0.01")):
        raise ValueError(f"金额应为大于0、不超过{MAX_YUAN}元、至多两位小数的数 (amount out of range): {value}")
    return d.quantize(Decimal("0.01"))


def to_fen(d: Decimal) -> int:
    return int((d * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_fen(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"
