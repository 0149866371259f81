"""What a CUP sales slip (签购单) and a settlement slip (结算单) say, independent of how they print.

A :class:`Slip` is built by whoever prints or shows a slip (the terminal after a transaction,
the TUI, the console's electronic slip) from its own records; the renderers in
:mod:`posgate.receipt.text` and :mod:`posgate.receipt.pdf` lay it out.

Invariants:

* A slip never holds a clear PAN: ``card_number`` is masked (first 6 / last 4, PCI DSS) when the
  slip is created, whatever the caller passed.
* Amounts are integer fen (D14), always given positive; operations that give money back (void,
  refund, completion void, pre-auth void) are *shown* negative, as CUP slips customarily do.
* The labels are data (:data:`LABELS`), zh-CN and English, so every renderer prints the same
  words and a test can check them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from posgate.dialect.fields import SideTotals
from posgate.dialect.operations import OPERATIONS
from posgate.dialect.qr import wallet_of
from posgate.domain.masking import mask_pan
from posgate.domain.money import fen_to_yuan


class Copy(StrEnum):
    MERCHANT = "merchant"  # 商户存根: kept by the merchant, carries the signature
    CARDHOLDER = "cardholder"  # 持卡人存根
    BANK = "bank"  # 银行存根


COPY_NAMES: dict[Copy, tuple[str, str]] = {
    Copy.MERCHANT: ("商户存根", "MERCHANT COPY"),
    Copy.CARDHOLDER: ("持卡人存根", "CARDHOLDER COPY"),
    Copy.BANK: ("银行存根", "BANK COPY"),
}

ENTRY_MODES: dict[str, tuple[str, str, str]] = {
    # entry mode → (slip suffix, zh, en); the suffix follows the card number, as on real slips.
    "swipe": ("S", "刷卡", "SWIPE"),
    "insert": ("I", "插卡", "CHIP"),
    "tap": ("C", "挥卡", "CONTACTLESS"),
    "manual": ("M", "手输", "MANUAL"),
    "fallback": ("F", "降级交易", "FALLBACK"),  # a chip card read from its stripe (docs/decisions.md C4)
    # scan-to-pay (docs/decisions.md Q4): the English name is the wallet's, by the code (entry_text)
    "qr": ("Q", "扫码支付", "QR PAYMENT"),
}

# Field 22 (POS entry mode) digits 1-2 → entry mode; a slip accepts either form.
POS_ENTRY_CODES = {"01": "manual", "02": "swipe", "03": "qr", "05": "insert", "07": "tap", "80": "fallback", "90": "swipe",
                   "95": "insert", "96": "tap", "98": "tap"}  # fmt: skip


def entry_mode_name(value: str) -> str:
    """``swipe``/``insert``/``tap``/``manual``/``fallback`` from itself or from a field-22 code (``021``)."""
    if value.isdigit():
        return POS_ENTRY_CODES.get(value[:2], "")
    return value if value in ENTRY_MODES else ""


# Operations whose amount is printed negative.
NEGATIVE_OPERATIONS = frozenset({"void", "refund", "completion_void", "preauth_void"})

CURRENCY_SYMBOLS = {"156": "RMB", "344": "HKD", "446": "MOP", "840": "USD", "978": "EUR"}

# key → (zh, en)
LABELS: dict[str, tuple[str, str]] = {
    "title": ("POS签购单", "POS SALES SLIP"),
    "settlement_title": ("结算总计单", "SETTLEMENT SLIP"),
    "merchant_name": ("商户名称", "MERCHANT NAME"),
    "merchant_id": ("商户编号", "MERCHANT NO"),
    "terminal_id": ("终端编号", "TERMINAL NO"),
    "operator": ("操作员号", "OPERATOR NO"),
    "card_number": ("卡号", "CARD NO"),
    "issuer": ("发卡行", "ISSUER"),
    "acquirer": ("收单行", "ACQUIRER"),
    "card_org": ("卡组织", "CARD ORG"),
    "entry_mode": ("输入方式", "ENTRY MODE"),
    "txn_type": ("交易类型", "TRANS TYPE"),
    "batch_no": ("批次号", "BATCH NO"),
    "voucher_no": ("凭证号", "VOUCHER NO"),
    "auth_code": ("授权码", "AUTH NO"),
    "rrn": ("参考号", "REFER NO"),
    "datetime": ("日期/时间", "DATE/TIME"),
    "amount": ("金额", "AMOUNT"),
    "remarks": ("备注", "REFERENCE"),
    "original_voucher": ("原凭证号", "ORIG VOUCHER"),
    "original_rrn": ("原参考号", "ORIG REFER NO"),
    "original_date": ("原交易日期", "ORIG DATE"),
    "signature": ("持卡人签名", "CARDHOLDER SIGNATURE"),
    "acknowledge": (
        "本人确认以上交易，同意将其记入本卡账户",
        "I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES",
    ),
    "signed": ("已电子签名", "E-SIGNED"),
    "unsigned": ("未签名", "UNSIGNED"),
    "make_up": ("补签", "MAKE-UP SIGNATURE"),
    "reprint": ("重打印", "REPRINT"),
    "e_receipt": ("扫码查看电子签购单", "SCAN FOR E-RECEIPT"),
    # settlement
    "domestic": ("内卡", "CUP CARDS"),
    "foreign": ("外卡", "FOREIGN CARDS"),
    "type": ("类型", "TYPE"),
    "count": ("笔数", "COUNT"),
    "debit": ("借记", "DEBIT"),
    "credit": ("贷记", "CREDIT"),
    "net": ("净额", "NET"),
    "settle_1": ("对账平", "BALANCED"),
    "settle_2": ("对账不平", "NOT BALANCED"),
    "settle_3": ("对账出错", "ERROR"),
}

# 48 result flags (9.2); a reply's "0" counts as balanced, as the Basewin terminal treats it.
SETTLE_FLAG_KEYS = {"0": "settle_1", "1": "settle_1", "2": "settle_2", "3": "settle_3"}


def label(key: str, lang: str = "zh", bilingual: bool = True) -> str:
    """``商户名称(MERCHANT NAME)`` for zh, ``MERCHANT NAME(商户名称)`` for en; one side if not bilingual."""
    zh, en = LABELS[key]
    first, second = (en, zh) if normalise_lang(lang) == "en" else (zh, en)
    return f"{first}({second})" if bilingual else first


def normalise_lang(lang: str) -> str:
    """``zh-CN``/``zh_CN``/``zh`` → ``zh``; ``en``/``en-US`` → ``en``."""
    return "en" if lang.lower().startswith("en") else "zh"


def mask_card_number(card_number: str) -> str:
    """Mask anything that still looks like a clear PAN (digits only, spaces ignored)."""
    compact = card_number.replace(" ", "")
    if compact.isdigit():
        return mask_pan(compact)
    return card_number


@dataclass(frozen=True, slots=True)
class Slip:
    """One sales slip (签购单). ``card_number`` is masked on creation."""

    merchant_name: str
    merchant_id: str
    terminal_id: str
    operator: str
    card_number: str
    operation: str  # a key of posgate.dialect.operations.OPERATIONS (sale, void, refund ...)
    batch_no: str
    stan: str  # printed as 凭证号 VOUCHER NO
    when: datetime
    amount: int  # fen, positive
    merchant_name_en: str = ""
    issuer: str = ""
    acquirer: str = ""
    card_org: str = "CUP"
    entry_mode: str = ""  # swipe | insert | tap | manual | fallback, or the field-22 code (021 ...)
    auth_code: str = ""
    rrn: str = ""
    currency: str = "156"
    remarks: str = ""
    original_stan: str = ""
    original_rrn: str = ""
    original_date: str = ""  # MMDD or YYYYMMDD
    ic_data: tuple[tuple[str, str], ...] = ()  # printed as is: (("AID", "A000000333010101"), ("TC", ...))
    signature_required: bool = True
    # None: unsigned (未签名); PNG bytes: signed, the picture is printed; b"": signed, but the
    # picture is not at hand (e.g. uploaded from another device) — the mark alone is printed.
    signature_png: bytes | None = field(default=None, repr=False)
    make_up_signature: bool = False  # the signature was captured later (补签)
    copy: Copy = Copy.MERCHANT
    reprint: bool = False
    txn_type_zh: str = ""  # override the operation's name
    txn_type_en: str = ""
    # The cardholder's e-receipt link (the console's /r/<token>): printed as a QR code on the PDF
    # and as text on a printer; empty when the console's public address is not known.
    receipt_url: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "card_number", mask_card_number(self.card_number))
        object.__setattr__(self, "entry_mode", entry_mode_name(self.entry_mode))
        object.__setattr__(self, "copy", Copy(self.copy))
        if self.entry_mode == "qr":  # paid on the customer's phone: never a signature line (Q4)
            object.__setattr__(self, "signature_required", False)

    def entry_text(self) -> tuple[str, str]:
        """The entry-mode row, zh and en: a QR payment names its wallet ("扫码支付 UnionPay QR")."""
        if self.entry_mode == "qr":
            return "扫码支付", wallet_of(self.card_number).en
        _, zh, en = ENTRY_MODES[self.entry_mode]
        return zh, en

    # ---------------------------------------------------------------- derived
    def txn_type(self, lang: str = "zh") -> str:
        op = OPERATIONS.get(self.operation)
        zh = self.txn_type_zh or (op.zh if op else self.operation)
        en = self.txn_type_en or (op.en.upper() if op else self.operation.upper())
        return en if normalise_lang(lang) == "en" else zh

    @property
    def negative(self) -> bool:
        return self.operation in NEGATIVE_OPERATIONS

    @property
    def signed_amount(self) -> int:
        return -abs(self.amount) if self.negative else abs(self.amount)

    def amount_text(self) -> str:
        """``RMB 12.34`` (``RMB -12.34`` for a void or refund)."""
        return f"{CURRENCY_SYMBOLS.get(self.currency, self.currency)} {fen_to_yuan(self.signed_amount)}"

    @property
    def signed(self) -> bool:
        return self.signature_png is not None

    @property
    def shows_signature(self) -> bool:
        """The cardholder copy has no signature area; the merchant and bank copies do."""
        return self.signature_required and self.copy is not Copy.CARDHOLDER

    def issuer_text(self, lang: str = "zh", bilingual: bool = True) -> str:
        """发卡行 ISSUER as a cardholder reads it: the bank's name and institution code, else the
        card organisation's name (``posgate.receipt.issuers``); field 44.1 as received, else
        the card's BIN. Empty on a QR payment's slip (no card)."""
        from posgate.receipt import issuers

        if self.entry_mode == "qr" and not self.issuer:
            return ""
        found = issuers.issuer(self.issuer, self.card_number, self.card_org)
        return issuers.text(found, normalise_lang(lang), bilingual)

    def acquirer_text(self, lang: str = "zh", bilingual: bool = True) -> str:
        from posgate.receipt import issuers

        return issuers.text(issuers.acquirer(self.acquirer), normalise_lang(lang), bilingual)

    def card_line(self) -> str:
        mode = ENTRY_MODES.get(self.entry_mode)
        return f"{self.card_number} /{mode[0]}" if mode else self.card_number

    def with_copy(self, copy: Copy | str) -> Slip:
        return replace(self, copy=Copy(copy))

    def copies(self, *which: Copy | str) -> list[Slip]:
        """This slip as the given copies (default: merchant then cardholder)."""
        return [self.with_copy(c) for c in (which or (Copy.MERCHANT, Copy.CARDHOLDER))]


@dataclass(frozen=True, slots=True)
class SettlementSlip:
    """The settlement slip printed after 0500/0510 (spec 9.2): totals and result per side."""

    merchant_name: str
    merchant_id: str
    terminal_id: str
    operator: str
    batch_no: str
    when: datetime
    domestic: SideTotals = field(default_factory=SideTotals)
    foreign: SideTotals = field(default_factory=SideTotals)
    merchant_name_en: str = ""
    currency: str = "156"
    reprint: bool = False

    @staticmethod
    def result_key(flag: str) -> str:
        """The label key of a 48 result flag; ``0`` in a reply is treated as balanced (BW)."""
        return SETTLE_FLAG_KEYS.get(flag, "settle_3")

    @property
    def balanced(self) -> bool:
        return all(s.flag in ("0", "1") for s in (self.domestic, self.foreign))
