"""Amounts are integers in fen (D14); yuan strings only at the edges (CLI, console, receipts)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_FEN = 999_999_999_999  # n12


class AmountError(ValueError):
    pass


def yuan_to_fen(text: str) -> int:
    """``"12.34"`` → ``1234``. At most two decimals, positive, fits field 4 (n12)."""
    try:
        d = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise AmountError(f"not an amount: {text!r} (use yuan, e.g. 12.34)") from None
    if not d.is_finite():  # NaN, Infinity: Decimal parses them, and they have no exponent to check
        raise AmountError(f"not an amount: {text!r} (use yuan, e.g. 12.34)")
    if d.as_tuple().exponent < -2:  # type: ignore[operator]
        raise AmountError("at most two decimals (fen)")
    fen = int(d * 100)
    if fen <= 0 or fen > MAX_FEN:
        raise AmountError("the amount must be above 0.00 and at most 9,999,999,999.99")
    return fen


def fen_to_yuan(fen: int) -> str:
    """``1234`` → ``"12.34"``."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"
