"""Field 39 response codes (spec section 7): meaning in zh-CN and English, category, terminal action.

The terminal shows ``zh``/``en``; the host picks codes only from this table (stick to the CUP
meanings, section 7 last paragraph). ``APPROVED`` is the terminal's accepted set (LY
``ChkAcceptTxnCode``); ``RESIGN`` the codes after which a terminal signs on again (10, D5).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResponseCode:
    code: str
    zh: str
    en: str
    category: str = ""  # A success, B retry, C no retry, D operator action, E system fault


_TABLE = [
    ("00", "承兑或交易成功", "Approved", "A"),
    ("01", "请持卡人与发卡银行联系", "Refer to card issuer", "C"),
    ("02", "查发卡方的特殊条件", "Refer to issuer, special condition", "C"),
    ("03", "无效商户", "Invalid merchant", "C"),
    ("04", "没收卡", "Pick-up", "D"),
    ("05", "不予承兑", "Do not honour", "C"),
    ("06", "出错", "Error", "E"),
    ("07", "特殊条件下没收卡", "Pick-up, special condition", "D"),
    ("09", "请求正在处理中", "Request in progress", "B"),
    ("10", "部分金额批准", "Approved for partial amount", "A"),
    ("11", "重要人物批准(VIP)", "Approved (VIP)", "A"),
    ("12", "无效交易", "Invalid transaction", "C"),
    ("13", "无效金额", "Invalid amount", "B"),
    ("14", "无效卡号", "Invalid card number", "B"),
    ("15", "无此发卡方", "No such issuer", "C"),
    ("19", "重新送入交易", "Re-enter transaction", "C"),
    ("20", "无效应答", "Invalid response", "C"),
    ("21", "不做任何处理", "No action taken", "C"),
    ("22", "POS状态与中心不符，请重新签到", "Suspected malfunction: sign on again", "C"),
    ("23", "不可接受的交易费", "Unacceptable transaction fee", "C"),
    ("25", "未能找到原始交易", "Unable to locate original transaction", "C"),
    ("30", "格式错误", "Format error", ""),
    ("31", "交换中心不支持的银行", "Bank not supported by switch", ""),
    ("33", "过期的卡", "Expired card", ""),
    ("34", "有作弊嫌疑", "Suspected fraud", ""),
    ("38", "超过允许的PIN试输入", "PIN tries exceeded", ""),
    ("40", "请求的功能尚不支持", "Requested function not supported", ""),
    ("41", "挂失卡，请没收", "Lost card", ""),
    ("43", "被窃卡，请没收", "Stolen card", ""),
    ("51", "可用余额不足", "Not sufficient funds", ""),
    ("54", "过期的卡", "Expired card", ""),
    ("55", "密码错", "Incorrect PIN", ""),
    ("57", "不允许持卡人进行的交易", "Transaction not permitted to cardholder", ""),
    ("58", "不允许终端进行的交易", "Transaction not permitted to terminal", ""),
    ("59", "有作弊嫌疑", "Suspected fraud", ""),
    ("61", "超出金额限制", "Exceeds amount limit", ""),
    ("62", "受限制的卡", "Restricted card", ""),
    ("64", "交易金额与原交易不匹配", "Original amount incorrect", ""),
    ("65", "超出消费次数限制", "Exceeds frequency limit", ""),
    ("68", "交易超时", "Response received too late", ""),
    ("75", "允许的输入PIN次数超限", "PIN tries exceeded", ""),
    ("77", "批次号不一致，请重新签到", "Batch number mismatch: sign on again", ""),
    ("90", "正在日终处理", "Cut-off in progress", ""),
    ("91", "发卡方状态不正常", "Issuer inoperative", ""),
    ("92", "发卡方线路异常", "Issuer or institution not reachable", ""),
    ("94", "重复交易", "Duplicate transmission", ""),
    ("96", "系统异常", "System malfunction", ""),
    ("97", "终端未登记", "Terminal not registered", ""),
    ("98", "发卡方超时", "Issuer timeout", ""),
    ("99", "PIN格式错，请重新签到", "PIN format error: sign on again", ""),
    ("A0", "MAC校验错，请重新签到", "MAC error: sign on again", ""),
    ("A1", "转账货币不一致", "Currency mismatch", ""),
    ("A2", "交易成功，请向发卡行确认", "Approved with defect", "A"),
    ("A4", "交易成功，请向发卡行确认", "Approved with defect", "A"),
    ("A5", "交易成功，请向发卡行确认", "Approved with defect", "A"),
    ("A6", "交易成功，请向发卡行确认", "Approved with defect", "A"),
    ("A7", "安全处理失败", "Security processing failure", ""),
]

CODES: dict[str, ResponseCode] = {c: ResponseCode(c, zh, en, cat) for c, zh, en, cat in _TABLE}

APPROVED = frozenset({"00", "10", "11", "A2", "A4", "A5", "A6"})
RESIGN = frozenset({"A0", "99", "77", "22"})


def describe(code: str) -> ResponseCode:
    """The table entry, or the spec's fallback for unknown codes ("交易失败")."""
    return CODES.get(code) or ResponseCode(code, "交易失败", "Transaction failed")


def is_approved(code: str) -> bool:
    return code in APPROVED
