"""Every CUP POS operation as data (spec 3.1): how a request is recognised and what it implies.

The host identifies an incoming request with :func:`identify`; the terminal builds requests
from the same rows, so the two sides can never disagree on a code. Names follow the project's
vocabulary (``sign_on``, ``sale``, ``void``, ``refund``, ``preauth`` ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from posgate.iso8583 import Message


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    zh: str
    en: str
    mti: str
    processing_code: str  # "" when field 3 is absent
    condition_code: str  # field 25, "" when absent
    type_code: str  # 60.1
    nmic: str  # 60.3 ("" = any of several, resolved by the request)
    reversible: bool  # the terminal keeps a reversal record (section 8)
    mac: bool  # request and approved reply carry field 64 (5.3, D4)
    settlement: str = ""  # "debit", "credit" or "" — how it counts in 9.1 totals

    @property
    def response_mti(self) -> str:
        return f"{int(self.mti) + 10:04d}"

    @property
    def financial(self) -> bool:
        return bool(self.processing_code)


def _op(*args: object, **kw: object) -> Operation:
    return Operation(*args, **kw)  # type: ignore[arg-type]


OPERATIONS: dict[str, Operation] = {
    o.name: o
    for o in (
        _op("sign_on", "签到", "Sign-on", "0800", "", "", "00", "", False, False),
        _op("sign_off", "签退", "Sign-off", "0820", "", "", "00", "002", False, False),
        _op("echo", "回响测试", "Echo test", "0820", "", "", "00", "301", False, False),
        _op("parameter_download", "参数传递", "Parameter download", "0800", "", "", "00", "360", False, False),
        _op("status_upload", "状态上送", "Status upload", "0820", "", "", "00", "362", False, False),
        # IC public keys and IC parameters (docs/dialect.md 3.12): query, download, end.
        _op("capk_query", "IC卡公钥查询", "IC public key query", "0820", "", "", "00", "372", False, False),
        _op("capk_download", "IC卡公钥下载", "IC public key download", "0800", "", "", "00", "370", False, False),
        _op("capk_end", "IC卡公钥下载结束", "IC public key download end", "0800", "", "", "00", "371", False, False),
        _op("aid_query", "IC卡参数查询", "IC parameter query", "0820", "", "", "00", "382", False, False),
        _op("aid_download", "IC卡参数下载", "IC parameter download", "0800", "", "", "00", "380", False, False),
        _op("aid_end", "IC卡参数下载结束", "IC parameter download end", "0800", "", "", "00", "381", False, False),
        _op("balance", "查询", "Balance inquiry", "0200", "310000", "00", "01", "000", False, True),
        _op("preauth", "预授权", "Pre-authorisation", "0100", "030000", "06", "10", "000", True, True),
        _op("preauth_void", "预授权撤销", "Pre-auth void", "0100", "200000", "06", "11", "000", True, True),
        _op("completion", "预授权完成(请求)", "Pre-auth completion", "0200", "000000", "06", "20", "000", True, True, "debit"),
        _op("completion_void", "预授权完成撤销", "Completion void", "0200", "200000", "06", "21", "000", True, True, "credit"),
        _op("completion_advice", "预授权完成(通知)", "Completion advice", "0220", "000000", "06", "24", "000", False, True, "debit"),
        _op("sale", "消费", "Sale", "0200", "000000", "00", "22", "000", True, True, "debit"),
        _op("void", "消费撤销", "Sale void", "0200", "200000", "00", "23", "000", True, True, "credit"),
        _op("refund", "退货", "Refund", "0220", "200000", "00", "25", "000", False, True, "credit"),
        _op("offline_settlement", "离线结算", "Offline settlement", "0220", "000000", "00", "30", "000", False, True, "debit"),
        _op("settlement_adjust", "结算调整", "Settlement adjust", "0220", "000000", "00", "32", "000", False, True, "debit"),
        _op("tip_adjust", "结算调整(追加小费)", "Adjust (add tip)", "0220", "000000", "00", "34", "000", False, True, "debit"),
        # Scan-to-pay: the query of a payment waiting for the customer's password (docs/decisions.md Q1).
        _op("qr_query", "扫码查询", "QR payment query", "0200", "730000", "00", "22", "000", False, True),
        _op("reversal", "冲正", "Reversal", "0400", "", "", "", "", False, True),
        _op("settlement", "结算", "Settlement", "0500", "", "", "00", "201", False, False),
        _op("batch_upload", "批上送", "Batch upload", "0320", "", "", "00", "", False, False),
        _op("script_advice", "脚本处理结果通知", "IC script result advice", "0620", "", "", "00", "951", False, True),
        _op("signature", "电子签名上送", "E-signature upload", "0820", "", "", "07", "800", False, True),
    )
}

SIGN_ON_SCHEMES = ("001", "003", "004", "006")  # 006: SM4 (国密) keys (docs/dialect.md 4.4)
BATCH_UPLOAD_CODES = ("201", "202", "203", "204", "205", "206", "207")

IC_DOWNLOAD_NAMES = ("capk_query", "capk_download", "capk_end", "aid_query", "aid_download", "aid_end")
_IC_DOWNLOADS = {(OPERATIONS[n].mti, OPERATIONS[n].type_code, OPERATIONS[n].nmic): OPERATIONS[n] for n in IC_DOWNLOAD_NAMES}

# (mti, field 3, field 25, 60.1) → operation name, for the financial messages.
_FINANCIAL = {(o.mti, o.processing_code, o.condition_code, o.type_code): o.name for o in OPERATIONS.values() if o.financial}


def identify(msg: Message, aliases: Mapping[int, Mapping[str, str]] | None = None) -> Operation | None:
    """The operation a request carries, or None when the combination of codes is not CUP.

    ``aliases`` (a dialect profile's): variant codes of fields 3 and 25 read as the baseline's."""
    mti = msg.mti
    if len(mti) == 4 and mti.isascii() and mti.isdigit() and int(mti[2]) % 2 == 1:
        mti = f"{int(mti) - 10:04d}"  # a reply carries its request's codes
    f60 = msg.text(60)
    type_code, nmic = f60[0:2], f60[8:11]
    if mti == "0400":
        return OPERATIONS["reversal"]
    if mti in ("0100", "0200", "0220"):
        f3, f25 = msg.text(3), msg.text(25)
        if aliases:
            f3 = aliases.get(3, {}).get(f3, f3)
            f25 = aliases.get(25, {}).get(f25, f25)
        name = _FINANCIAL.get((mti, f3, f25, type_code))
        return OPERATIONS[name] if name else None
    if mti == "0800":
        if nmic in SIGN_ON_SCHEMES:
            return OPERATIONS["sign_on"]
        if nmic == "360":
            return OPERATIONS["parameter_download"]
        return _IC_DOWNLOADS.get(("0800", type_code, nmic))
    if mti == "0820":
        for name in ("sign_off", "echo", "status_upload", "signature", "capk_query", "aid_query"):
            op = OPERATIONS[name]
            if nmic == op.nmic and type_code == op.type_code:
                return op
        return None
    if mti == "0500":
        return OPERATIONS["settlement"] if nmic == "201" else None
    if mti == "0320":
        # Batch upload proper (00 + 201..207) or an offline advice re-sent in batch upload (D11).
        if (type_code == "00" and nmic in BATCH_UPLOAD_CODES) or (nmic == "000" and by_type_code(type_code)):
            return OPERATIONS["batch_upload"]
        return None
    if mti == "0620":
        return OPERATIONS["script_advice"]
    return None


def by_type_code(type_code: str) -> Operation | None:
    """The financial operation with this 60.1 (used for reversals and batch-upload re-sends)."""
    for op in OPERATIONS.values():
        if op.financial and op.type_code == type_code:
            return op
    return None
