"""The host-to-host dialect between the acquirer and the card network, as data (docs/upstream.md).

ISO 8583:1987 field layout, with the secondary bitmap (fields 70, 90, 100), encoded the way
jPOS's ``ISO87BPackager`` encodes the 1987 layout: MTI and numeric fields in packed BCD, LL/LLL
length prefixes in BCD, a binary bitmap. It is the encoding our codec compiles already (the
terminal dialect is BCD too), and the field numbers and meanings are the 1987 standard's, as
the UnionPay switch (CUPS) and jPOS's CMF use them: 7 transmission time, 11 STAN, 32
acquiring institution, 33 forwarding institution, 37 RRN, 90 original data elements, 100
receiving institution.

Frames on the wire: a 2-byte big-endian length, then the body (no TPDU, no header: a link is
one acquirer talking to one network). Field 128 is the MAC: ANSI X9.19 (ISO 9797-1 MAC
algorithm 3, padding method 1) under the connection's double-length MAC key, over the message
from the MTI up to field 127 as sent (so the secondary bitmap, with bit 128 set, is covered).
Every message carries it but the sign-on (0800/0810, 70 = 001), which delivers the key
(docs/upstream.md, docs/decisions.md U1-U3).

``KINDS`` maps each issuer request kind (``posgate.host.ports.IssuerRequest.kind``) to the
message that carries it — MTI, processing code (3), POS condition code (25) — and back.
"""

from __future__ import annotations

from posgate.crypto.mac import mac_verify, x9_19_mac
from posgate.iso8583 import Codec, FieldSpec, Kind, Message
from posgate.iso8583.spec import Sensitivity, fixed, lllvar, llvar, n

AN, ANS, B, N = Kind.AN, Kind.ANS, Kind.B, Kind.N
PAN, PIN = Sensitivity.PAN, Sensitivity.PIN

FIELDS: dict[int, FieldSpec] = {
    f.number: f
    for f in (
        # 24 digits, not 19: a scanned payment code travels here in place of a PAN (docs/decisions.md Q1).
        llvar(2, N, 24, name="Primary account number (or payment code)", zh="主账号", sensitivity=PAN),
        n(3, 6, name="Processing code", zh="交易处理码"),
        n(4, 12, name="Amount, transaction", zh="交易金额"),
        n(7, 10, name="Transmission date and time (MMDDhhmmss, UTC)", zh="交易传输时间"),
        n(11, 6, name="System trace audit number (per link)", zh="系统跟踪号"),
        n(12, 6, name="Time, local transaction", zh="受卡方所在地时间"),
        n(13, 4, name="Date, local transaction", zh="受卡方所在地日期"),
        n(14, 4, name="Date, expiration", zh="卡有效期", sensitivity=PAN),  # masked like the terminal dialect's 14
        n(15, 4, name="Date, settlement", zh="清算日期"),
        n(18, 4, name="Merchant type (MCC)", zh="商户类型"),
        n(22, 3, name="POS entry mode", zh="服务点输入方式码"),
        n(23, 3, name="Card sequence number", zh="卡片序列号"),
        n(25, 2, name="POS condition code", zh="服务点条件码"),
        llvar(32, N, 11, name="Acquiring institution id", zh="受理机构标识码"),
        llvar(33, N, 11, name="Forwarding institution id", zh="发送机构标识码"),
        fixed(37, AN, 12, name="Retrieval reference number", zh="检索参考号"),
        fixed(38, AN, 6, name="Authorization id response", zh="授权标识应答码"),
        fixed(39, AN, 2, name="Response code", zh="应答码"),
        fixed(41, ANS, 8, name="Card acceptor terminal id", zh="受卡机终端标识码"),
        fixed(42, ANS, 15, name="Card acceptor id", zh="受卡方标识码"),
        llvar(44, ANS, 25, name="Additional response data (issuer, organisation)", zh="附加响应数据"),
        lllvar(48, ANS, 999, name="Additional data - private (hold amount; key exchange)", zh="附加数据"),
        fixed(49, AN, 3, name="Currency code, transaction", zh="交易货币代码"),
        fixed(52, B, 8, name="PIN data (under the zone PIN key)", zh="个人标识码数据", sensitivity=PIN),
        lllvar(54, AN, 20, name="Additional amounts (balance)", zh="附加金额"),
        lllvar(55, B, 255, name="ICC data (BER-TLV)", zh="IC卡数据域", tlv=True),
        lllvar(60, N, 4, name="Advice / reversal reason", zh="通知原因码"),
        lllvar(63, ANS, 3, name="Card organisation", zh="卡组织"),
        n(70, 3, name="Network management information code", zh="网络管理信息码"),
        n(90, 42, name="Original data elements", zh="原始数据元"),
        llvar(100, N, 11, name="Receiving institution id", zh="接收机构标识码"),
        fixed(128, B, 8, name="Message authentication code (X9.19, MAK)", zh="报文鉴别码"),
    )
}

