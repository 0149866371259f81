"""Field 39 response codes (spec section 7): meaning in zh-CN and English, category, and what
the cashier should do next.

The terminal shows ``zh``/``en`` and, under it, the *action* ``action_zh``/``action_en``: the
wire code stays the spec's (an ``03`` is an ``03``), but "invalid merchant [03]" alone leaves
a cashier of a suspended merchant stuck, so every code a cashier can get — each code of the
table, and any other code through :func:`describe`'s fallback — says what to do (call the
acquirer, ask for another card, try again...). The host picks codes only from this table
(stick to the CUP meanings, section 7 last paragraph). ``APPROVED`` is the terminal's
accepted set (LY ``ChkAcceptTxnCode``); ``RESIGN`` the codes after which a terminal signs on
again (10, D5).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResponseCode:
    code: str
    zh: str
    en: str
    category: str = ""  # A success, B retry, C no retry, D operator action, E system fault
    action_zh: str = ""  # what the cashier does next (ACTIONS)
    action_en: str = ""


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
    ("45", "不允许降级交易，请插卡", "Fallback not allowed: use the chip", "C"),  # docs/decisions.md C4
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

# What the cashier does next, per code. Codes that share a cause share a text.
_ACQUIRER = ("请联系收单机构", "Call your acquirer")
_ISSUER = (
    "请持卡人联系发卡行，或改用其他卡",
    "Ask the cardholder to call the card issuer or use another card",
)
_OTHER_CARD = ("请改用其他卡支付", "Ask for another card")
_RETRY = ("请重试交易", "Try the transaction again")
_LATER = ("请稍后重试，仍失败请联系收单机构", "Try again later; if it keeps failing, call your acquirer")
_RESIGN = (
    "终端将自动重新签到，请重试交易",
    "The terminal signs on again by itself: try the transaction again",
)
_DONE = ("交易完成", "Done")
_KEEP = ("请按规定保留此卡并联系收单机构", "Keep the card as your acquirer instructs and call them")
_ACTIONS: dict[str, tuple[str, str]] = {
    "00": _DONE,
    "01": _ISSUER,
    "02": _ISSUER,
    "03": ("商户已暂停或未开通，请联系收单机构", "Merchant suspended or not set up: call your acquirer"),
    "04": _KEEP,
    "05": _ISSUER,
    "06": _LATER,
    "07": _KEEP,
    "09": ("请稍候再查询结果，勿重复交易", "Wait, then check the result; do not repeat the transaction"),
    "10": (
        "仅批准部分金额，余款请另行收取",
        "Only part of the amount was approved: collect the rest another way",
    ),
    "11": _DONE,
    "12": ("此交易不可做，请核对交易类型", "This transaction cannot be done: check the transaction type"),
    "13": ("请核对金额后重试", "Check the amount and try again"),
    "14": ("请核对卡号或改用其他卡", "Check the card number or use another card"),
    "15": _OTHER_CARD,
    "19": _RETRY,
    "20": _LATER,
    "21": _LATER,
    "22": _RESIGN,
    "23": _ACQUIRER,
    "25": (
        "请核对原交易的凭证号、参考号和日期",
        "Check the original voucher number, reference number and date",
    ),
    "30": _LATER,
    "31": _OTHER_CARD,
    "33": ("卡已过期，请改用其他卡", "The card has expired: ask for another card"),
    "34": _KEEP,
    "38": (
        "密码错误次数超限，请持卡人联系发卡行",
        "Too many wrong PINs: the cardholder must call the card issuer",
    ),
    "40": ("本终端不支持此交易", "This terminal does not offer this transaction"),
    "41": _KEEP,
    "43": _KEEP,
    "45": ("此卡有芯片，请插卡交易", "The card has a chip: insert it"),
    "51": ("余额不足，请改用其他卡或减少金额", "Not enough funds: use another card or a smaller amount"),
    "54": ("卡已过期，请改用其他卡", "The card has expired: ask for another card"),
    "55": ("请持卡人重新输入密码", "Ask the cardholder to enter the PIN again"),
    "57": _ISSUER,
    "58": ("终端已停用，请联系收单机构", "Terminal suspended: call your acquirer"),
    "59": _KEEP,
    "61": (
        "超出单笔限额，请减少金额或改用其他卡",
        "Over the card's limit: use a smaller amount or another card",
    ),
    "62": _ISSUER,
    "64": ("请按原交易金额重做", "Use the original transaction's amount"),
    "65": _ISSUER,
    "68": _LATER,
    "75": (
        "密码错误次数超限，请持卡人联系发卡行",
        "Too many wrong PINs: the cardholder must call the card issuer",
    ),
    "77": _RESIGN,
    "90": ("收单机构正在日终处理，请稍后重试", "The acquirer is closing the day: try again later"),
    "91": _LATER,
    "92": _LATER,
    "94": ("请核对结果，勿重复交易", "Check the result; do not repeat the transaction"),
    "96": _LATER,
    "97": (
        "设备未登记，请联系收单机构登记此设备",
        "Device not registered: call your acquirer to register it",
    ),
    "98": _LATER,
    "99": _RESIGN,
    "A0": _RESIGN,
    "A1": ("请核对交易币种", "Check the transaction currency"),
    "A2": ("交易已成功，如有疑问请联系发卡行", "Approved; if in doubt, check with the card issuer"),
    "A4": ("交易已成功，如有疑问请联系发卡行", "Approved; if in doubt, check with the card issuer"),
    "A5": ("交易已成功，如有疑问请联系发卡行", "Approved; if in doubt, check with the card issuer"),
    "A6": ("交易已成功，如有疑问请联系发卡行", "Approved; if in doubt, check with the card issuer"),
    "A7": _LATER,
}
# A code outside the table (describe's fallback "交易失败").
UNKNOWN_ACTION = _ACQUIRER

CODES: dict[str, ResponseCode] = {
    c: ResponseCode(c, zh, en, cat, *_ACTIONS.get(c, UNKNOWN_ACTION)) for c, zh, en, cat in _TABLE
}

APPROVED = frozenset({"00", "10", "11", "A2", "A4", "A5", "A6"})
RESIGN = frozenset({"A0", "99", "77", "22"})


def describe(code: str) -> ResponseCode:
    """The table entry, or the spec's fallback for unknown codes ("交易失败")."""
    return CODES.get(code) or ResponseCode(code, "交易失败", "Transaction failed", "", *UNKNOWN_ACTION)


def is_approved(code: str) -> bool:
    return code in APPROVED
