"""Typed checks for every ``posgate terminal`` option (Click callbacks).

Theory of operation: a value the terminal cannot use is refused where it is parsed, before
the journal is opened or anything is sent — Click prints ``Invalid value for '--tid': …`` and
exits 2, and nothing changes. The checks say what a good value looks like (zh and en), and
return the value normalised (a voucher padded to six digits, hex in capitals), so the commands
never see a value that would only fail later in a confusing way (a TID of three digits came
back as "签到应答不符"; a voucher ``abc`` became ``000abc``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import typer

from posgate.domain.money import AmountError, yuan_to_fen

Check = Callable[[Any], Any]


def _bad(zh: str, en: str) -> typer.BadParameter:
    return typer.BadParameter(f"{zh} / {en}")


def optional(check: Check) -> Callable[[Any], Any]:
    """A Click callback: None (not given) passes, anything else goes through ``check``."""

    def callback(value: Any) -> Any:
        return None if value is None else check(value)

    return callback


def digits(n: int, zh: str, en: str) -> Check:
    def check(value: str) -> str:
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) == n):
            raise _bad(f"{zh}须为{n}位数字", f"{en} must be {n} digits")
        return value

    return check


terminal_id = digits(8, "终端号", "the terminal id (TID)")
merchant_id = digits(15, "商户号", "the merchant id (MID)")
operator_code = digits(2, "操作员号", "the operator number")


def hex_digits(*lengths: int, what: str, zh: str) -> Check:
    def check(value: str) -> str:
        value = value.strip()
        if len(value) not in lengths or not re.fullmatch(r"[0-9A-Fa-f]+", value):
            n = " 或 ".join(map(str, lengths))
            raise _bad(
                f"{zh}须为{n}位十六进制数", f"{what} must be {' or '.join(map(str, lengths))} hex digits"
            )
        return value.upper()

    return check


tmk = hex_digits(32, 48, what="the terminal master key", zh="主密钥")
tpdu = hex_digits(10, what="the TPDU", zh="TPDU")


def header(value: str) -> str:
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) == 12):
        raise _bad("报文头须为12位数字", "the message header must be 12 digits")
    return value


def port(value: int) -> int:
    """The host's TCP port: 1 to 65535."""
    if not 1 <= value <= 65535:
        raise _bad(f"须为 1 至 65535 之间的端口号（收到 {value}）",
                   f"must be a TCP port number from 1 to 65535; {value} is out of range")
    return value


def host(value: str) -> str:
    """An IP address or a DNS name (RFC 1123 labels)."""
    value = value.strip()
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if len(value) <= 253 and re.fullmatch(rf"{label}(\.{label})*\.?", value):
        return value
    raise _bad("主机地址无效", f"{value!r} is not a host name or an IP address")


def scheme(value: str) -> str:
    if value not in ("001", "003", "004"):
        raise _bad("密钥方案须为 001、003 或 004", "the key scheme must be 001, 003 or 004")
    return value


def serial(value: str) -> str:
    if not (value.isascii() and value.isprintable() and 0 < len(value) <= 38 and " " not in value):
        raise _bad(
            "序列号须为1至38位可打印字符", "the serial must be 1 to 38 printable characters, no spaces"
        )
    return value


def profile(value: str) -> str:
    """A dialect profile's name (posgate.dialect.profiles), as registered."""
    from posgate.dialect.profiles import PROFILES  # loaded only when --profile is given

    name = value.strip()
    if name not in PROFILES:
        raise _bad(f"报文方言须为 {'、'.join(PROFILES)} 之一", f"the dialect profile must be one of {', '.join(PROFILES)}")
    return name


def amount(value: str) -> str:
    try:
        yuan_to_fen(value)
    except AmountError as e:
        raise _bad("金额错误", str(e)) from None
    return value.strip()


def luhn_ok(pan: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_number(value: str) -> str:
    pan = value.replace(" ", "")
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise _bad("卡号须为12至19位数字", "the card number must be 12 to 19 digits")
    if not luhn_ok(pan):
        raise _bad("卡号校验位错", "the card number's check digit is wrong (Luhn)")
    return pan


def pin(value: str) -> str:
    if not (value.isascii() and value.isdigit() and 4 <= len(value) <= 12):
        raise _bad("密码须为4至12位数字", "the PIN must be 4 to 12 digits")
    return value


def password(value: str) -> str:
    if not (value.isascii() and value.isdigit() and 4 <= len(value) <= 12):
        raise _bad("操作员密码须为4至12位数字", "an operator password is 4 to 12 digits")
    return value


def voucher(value: str) -> str:
    value = value.strip()
    if not (value.isascii() and value.isdigit() and 1 <= len(value) <= 6) or int(value) == 0:
        raise _bad("凭证号须为1至6位数字", "the voucher number must be 1 to 6 digits (not 0)")
    return value.zfill(6)


def rrn(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"[0-9A-Za-z]{12}", value):
        raise _bad("参考号须为12位字母或数字", "the reference number (RRN) must be 12 letters or digits")
    return value


def auth_code(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"[0-9A-Za-z]{6}", value):
        raise _bad("授权码须为6位字母或数字", "the authorisation code must be 6 letters or digits")
    return value.upper()


def month_day(value: str) -> str:
    value = value.strip()
    ok = value.isascii() and value.isdigit() and len(value) == 4
    if ok:
        try:
            date(2000, int(value[:2]), int(value[2:]))  # a leap year: 0229 is a date
        except ValueError:
            ok = False
    if not ok:
        raise _bad("日期须为 MMDD", "the date must be MMDD (e.g. 0302)")
    return value


def choice(*allowed: str) -> Check:
    def check(value: str) -> str:
        if value not in allowed:
            raise _bad(f"须为 {' | '.join(allowed)}", f"must be one of {', '.join(allowed)}")
        return value

    return check


entry_mode = choice("swipe", "insert", "tap", "manual", "fallback")
offline_kind = choice("settlement", "adjust", "tip")
role = choice("sysadmin", "supervisor", "operator")


def lang(value: str) -> str:
    """zh or en (zh-CN, en-US and the like are taken for them)."""
    low = value.strip().lower()
    if low[:2] in ("zh", "en"):
        return low[:2]
    raise _bad("语言须为 zh 或 en", "the language must be zh or en")
