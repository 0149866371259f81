"""posgate.terminal.outcome: the title follows the outcome, and a reversal is spoken of only as
the final state has it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from posgate.terminal.operations.base import Result
from posgate.terminal.outcome import outcome
from posgate.terminal.state import PendingReversal, TerminalState

from .scripted import Host, run, signed_on, swipe


@pytest.mark.parametrize(
    ("result", "kind", "zh", "en"),
    [
        (Result("sale", approved=True, response_code="00"), "approved", "交易成功", "Approved"),
        (Result("sign_on", approved=True, response_code="00"), "approved", "操作成功", "Done"),
        (Result("sale", response_code="51"), "declined", "交易拒绝", "Declined"),
        (Result("sale", error="timeout"), "no_answer", "通讯失败", "Communication failure"),
        (Result("sale", error="comm"), "no_answer", "通讯失败", "Communication failure"),
        (Result("sale", error="mac"), "failed", "交易失败", "Failed"),
        (Result("void", error="refused"), "refused", "交易未发送", "Not sent"),
    ],
)
def test_titles_per_outcome(result: Result, kind: str, zh: str, en: str) -> None:
    seen = outcome(result, TerminalState())
    assert seen.kind == kind and seen.title("zh") == zh and seen.title("en") == en


def test_a_foretold_reversal_the_state_does_not_owe_is_never_shown() -> None:
    r = Result(
        "sale",
        approved=True,
        message_zh="交易成功",
        notices=("应答码 A0 未经MAC认证，交易将被冲正 / it will be reversed",),
    )
    seen = outcome(r, TerminalState())
    assert seen.notices == () and not seen.reversal_pending
    r = Result(
        "sale",
        error="mac",
        message_zh="MAC校验错，交易将被冲正",
        message_en="the transaction will be reversed",
    )
    assert "冲正" not in outcome(r, TerminalState(), "zh").message  # nothing is owed: not claimed


def test_a_pending_reversal_is_said_with_its_voucher() -> None:
    from posgate.iso8583 import Message

    state = replace(
        TerminalState(), reversal=PendingReversal(Message("0400", {}), "sale", "000007", 100, "60", 0, "")
    )
    seen = outcome(Result("sale", response_code="51"), state, "en")
    assert seen.reversal_pending and any("reversal pending: voucher 000007" in n for n in seen.notices)


def test_the_make_up_sign_on_story_ends_approved_without_a_reversal_to_come() -> None:
    state, host = signed_on()
    answers = iter(["A0"])

    def script(send, h: Host) -> bytes:  # noqa: ANN001
        if send.purpose == "sale":
            code = next(answers, "00")
            return h.reply(send.message, code, mac=code == "00")
        return h.reply(send.message)

    from posgate.terminal.machine import Input

    state, result, _ = run(state, Input("sale", amount=100, card=swipe()), host, script=script)
    assert result.approved and any("will be reversed" in n for n in result.notices)  # the core's story
    seen = outcome(result, state)
    assert seen.kind == "approved" and not any(
        "will be reversed" in n or "将被冲正" in n for n in seen.notices
    )
