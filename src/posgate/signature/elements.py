"""The receipt elements (签购单要素) sent in field 55 of an e-signature upload (spec 3.13).

The host stores them next to the signature so that an electronic slip (电子签购单) can be
rebuilt without the terminal's journal. Tags and encodings follow the Basewin terminal
(``NetUploadSignaWaitAty.packagefield55``), the one public source, byte for byte:

======  =================================  ==========================================
tag     content                            encoding
======  =================================  ==========================================
FF00    merchant name                      GBK
FF01    transaction-type name (消费 ...)    GBK
FF02    operator number (``01``)           BCD, one byte for two digits
FF06    date and time YYYYMMDDhhmmss       BCD, 7 bytes
FF0A    currency (``156``)                 ASCII digits
FF70    ``02`` (meaning unknown)            BCD, one byte
======  =================================  ==========================================

:func:`parse_receipt_tlv` is lenient: unknown tags (terminals also send FF22/FF23/FF30/FF31)
are returned as hex under ``"other"``, and text that is not GBK is decoded with replacement
characters rather than refused, because the signature matters more than a garbled name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from posgate.iso8583.tlv import TLV

TAG_MERCHANT_NAME = "FF00"
TAG_TXN_TYPE_NAME = "FF01"
TAG_OPERATOR = "FF02"
TAG_DATETIME = "FF06"
TAG_CURRENCY = "FF0A"
TAG_FF70 = "FF70"
FF70_VALUE = "02"

_KNOWN = {TAG_MERCHANT_NAME, TAG_TXN_TYPE_NAME, TAG_OPERATOR, TAG_DATETIME, TAG_CURRENCY, TAG_FF70}


def _bcd(digits: str) -> bytes:
    if not digits.isdigit():
        raise ValueError(f"expected digits, got {digits!r}")
    if len(digits) % 2:
        digits = "0" + digits
    return bytes.fromhex(digits)


def receipt_tlv(
    merchant_name: str,
    txn_type_name: str,
    operator: str,
    when: datetime,
    currency: str = "156",
) -> bytes:
    """Field 55 of an e-signature upload: FF00 FF01 FF02 FF06 FF0A FF70 in that order.

    >>> receipt_tlv("演示便利店", "消费", "01", datetime(2024, 5, 6, 7, 8, 9)).hex().upper()
    'FF000AD1DDCABEB1E3C0FBB5EAFF0104CFFBB7D1FF020101FF060720240506070809FF0A03313536FF700102'
    """
    if not (currency.isdigit() and len(currency) == 3):
        raise ValueError(f"currency must be a 3-digit ISO 4217 code, got {currency!r}")
    return TLV(
        [
            (TAG_MERCHANT_NAME, merchant_name.encode("gbk", errors="replace")),
            (TAG_TXN_TYPE_NAME, txn_type_name.encode("gbk", errors="replace")),
            (TAG_OPERATOR, _bcd(operator)),
            (TAG_DATETIME, _bcd(when.strftime("%Y%m%d%H%M%S"))),
            (TAG_CURRENCY, currency.encode("ascii")),
            (TAG_FF70, _bcd(FF70_VALUE)),
        ]
    ).raw


def parse_receipt_tlv(data: bytes) -> dict[str, Any]:
    """The elements of :func:`receipt_tlv` back as a dict.

    Keys: ``merchant_name``, ``txn_type_name``, ``operator`` (digits), ``when`` (naive datetime
    or None when absent or not a valid date), ``currency``, ``ff70`` (hex) — each only when its
    tag is present — and ``other``: {tag: hex} of the tags this module does not know.
    Raises :class:`posgate.iso8583.errors.CodecError` when the bytes are not TLV.
    """
    tlv = TLV.decode(bytes(data), path="55")
    out: dict[str, Any] = {}
    other: dict[str, str] = {}
    for tag, value in tlv:
        if isinstance(value, TLV):  # constructed: not one of ours
            other[tag] = value.raw.hex().upper()
            continue
        if tag == TAG_MERCHANT_NAME:
            out["merchant_name"] = value.decode("gbk", errors="replace")
        elif tag == TAG_TXN_TYPE_NAME:
            out["txn_type_name"] = value.decode("gbk", errors="replace")
        elif tag == TAG_OPERATOR:
            out["operator"] = value.hex().upper()
        elif tag == TAG_DATETIME:
            try:
                out["when"] = datetime.strptime(value.hex(), "%Y%m%d%H%M%S")
            except ValueError:
                out["when"] = None
        elif tag == TAG_CURRENCY:
            out["currency"] = value.decode("ascii", errors="replace")
        elif tag == TAG_FF70:
            out["ff70"] = value.hex().upper()
        if tag not in _KNOWN:
            other[tag] = value.hex().upper()
    out["other"] = other
    return out
