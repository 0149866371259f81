"""Display helpers: yuan with two decimals, times in the acquirer's time zone, business days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def local(dt: datetime | None, tz: str) -> datetime | None:
    a = aware(dt)
    return a.astimezone(ZoneInfo(tz)) if a else None


def fmt_time(dt: datetime | None, tz: str, seconds: bool = True) -> str:
    d = local(dt, tz)
    if d is None:
        return ""
    return d.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def today(tz: str, now: datetime | None = None) -> str:
    return (now or utcnow()).astimezone(ZoneInfo(tz)).date().isoformat()


def day_offset(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def yuan(fen: int | None, sign: bool = False) -> str:
    """``123456`` → ``"1,234.56"`` (two decimals always)."""
    if fen is None:
        return ""
    neg = fen < 0
    fen = abs(int(fen))
    s = f"{fen // 100:,}.{fen % 100:02d}"
    if neg:
        return "-" + s
    return ("+" + s) if sign and fen else s


def parse_yuan(text: str) -> int:
    """``"12.34"`` → ``1234``; accepts ``,`` separators; at most two decimals; positive."""
    try:
        d = Decimal(text.strip().replace(",", "").replace("¥", ""))
    except (InvalidOperation, AttributeError):
        raise ValueError("not an amount (use yuan, e.g. 12.34)") from None
    if d.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("at most two decimals")
    fen = int(d * 100)
    if fen <= 0 or fen > 999_999_999_999:
        raise ValueError("the amount must be above 0.00")
    return fen


def day_bounds_utc(day: str, tz: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(tz))
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
