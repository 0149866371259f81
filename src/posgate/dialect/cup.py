"""The CUP POS ISO 8583 dialect as data: ``docs/dialect.md`` section 2, one row a field.

Read this table like the spec's: number, kind and length in the spec's notation, the length
prefix, the exceptions to the justification rule (section 1.5: field 22 is left-justified in
two bytes), what the field means, and how sensitive it is. ``CODEC`` is the table compiled.
"""

from __future__ import annotations

from posgate.iso8583 import Codec, FieldSpec, Kind
from posgate.iso8583.spec import Sensitivity, fixed, lllvar, llvar, n

AN, ANS, B, N, Z = Kind.AN, Kind.ANS, Kind.B, Kind.N, Kind.Z
PAN, TRACK, PIN = Sensitivity.PAN, Sensitivity.TRACK, Sensitivity.PIN

FIELDS: dict[int, FieldSpec] = {
    s.number: s
    for s in (
        llvar(2, N, 19, name="Primary account number", zh="主账号", sensitivity=PAN),
        n(3, 6, name="Processing code", zh="交易处理码"),
        n(4, 12, name="Amount, transaction (fen)", zh="交易金额"),
        n(11, 6, name="System trace audit number (STAN)", zh="受卡方系统跟踪号"),
        n(12, 6, name="Local time hhmmss", zh="受卡方所在地时间"),
        n(13, 4, name="Local date MMDD", zh="受卡方所在地日期"),
        n(14, 4, name="Expiry date YYMM", zh="卡有效期", sensitivity=PAN),
        n(15, 4, name="Settlement date MMDD", zh="清算日期"),
        n(22, 3, left=True, name="POS entry mode", zh="服务点输入方式码"),  # CUP: left-justified
        n(23, 3, name="Card sequence number", zh="卡序列号"),
        n(25, 2, name="POS condition code", zh="服务点条件码"),
        n(26, 2, name="PIN capture code", zh="服务点PIN获取码"),
        llvar(32, N, 11, name="Acquiring institution id", zh="受理方标识码"),
        llvar(35, Z, 37, name="Track 2", zh="二磁道数据", sensitivity=TRACK),
        lllvar(36, Z, 104, name="Track 3", zh="三磁道数据", sensitivity=TRACK),
        fixed(37, AN, 12, name="Retrieval reference number", zh="检索参考号"),
        fixed(38, AN, 6, name="Authorization id response", zh="授权标识应答码"),
        fixed(39, AN, 2, name="Response code", zh="应答码"),
        fixed(41, ANS, 8, name="Terminal id", zh="受卡机终端标识码"),
        fixed(42, ANS, 15, name="Merchant id", zh="受卡方标识码"),
        llvar(44, ANS, 25, name="Additional response data", zh="附加响应数据"),
        lllvar(48, N, 322, name="Additional data - private", zh="附加数据"),
        fixed(49, AN, 3, name="Currency code", zh="交易货币代码"),
        fixed(52, B, 8, name="PIN data", zh="个人标识码数据", sensitivity=PIN),
        n(53, 16, name="Security control information", zh="安全控制信息"),
        lllvar(54, AN, 20, name="Additional amounts (balance)", zh="附加金额"),
        lllvar(55, B, 255, name="IC card data (BER-TLV)", zh="IC卡数据域", tlv=True),
        lllvar(59, ANS, 120, name="Reserved private (QR payment code, tag A3)", zh="自定义域(付款码)", sensitivity=PAN),
        lllvar(60, N, 17, name="Reserved private (60.1-60.7)", zh="自定义域"),
        lllvar(61, N, 29, name="Original message data", zh="原始信息域"),
        lllvar(62, B, 999, name="Reserved private (keys, serial, parameters, JBIG image)", zh="自定义域"),
        lllvar(63, ANS, 163, name="Reserved private (operator / card organisation)", zh="自定义域"),
        fixed(64, B, 8, name="MAC", zh="报文鉴别码"),
    )
}
# Field 62 is "b...512" in older texts; D13 lets an e-signature JBIG image use up to 999 bytes.

CODEC = Codec(FIELDS)
decode = CODEC.decode
encode = CODEC.encode