CODEC = Codec(FIELDS, secondary=True)
decode = CODEC.decode
encode = CODEC.encode

# Field 70 (network management). 101 is the key change (CUP's 重置密钥; either side asks).
SIGN_ON, SIGN_OFF, ECHO, KEY_CHANGE = "001", "002", "301", "101"
MAC_FIELD = 128
MAC_FAILURE = "A0"  # CUP: MAC 校验错 — the message was not acted on


def mac_of(mak: bytes, mab: bytes) -> bytes:
    """Field 128: ANSI X9.19 retail MAC (ISO 9797-1 alg. 3, padding 1) of the MAC block."""
    return x9_19_mac(mak, mab)


def sign(msg: Message, mak: bytes) -> bytes:
    """``msg`` encoded with field 128 computed under ``mak`` (any 128 it had is replaced)."""
    return CODEC.encode(msg, mac=lambda mab: x9_19_mac(mak, mab))


def mac_ok(msg: Message, *maks: bytes) -> bool:
    """``msg`` (decoded from the wire) carries a field 128 that verifies under one of ``maks``."""
    code = msg.data(MAC_FIELD)
    if code is None or msg.raw is None:
        return False
    mab = msg.raw[:-8]
    return any(mac_verify(x9_19_mac(k, mab), code) for k in maks)


def needs_mac(msg: Message) -> bool:
    """Every message but the sign-on and its reply (the sign-on delivers the key)."""
    return not (msg.mti in ("0800", "0810") and msg.text(70) == SIGN_ON)

# Field 60: why an advice or a reversal was sent.
REASON_OFFLINE = "0001"  # an offline sale or adjustment the terminal already completed
REASON_STAND_IN = "0002"  # approved by the acquirer's stand-in while the network was unreachable
REASON_TIMEOUT = "0003"  # the acquirer got no reply in time: the request is reversed
REASON_TERMINAL = "0004"  # the terminal reversed or voided it, or a later step declined

# issuer request kind → (MTI, processing code, POS condition code). Reversals (``reverse_*``)
# travel as 0420 with the original's 3 and 25 and field 90; the network undoes whatever the
# original did, so the kind of undo is never on the wire.
KINDS: dict[str, tuple[str, str, str]] = {
    "balance": ("0100", "310000", "00"),
    "hold": ("0100", "030000", "06"),
    "release_hold": ("0100", "200000", "06"),
    "debit": ("0200", "000000", "00"),
    "capture_hold": ("0200", "000000", "06"),
    "confirm_debit": ("0200", "000000", "82"),
    "credit": ("0200", "200000", "00"),
    "force_debit": ("0220", "000000", "00"),
}
BY_MESSAGE: dict[tuple[str, str, str], str] = {v: k for k, v in KINDS.items()}
REVERSAL_MTI = "0420"
FINANCIAL_MTIS = frozenset({"0100", "0200", "0220", "0420", "0221", "0421"})


def reply_mti(mti: str) -> str:
    """0200 → 0210, 0421 → 0430 (a repeat is answered as the original)."""
    return mti[:2] + str(int(mti[2]) + 1) + "0"


def kind_of(mti: str, processing_code: str, condition: str) -> str | None:
    """The issuer request kind a financial request stands for (None: not one of ours)."""
    base = mti[:3] + "0"
    return BY_MESSAGE.get((base, processing_code, condition))


def original_data(mti: str, stan: str, transmission: str, acquirer: str, forwarding: str = "") -> str:
    """Field 90: original MTI (4) + STAN (6) + transmission time (10) + acquirer id (11) +
    forwarding id (11), ids right-justified with zeros (ISO 8583:1987)."""
    return f"{mti}{stan}{transmission}{acquirer.rjust(11, '0')[-11:]}{(forwarding or '').rjust(11, '0')[-11:]}"


def parse_original_data(value: str) -> tuple[str, str, str, str]:
    """(original MTI, STAN, transmission time, acquirer id) of field 90."""
    return value[0:4], value[4:10], value[10:20], value[20:31].lstrip("0")
