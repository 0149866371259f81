"""What a cashier is told after an operation — one place for the CLI and the TUI.

Theory of operation: the core's :class:`~posgate.terminal.operations.base.Result` says how
the operation ended, and its notices record what happened on the way (a make-up sign-on, a
reversal sent, a retry). What the cashier must act on is the *final* state, so the shells do
not repeat the story, they state the end:

* the title follows the outcome — 交易成功 Approved / 交易拒绝 Declined (the host answered no) /
  通讯失败 Communication failure (no answer, the line broke, the host unreachable) / 交易失败
  Failed (an answer the terminal cannot trust) / 交易未发送 Not sent (the terminal refused it
  itself: nothing went to the host) / 交易取消 Cancelled;
* whether a reversal is still owed comes only from the terminal's state after the flow
  (``state.reversal``), said once and plainly with its voucher number. A note written on the
  way that foretells a reversal ("will be reversed") is never shown: by the end the reversal
  may have gone through and the retry been approved, and a cashier reading "approved … will
  be reversed" may charge the customer twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The outcome kinds and their titles (zh, en).
TITLES: dict[str, tuple[str, str]] = {
    "approved": ("交易成功", "Approved"),
    "declined": ("交易拒绝", "Declined"),
    "no_answer": ("通讯失败", "Communication failure"),
    "failed": ("交易失败", "Failed"),
    "refused": ("交易未发送", "Not sent"),
    "cancelled": ("交易取消", "Cancelled"),
    "pending": ("交易处理中", "Payment pending"),  # a QR payment waiting for the customer's password (Q2)
}

# Operations that move no money: their success is "done", not a transaction approved.
HOUSEKEEPING = frozenset({"sign_on", "sign_off", "echo", "parameter_download", "status_upload", "signature",
                          "ic_download"})
DONE = ("操作成功", "Done")

# Result.error values meaning the host's answer never came back (or the request never left).
NO_ANSWER_ERRORS = frozenset({"timeout", "comm"})

# Phrases of a note that foretell a reversal: the final state, not a note, says whether one is owed.
_FORETELLS_REVERSAL = ("将被冲正", "将冲正", "will be reversed", "to be reversed")


def kind_of(result: Any) -> str:
    if result.approved:
        return "approved"
    if result.error in NO_ANSWER_ERRORS:
        return "no_answer"
    if result.error == "refused":
        return "refused"
    if result.error == "pending":
        return "pending"
    if result.error:
        return "failed"
    return "declined"


def title(kind: str, lang: str = "zh", operation: str = "") -> str:
    zh, en = DONE if kind == "approved" and operation in HOUSEKEEPING else TITLES[kind]
    return en if lang == "en" else zh


def bilingual_title(kind: str, operation: str = "") -> str:
    return f"{title(kind, 'zh', operation)} {title(kind, 'en', operation)}"


def reversal_line(state: Any) -> str:
    """The pending reversal, plainly, or "" when none is owed."""
    rec = getattr(state, "reversal", None)
    if rec is None:
        return ""
    return (
        f"冲正未完成：凭证号 {rec.stan} 的交易将在下一笔联机交易前自动冲正，该笔不算成功收款 / "
        f"reversal pending: voucher {rec.stan} will be reversed automatically before the next online "
        "transaction; do not treat it as paid"
    )


def shown_notices(result: Any) -> list[str]:
    """The notices worth showing: all but those foretelling a reversal (see the module doc)."""
    return [n for n in result.notices if not any(p in n for p in _FORETELLS_REVERSAL)]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    operation: str
    message: str  # the result's message (with its response code when the host gave one)
    notices: tuple[str, ...]  # what happened on the way, then the pending reversal if any
    reversal_pending: bool

    def title(self, lang: str = "zh") -> str:
        return title(self.kind, lang, self.operation)


def outcome(result: Any, state: Any, lang: str = "") -> Outcome:
    """The cashier's view of ``result`` given the terminal's ``state`` after the flow.
    ``lang`` "zh" / "en" picks one language for the message; "" keeps both."""
    kind = kind_of(result)
    if lang == "en" and result.message_en:
        message = result.message_en
    elif lang == "zh":
        message = result.message_zh
    else:
        message = result.message
    # A message foretelling a reversal the state no longer owes must not stand either.
    rev = reversal_line(state)
    if not rev and any(p in message for p in _FORETELLS_REVERSAL):
        message = {"zh": "请核实交易结果", "en": "check the transaction's outcome"}.get(
            lang, "请核实交易结果 / check the transaction's outcome"
        )
    notices = shown_notices(result)
    if rev:
        notices.append(rev)
    return Outcome(kind, result.operation, message, tuple(notices), bool(rev))
