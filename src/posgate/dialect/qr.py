"""Scan-to-pay through the POS (被扫: the cashier scans the customer's payment code).

Wire layout (docs/decisions.md Q1): a QR payment rides in the card messages — sale 0200
(000000, 60.1 = 22), void (200000, 23), refund 0220 (200000, 25), reversal 0400 — with
22 = ``03x`` (``03`` = the code was scanned, ``x`` = PIN capability, ``2``: no PIN at the POS)
and the payment code in field 59 as ASCII tag-length-value: tag ``A3``, three length digits,
the code (``A3019`` + 19 digits, as the public Easy8583Ans client frames a UnionPay QR sale).
No field 2, 14, 35 or 52: the code stands where the card number stands.

A payment the wallet holds until the customer enters a password on the phone is answered
``09`` (request in progress, section 7); the terminal then sends a **query** — 0200, field 3
``730000`` (the processing code a public POSP, chinaljp/posp posd1.9, gives to its QR query),
60.1 = 22, 61 = the sale's batch + STAN, 59 = the code — until the answer is final.

Must never: log or show a code unmasked (it is card data: :func:`mask_code`).
"""

from __future__ import annotations

from dataclasses import dataclass

from posgate.domain.masking import mask_pan

TAG = "A3"
QUERY_PROCESSING_CODE = "730000"
PENDING = "09"  # section 7: 请求正在处理中 / request in progress
MIN_LEN, MAX_LEN = 16, 24  # wallet codes: WeChat 18, UnionPay 19, Alipay 16-24


class QrError(ValueError):
    """A payment code or field 59 that cannot be used."""


@dataclass(frozen=True, slots=True)
class Wallet:
    key: str  # unionpay | wechat | alipay | qr
    zh: str
    en: str

    @property
    def label(self) -> str:
        return f"{self.zh} {self.en}"


UNIONPAY = Wallet("unionpay", "银联二维码", "UnionPay QR")
WECHAT = Wallet("wechat", "微信支付", "WeChat Pay")
ALIPAY = Wallet("alipay", "支付宝", "Alipay")
OTHER = Wallet("qr", "扫码支付", "QR payment")
WALLETS = {w.key: w for w in (UNIONPAY, WECHAT, ALIPAY, OTHER)}


def is_qr_entry(entry_mode: str | None) -> bool:
    """Field 22 says the code was scanned (``03x``)."""
    return bool(entry_mode) and str(entry_mode).startswith("03")


def check_code(code: str) -> str:
    """The code as scanned or typed (spaces allowed), or :class:`QrError`."""
    c = "".join(code.split())
    if not c.isdigit() or not MIN_LEN <= len(c) <= MAX_LEN:
        raise QrError(
            f"付款码应为{MIN_LEN}至{MAX_LEN}位数字 / the payment code must be {MIN_LEN} to {MAX_LEN} digits"
        )
    return c


def wallet_of(code: str) -> Wallet:
    """By the code's leading digits, as the wallets publish them: UnionPay 62 (19 digits),
    WeChat Pay 10-15 (18 digits), Alipay 25-30 (16-24 digits)."""
    head = code[:2]
    if head == "62":
        return UNIONPAY
    if head.isdigit() and 10 <= int(head) <= 15 and len(code) == 18:
        return WECHAT
    if head.isdigit() and 25 <= int(head) <= 30:
        return ALIPAY
    return OTHER


def mask_code(code: str) -> str:
    """First 6 and last 4, like a PAN."""
    return mask_pan(code)


def field59(code: str) -> str:
    return f"{TAG}{len(code):03d}{code}"


def code_from_59(value: str) -> str:
    """The payment code in a field 59 (tag-length-value, other tags skipped), or :class:`QrError`."""
    i = 0
    while i < len(value):
        tag, length = value[i : i + 2], value[i + 2 : i + 5]
        if len(tag) < 2 or not length.isdigit():
            raise QrError("field 59: not tag + 3-digit length + value")
        n = int(length)
        body = value[i + 5 : i + 5 + n]
        if len(body) != n:
            raise QrError("field 59: value shorter than its length")
        if tag == TAG:
            return check_code(body)
        i += 5 + n
    raise QrError("field 59: no payment code (tag A3)")
