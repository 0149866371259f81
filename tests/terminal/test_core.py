"""The terminal core alone against scripted host replies: every branch of the machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from posgate.crypto import decrypt_pin, kcv
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import BatchUploadEntries, Field60, format_parameters
from posgate.iso8583 import TLV
from posgate.terminal import machine
from posgate.terminal.machine import Card, Done, Input, Send, TerminalError
from posgate.terminal.state import TerminalState, next_stan

from .scripted import NOW, PAN, Host, run, settle_flags, signed_on, swipe

# ------------------------------------------------------------------ sign-on


@pytest.mark.parametrize("scheme", ["001", "003", "004"])
def test_sign_on_each_scheme(scheme: str) -> None:
    host = Host(batch="000007")
    state = machine.new_state()
    state, result, sends = run(state, Input("sign_on", scheme=scheme, operator="01"), host)
    assert result.approved and result.message_zh == "签到成功"
    req = sends[0].message
    assert req.mti == "0800" and req.text(60) == "00000001" + scheme and 64 not in CODEC.decode(sends[0].body)
    assert req.data(62) == b"Sequence NoDEMO0001"
    assert req.text(63) == "01 "
    assert req.text(11) == "000001"
    assert state.batch == "000007"  # 60.2 of the reply
    assert state.key_scheme == scheme
    assert state.keys is not None and host.keys is not None
    assert kcv(state.keys.pik) == kcv(host.keys.pik) and state.keys.mak == host.keys.mak
    assert (state.keys.tdk is not None) == (scheme == "004")
    assert state.signed_on_date == "2026-03-02"
    assert (
        state.events[-1].kind == "sign_on"
        and state.events[-1].cause == "manual"
        and state.events[-1].result == "ok"
    )


def test_sign_on_clock_offset_from_fields_12_13() -> None:
    state, _ = signed_on()
    assert state.clock_offset == 0  # host 0302 10:00:00 = NOW in Shanghai
    host = Host()
    state2, result, _ = run(machine.new_state(), Input("sign_on"), host, now=NOW - timedelta(seconds=90))
    assert state2.clock_offset == 90


def test_sign_on_check_value_mismatch_aborts() -> None:
    host = Host()

    def script(send: Send, h: Host) -> bytes:
        h.sent.append(send.message)
        return h.sign_on_reply(send.message, corrupt_cv=True)

    state, result, _ = run(machine.new_state(), Input("sign_on"), host, script=script)
    assert not result.approved and result.error == "key_check"
    assert "下载工作密钥失败" in result.message and "working-key check value mismatch" in result.message
    assert state.keys is None and state.sign_on_owed == "key check failure"
    assert state.events[-1].result == "key_check_failed"
    assert result.exit_code == 2


def test_sign_on_declined() -> None:
    state, result, _ = run(
        machine.new_state(),
        Input("sign_on"),
        Host(),
        script=lambda s, h: h.sign_on_reply(s.message, code="97"),
    )
    assert result.response_code == "97" and result.exit_code == 1
    assert state.keys is None


# ------------------------------------------------------------------ sale


def test_sale_approved_fields_and_log() -> None:
    state, host = signed_on()
    state, result, sends = run(state, Input("sale", amount=1234, card=swipe()), host)
    assert result.approved and result.exit_code == 0
    req = sends[0].message
    assert (
        req.mti == "0200"
        and req.text(3) == "000000"
        and req.text(4) == "000000001234"
        and req.text(25) == "00"
    )
    assert req.text(22) == "021" and req.text(26) == "12" and req.text(49) == "156"
    assert Field60.parse(req.text(60)).type_code == "22"
    assert req.text(53)[:2] == "26"
    assert host.keys is not None and decrypt_pin(host.keys.pik, req.data(52) or b"", PAN) == "123456"
    assert sends[0].body[-8:].isalnum()  # the 8 ASCII hex characters of the CUP MAC
    assert result.stan == "000002" and result.rrn and result.auth_code == "123456"
    assert result.pan_masked == "621214*********0012"
    t = state.txns[-1]
    assert t.operation == "sale" and t.amount == 1234 and t.signature == "unsigned"
    assert state.reversal is None and state.flow is None


def test_sale_without_pin_single_des_field_53() -> None:
    state, host = signed_on(scheme="001")
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    req = sends[0].message
    assert req.text(53) == "2000000000000000" and req.text(22) == "021"
    state, result, sends = run(state, Input("sale", amount=100, card=swipe(pin="")), host)
    req = sends[0].message
    assert req.text(22) == "022" and 26 not in req and 52 not in req and 53 not in req


def test_sale_declined_clears_reversal() -> None:
    state, host = signed_on()
    state, result, _ = run(
        state, Input("sale", amount=100, card=swipe()), host, script=lambda s, h: h.reply(s.message, "51")
    )
    assert not result.approved and result.response_code == "51" and result.exit_code == 1
    assert "可用余额不足" in result.message
    assert state.reversal is None and not state.txns


def test_manual_and_ic_entry_modes() -> None:
    state, host = signed_on()
    manual = Card(pan=PAN, entry="manual", expiry="3012", pin="123456")
    state, result, sends = run(state, Input("sale", amount=100, card=manual), host)
    req = sends[0].message
    assert req.text(22) == "011" and req.text(2) == PAN and req.text(14) == "3012" and 35 not in req
    icc = TLV([("9F26", "0102030405060708"), ("9F27", "80"), ("95", "0000000000"), ("9F36", "0001")])
    chip = Card(pan=PAN, entry="insert", expiry="3012", seq="001", icc=icc, track2=PAN + "=30122010000000000")
    state, result, sends = run(state, Input("sale", amount=100, card=chip), host)
    req = sends[0].message
    assert (
        req.text(22) == "052"
        and req.text(23) == "001"
        and isinstance(req[55], TLV)
        and sends[0].category == "61"
    )
    tap = replace(chip, entry="tap")
    state, result, sends = run(state, Input("sale", amount=100, card=tap), host)
    assert (
        sends[0].message.text(22) == "072" and Field60.parse(sends[0].message.text(60)).read_capability == "6"
    )


# ------------------------------------------------------------------ reversal


def test_timeout_reversal_pending_then_sent_before_next_and_cleared() -> None:
    state, host = signed_on()
    state, out = machine.start(state, Input("sale", amount=500, card=swipe()), NOW)
    assert isinstance(out, Send)
    # The record exists *before* the request leaves: this is the state the journal writes.
    assert state.reversal is not None and state.reversal.reason == "98" and state.reversal.stan == "000002"
    state, done = machine.on_timeout(state, NOW)
    assert isinstance(done, Done) and done.result.error == "timeout" and done.result.exit_code == 2
    rec = state.reversal
    assert rec is not None and rec.reason == "98"
    for f in (26, 35, 36, 37, 52, 53):
        assert f not in rec.message
    assert rec.message.mti == "0400" and rec.message.text(11) == "000002" and rec.message.text(2) == PAN

    state, result, sends = run(state, Input("sale", amount=700, card=swipe()), host)
    assert [s.purpose for s in sends] == ["reversal", "sale"]
    rev = sends[0].message
    assert (
        rev.mti == "0400"
        and rev.text(11) == "000002"
        and rev.text(39) == "98"
        and rev.text(4) == "000000000500"
    )
    assert sends[1].message.text(11) == "000003"  # the reversal reused the original STAN
    assert result.approved and state.reversal is None
    assert any("冲正成功" in n for n in result.notices)
    assert any(e.kind == "reversal" and e.result == "cleared" for e in state.events)


def test_reply_mac_failure_gives_a0_reversal_and_owes_sign_on() -> None:
    state, host = signed_on()
    state, result, _ = run(
        state,
        Input("sale", amount=500, card=swipe()),
        host,
        script=lambda s, h: h.reply(s.message, bad_mac=True),
    )
    assert result.error == "mac" and not result.approved
    assert state.reversal is not None and state.reversal.reason == "A0"
    assert state.reversal.message.text(38) == "123456"  # kept because it was received
    assert state.sign_on_owed == "reply MAC failure"
    # Next transaction: make-up sign-on, then the reversal (MAC'd with the new MAK), then the sale.
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["sign_on", "reversal", "sale"]
    assert sends[1].message.text(39) == "A0"
    assert result.approved and state.reversal is None and state.sign_on_owed == ""
    assert [e.cause for e in state.events if e.kind == "sign_on"][-1] == "reply MAC failure"


@pytest.mark.parametrize("field,value", [("f11", "999999"), ("f41", "99999999"), ("f4", "000000000001")])
def test_mismatched_echo_keeps_reversal(field: str, value: str) -> None:
    state, host = signed_on()
    state, result, _ = run(
        state,
        Input("sale", amount=500, card=swipe()),
        host,
        script=lambda s, h: h.reply(s.message, **{field: value}),
    )
    assert result.error == "mismatch" and not result.approved
    assert state.reversal is not None and state.reversal.reason == "06"
    assert not state.txns


def test_reversal_reply_mismatch_keeps_it_and_attempts_exhausted_drop() -> None:
    state, host = signed_on()
    state, _ = machine.start(state, Input("sale", amount=500, card=swipe()), NOW)
    state, _ = machine.on_timeout(state, NOW)

    def script(send: Send, h: Host) -> bytes | str:
        return "timeout" if send.purpose == "reversal" else h.reply(send.message)

    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host, script=script)
    assert [s.purpose for s in sends] == ["reversal"] * 3  # parameter 23 default: 3 attempts
    assert result.error == "reversal" and "冲正不成功 请与客服联系" in result.message
    assert state.reversal is None
    assert any(e.kind == "reversal" and e.result == "dropped" for e in state.events)
    # Now the next sale goes straight through.
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["sale"] and result.approved


def test_reversal_attempts_follow_parameter_23() -> None:
    state, host = signed_on()
    state = replace(state, params={"23": "1"})
    state, _ = machine.start(state, Input("sale", amount=500, card=swipe()), NOW)
    state, _ = machine.on_timeout(state, NOW)
    state, result, sends = run(state, Input("balance", card=swipe()), host, script=lambda s, h: "timeout")
    assert len(sends) == 1 and state.reversal is None and result.error == "reversal"


def test_reversal_declined_answer_is_retried_with_reason_06() -> None:
    state, host = signed_on()
    state, _ = machine.start(state, Input("sale", amount=500, card=swipe()), NOW)
    state, _ = machine.on_timeout(state, NOW)
    codes = iter(["96", "00"])

    def script(send: Send, h: Host) -> bytes:
        return h.reply(send.message, next(codes)) if send.purpose == "reversal" else h.reply(send.message)

    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host, script=script)
    assert [s.purpose for s in sends] == ["reversal", "reversal", "sale"]
    assert sends[1].message.text(39) == "06" and result.approved


def test_power_loss_reversal_after_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from posgate.terminal.journal import Journal

    state, host = signed_on()
    j = Journal.open(tmp_path, config=state.config)
    j.save(state)
    state, out = machine.start(state, Input("sale", amount=900, card=swipe()), NOW)
    j.save(state)  # written before the request leaves
    assert isinstance(out, Send)
    j.close()  # power lost while waiting for the reply
    j2 = Journal.open(tmp_path)
    restored = j2.load()
    assert (
        restored.reversal is not None
        and restored.reversal.stan == "000002"
        and restored.reversal.reason == "98"
    )
    assert restored.flow is None and restored.keys is not None and restored.stan == 2
    state, result, sends = run(restored, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["reversal", "sale"] and result.approved
    j2.save(state)
    j2.close()
    assert Journal.open(tmp_path).load().reversal is None


def test_comm_error_before_send_needs_no_reversal() -> None:
    state, host = signed_on()
    state, out = machine.start(state, Input("sale", amount=500, card=swipe()), NOW)
    assert state.reversal is not None
    state, done = machine.on_comm_error(state, NOW, sent=False)
    assert isinstance(done, Done) and done.result.error == "comm" and state.reversal is None


# ------------------------------------------------------------------ make-up sign-on


# ------------------------------------------------------------------ reply authentication (R3)


def _with_39(body: bytes, code: str) -> bytes:
    """The reply with 39 replaced and its MAC left as the host computed it: what a bit flip
    on the wire does."""
    return CODEC.encode(CODEC.decode(body).with_fields({39: code}))


@pytest.mark.parametrize("code", ["02", "01", "20", "51"])
def test_corrupted_approval_read_as_a_decline_keeps_the_reversal(code: str) -> None:
    state, host = signed_on()
    state, result, _ = run(state, Input("sale", amount=500, card=swipe()), host,
                           script=lambda s, h: _with_39(h.reply(s.message), code))  # fmt: skip
    assert not result.approved and result.error == "mac"
    assert state.reversal is not None and state.reversal.reason == "A0" and not state.txns
    assert state.sign_on_owed == "reply MAC failure"
    state, result, sends = run(state, Input("balance", card=swipe()), host)
    assert [s.purpose for s in sends] == ["sign_on", "reversal", "balance"] and state.reversal is None


def test_decline_without_a_mac_is_shown_and_the_reversal_kept() -> None:
    state, host = signed_on()
    state, result, _ = run(state, Input("sale", amount=500, card=swipe()), host,
                           script=lambda s, h: h.reply(s.message, "51", mac=False))  # fmt: skip
    assert result.response_code == "51" and not result.approved and result.error == "" and result.exit_code == 1
    assert any("carries no MAC" in n for n in result.notices)
    assert state.reversal is not None and state.reversal.reason == "06" and state.reversal.stan == result.stan
    assert not state.txns and state.sign_on_owed == ""
    state, result, sends = run(state, Input("sale", amount=700, card=swipe()), host)
    assert [s.purpose for s in sends] == ["reversal", "sale"] and result.approved and state.reversal is None
    assert sends[0].message.text(39) == "06" and sends[0].message.text(11) == "000002"


def test_a_macd_decline_of_a_balance_inquiry_and_an_unmacd_one_are_both_shown() -> None:
    state, host = signed_on()
    for mac in (True, False):
        state, result, _ = run(state, Input("balance", card=swipe()), host,
                               script=lambda s, h, m=mac: h.reply(s.message, "55", mac=m))  # fmt: skip
        assert result.response_code == "55" and result.error == "" and state.reversal is None


@pytest.mark.parametrize("code", ["0 ", "0p", "o0", "0"])
def test_a_39_outside_the_response_code_alphabet_is_a_damaged_reply(code: str) -> None:
    state, host = signed_on()
    state, result, _ = run(state, Input("sale", amount=500, card=swipe()), host,
                           script=lambda s, h: h.reply(s.message, code, mac=False))  # fmt: skip
    assert result.error == "mismatch" and "field 39" in result.message_en
    assert state.reversal is not None and state.reversal.reason == "06"


def test_an_approval_without_a_mac_is_a_mac_failure() -> None:
    state, host = signed_on()
    state, result, _ = run(state, Input("sale", amount=500, card=swipe()), host,
                           script=lambda s, h: h.reply(s.message, "00", mac=False))  # fmt: skip
    assert result.error == "mac" and state.reversal is not None and state.reversal.reason == "A0"


def test_resign_code_without_a_mac_signs_on_sends_the_reversal_then_retries() -> None:
    state, host = signed_on()
    answers = iter(["A0"])

    def script(send: Send, h: Host) -> bytes:
        if send.purpose == "sale":
            code = next(answers, "00")
            return h.reply(send.message, code, mac=code == "00")
        return h.reply(send.message)

    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host, script=script)
    assert [s.purpose for s in sends] == ["sale", "sign_on", "reversal", "sale"]
    assert sends[2].message.text(11) == sends[0].message.text(11) and sends[2].message.text(39) == "06"
    assert sends[3].message.text(11) != sends[0].message.text(11)
    assert result.approved and state.reversal is None


def test_offline_advice_acknowledged_only_by_an_authenticated_reply() -> None:
    state, host = signed_on()
    state, _ = machine.start(state, Input("offline", amount=2000, card=swipe(pin=""), auth_code="654321"), NOW)
    stan = state.txns[-1].stan
    replies = iter([
        lambda s, h: _with_39(h.reply(s.message), "20"),  # damaged approval: MAC fails
        lambda s, h: h.reply(s.message, "05", mac=False),  # an un-MAC'd decline
        lambda s, h: h.reply(s.message, "A0", mac=False),  # a gate refusal: owes a sign-on
        lambda s, h: h.reply(s.message, "05"),  # the host's authenticated decline
    ])  # fmt: skip
    statuses = []
    for _ in range(4):
        answer = next(replies)
        state, result, sends = run(state, Input("balance", card=swipe()), host,
                                   script=lambda s, h, a=answer: a(s, h) if s.purpose == "offline" else None)  # fmt: skip
        assert "offline" in [s.purpose for s in sends]
        statuses.append(state.txn(stan).status)  # type: ignore[union-attr]
    assert statuses == ["offline_pending", "offline_pending", "offline_pending", "offline_declined"]


@pytest.mark.parametrize("code", ["A0", "99", "77", "22"])
def test_resign_codes_sign_on_and_retry_once(code: str) -> None:
    state, host = signed_on()
    answers = iter([code])

    def script(send: Send, h: Host) -> bytes:
        if send.purpose == "sale":
            c = next(answers, "00")
            return h.reply(send.message, c)
        return h.reply(send.message)

    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host, script=script)
    assert [s.purpose for s in sends] == ["sale", "sign_on", "sale"]
    assert sends[0].message.text(11) != sends[2].message.text(11)  # the retry takes a new STAN
    assert result.approved
    assert state.events[-1].cause == f"response {code}" or any(
        e.cause == f"response {code}" for e in state.events
    )


def test_resign_code_twice_declines_and_owes_sign_on() -> None:
    state, host = signed_on()
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host,
                               script=lambda s, h: h.reply(s.message, "A0") if s.purpose == "sale" else h.reply(s.message))  # fmt: skip
    assert [s.purpose for s in sends] == ["sale", "sign_on", "sale"]
    assert result.response_code == "A0" and state.sign_on_owed == "response A0"


def test_daily_sign_on_before_first_transaction_of_a_new_day() -> None:
    state, host = signed_on()
    tomorrow = NOW + timedelta(days=1)
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host, now=tomorrow)
    assert [s.purpose for s in sends] == ["sign_on", "sale"] and result.approved
    assert state.signed_on_date == "2026-03-03"
    assert any(e.cause == "first transaction of the day" for e in state.events)
    # What the cashier reads says why the terminal signed on (it once read "signed on (no working
    # keys)", as if the sign-on had left it without keys).
    assert "交易前已自动签到 / signed on first: 当日首笔交易 / first transaction of the day" in result.notices


def test_header_requirement_3_signs_on_after_the_transaction() -> None:
    state, host = signed_on()
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host,
                               script=lambda s, h: (h.reply(s.message), "3") if s.purpose == "sale" else None)  # fmt: skip
    assert [s.purpose for s in sends] == ["sale", "sign_on"] and result.approved
    assert any(e.cause == "host requirement 3" for e in state.events)


def test_header_requirement_1_downloads_parameters() -> None:
    state, host = signed_on()
    params = format_parameters({"12": b"30", "21": b"1", "22": "新商户名".encode("gbk"), "23": b"2"})

    def script(send: Send, h: Host) -> object:
        if send.purpose == "sale":
            return h.reply(send.message), "1"
        if send.purpose == "parameter_download":
            assert send.message.text(60)[8:11] == "360" and send.message.mti == "0800"
            return h.reply(send.message, f62=params)
        return None

    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host, script=script)
    assert [s.purpose for s in sends] == ["sale", "parameter_download"] and result.approved
    assert (
        state.timeout == 30
        and state.auto_sign_off
        and state.merchant_name == "新商户名"
        and state.reversal_attempts == 2
    )


def test_header_requirement_2_uploads_status() -> None:
    state, host = signed_on()
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host,
                               script=lambda s, h: (h.reply(s.message), "2") if s.purpose == "sale" else None)  # fmt: skip
    assert [s.purpose for s in sends] == ["sale", "status_upload"]
    st = sends[1].message
    assert (
        st.mti == "0820"
        and st.text(60)[8:11] == "362"
        and (st.data(62) or b"").startswith(b"011021031041051")
    )


# ------------------------------------------------------------------ void, refund, balance, pre-auth


def test_void_uses_original_and_marks_it() -> None:
    state, host = signed_on()
    state, sale, _ = run(state, Input("sale", amount=800, card=swipe()), host)
    state, result, sends = run(state, Input("void", voucher=sale.stan), host)
    req = sends[0].message
    assert (
        req.text(3) == "200000"
        and req.text(4) == "000000000800"
        and req.text(37) == sale.rrn
        and req.text(38) == "123456"
    )
    assert req.text(61) == "000001" + sale.stan and Field60.parse(req.text(60)).type_code == "23"
    assert result.approved
    orig = state.txn(sale.stan)
    assert orig is not None and orig.status == "voided"
    with pytest.raises(TerminalError):
        machine.start(state, Input("void", voucher=sale.stan), NOW)
    with pytest.raises(TerminalError):
        machine.start(state, Input("void", voucher="123456"), NOW)


def test_refund_is_not_reversible() -> None:
    state, host = signed_on()
    inp = Input("refund", amount=300, card=swipe(), rrn="000000000009", orig_date="0301")
    state, out = machine.start(state, inp, NOW)
    assert isinstance(out, Send) and state.reversal is None
    req = out.message
    assert (
        req.mti == "0220"
        and req.text(3) == "200000"
        and req.text(37) == "000000000009"
        and req.text(61) == "0000000000000301"
    )
    state, done = machine.on_timeout(state, NOW)
    assert state.reversal is None and isinstance(done, Done) and done.result.error == "timeout"


# ------------------------------------------------------------------ store-and-forward advices (R5)

REFUND = Input("refund", amount=300, card=swipe(), rrn="000000000009", orig_date="0301")


def _pending_refund(state: TerminalState) -> tuple[TerminalState, Send]:
    state, out = machine.start(state, REFUND, NOW)
    assert isinstance(out, Send)
    state, done = machine.on_timeout(state, NOW)
    assert isinstance(done, Done) and done.result.error == "timeout" and "again" in done.result.message_en
    return state, out


def test_refund_is_queued_before_it_leaves_and_resent_identically_until_acknowledged() -> None:
    state, host = signed_on()
    state, out = machine.start(state, REFUND, NOW)
    assert isinstance(out, Send)
    # Queued *before* it leaves (the state the journal writes), as sent: an advice's card
    # fields, no track, no PIN block.
    t = state.txns[-1]
    assert (t.operation, t.status, t.send_count, t.stan) == ("refund", "refund_pending", 1, out.message.text(11))
    req = out.message
    assert req.text(2) == PAN and req.text(14) == "3012" and req.text(22) == "022"
    for n in (26, 35, 36, 52, 53):
        assert n not in req
    assert t.request == CODEC.encode(req)  # kept without its MAC
    state, _ = machine.on_timeout(state, NOW)
    assert state.txn(t.stan).status == "refund_pending"  # type: ignore[union-attr]
    # Before the next online message: the same STAN and content (the MAC block), then the sale.
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["refund", "sale"] and result.approved
    assert sends[0].body[:-8] == out.body[:-8]
    r = state.txn(t.stan)
    assert r is not None and r.status == "approved" and r.rrn and r.send_count == 2 and r.request == b""
    assert any("acknowledged" in n for n in result.notices)
    # An acknowledged refund is not sent again.
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["sale"]


def test_refund_resent_after_a_make_up_sign_on_keeps_its_content_under_a_new_mac() -> None:
    state, host = signed_on()
    state, out = _pending_refund(state)
    state = replace(state, sign_on_owed="reply MAC failure")
    state, result, sends = run(state, Input("balance", card=swipe()), host)
    assert [s.purpose for s in sends] == ["sign_on", "refund", "balance"]
    assert sends[1].body[:-8] == out.body[:-8] and sends[1].body[-8:] != out.body[-8:]


def test_refund_unauthenticated_or_damaged_answers_leave_it_queued() -> None:
    state, host = signed_on()
    answers = iter([
        lambda s, h: h.reply(s.message, "25", mac=False),  # a decline without a MAC
        lambda s, h: _with_39(h.reply(s.message), "05"),  # an approval damaged into a decline
        lambda s, h: h.reply(s.message, "25"),  # the host's authenticated decline
    ])  # fmt: skip
    state, out = machine.start(state, REFUND, NOW)
    assert isinstance(out, Send)
    stan = out.message.text(11)
    first = next(answers)
    state, done = machine.on_reply(state, first(out, host), NOW)
    assert isinstance(done, Done)
    assert done.result.error == "unconfirmed" and done.result.response_code == "25" and not done.result.approved
    assert state.txn(stan).status == "refund_pending"  # type: ignore[union-attr]
    for expect in ("refund_pending", "declined"):
        answer = next(answers)
        state, result, sends = run(state, Input("balance", card=swipe()), host,
                                   script=lambda s, h, a=answer: a(s, h) if s.purpose == "refund" else None)  # fmt: skip
        assert "refund" in [x.purpose for x in sends]
        assert state.txn(stan).status == expect  # type: ignore[union-attr]
    from posgate.terminal.operations.settlement import totals

    assert totals(state).domestic.credit_count == 0


def test_refund_resign_code_without_a_mac_signs_on_and_sends_the_same_refund() -> None:
    state, host = signed_on()
    answers = iter(["A0"])

    def script(send: Send, h: Host) -> bytes:
        if send.purpose == "refund":
            code = next(answers, "00")
            return h.reply(send.message, code, mac=code == "00")
        return h.reply(send.message)

    state, result, sends = run(state, REFUND, host, script=script)
    assert [s.purpose for s in sends] == ["refund", "sign_on", "refund"]
    assert sends[2].message.text(11) == sends[0].message.text(11) and sends[2].body[:-8] == sends[0].body[:-8]
    assert result.approved and state.txns[-1].status == "approved"


def test_refund_not_sent_at_all_is_not_queued() -> None:
    state, host = signed_on()
    state, out = machine.start(state, REFUND, NOW)
    state, done = machine.on_comm_error(state, NOW, sent=False)
    assert isinstance(done, Done) and done.result.error == "comm" and not state.txns


def test_refund_flagged_after_the_advice_attempts() -> None:
    state, host = signed_on()
    state, out = _pending_refund(state)
    stan = out.message.text(11)
    for _ in range(state.advice_attempts - 1):
        state, result, sends = run(state, Input("balance", card=swipe()), host,
                                   script=lambda s, h: "timeout" if s.purpose == "refund" else None)  # fmt: skip
        assert [x.purpose for x in sends] == ["refund", "balance"] and result.approved
    t = state.txn(stan)
    assert t is not None and t.status == "refund_unconfirmed" and t.send_count == state.advice_attempts
    assert any(e.kind == "notice" and e.result == "unconfirmed" for e in state.events)
    state, result, sends = run(state, Input("balance", card=swipe()), host)
    assert [x.purpose for x in sends] == ["balance"]  # no longer re-sent by itself
    state, result, sends = run(state, Input("settlement"), host)
    assert result.approved and result.settlement is not None  # flagged: settlement goes on without it
    assert result.settlement["totals"]["domestic"]["credit_count"] == 0


def test_settlement_waits_for_a_refund_in_doubt() -> None:
    state, host = signed_on()
    state = _day(state, host, 1)
    state, out = _pending_refund(state)
    state, result, sends = run(state, Input("settlement"), host,
                               script=lambda s, h: "timeout" if s.purpose == "refund" else None)  # fmt: skip
    assert [x.purpose for x in sends] == ["refund"] and result.error == "pending" and not result.approved
    assert state.batch == "000001" and state.txns
    state, result, sends = run(state, Input("settlement"), host)
    assert [x.purpose for x in sends][:2] == ["refund", "settlement"] and result.approved
    assert result.settlement is not None and result.settlement["totals"]["domestic"]["credit_count"] == 1


def test_refund_in_doubt_survives_a_power_loss(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from posgate.terminal.journal import Journal

    state, host = signed_on()
    j = Journal.open(tmp_path, config=state.config)
    j.save(state)
    state, out = machine.start(state, REFUND, NOW)
    j.save(state)  # written before the request leaves
    j.close()  # power lost while waiting for the reply
    j2 = Journal.open(tmp_path)
    restored = j2.load()
    t = restored.txn(out.message.text(11))  # type: ignore[union-attr]
    assert t is not None and t.status == "refund_pending" and t.request
    raw = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
    assert b"6212142000000000012=" not in raw and raw  # no track on disk (database and WAL)
    state, result, sends = run(restored, Input("sale", amount=100, card=swipe()), host)
    assert [x.purpose for x in sends] == ["refund", "sale"] and sends[0].body[:-8] == out.body[:-8]  # type: ignore[union-attr]
    j2.save(state)
    j2.close()


def test_offline_advice_in_doubt_is_flagged_after_the_attempts_but_still_uploaded() -> None:
    state, host = signed_on()
    state, _ = machine.start(state, Input("offline", amount=2000, card=swipe(pin=""), auth_code="654321"), NOW)
    stan = state.txns[-1].stan
    for _ in range(state.advice_attempts):
        state, result, sends = run(state, Input("balance", card=swipe()), host,
                                   script=lambda s, h: "timeout" if s.purpose == "offline" else None)  # fmt: skip
        assert "offline" in [x.purpose for x in sends]
    t = state.txn(stan)
    assert t is not None and t.status == "offline_pending" and t.send_count == state.advice_attempts
    assert any(e.kind == "notice" and e.result == "unconfirmed" for e in state.events)
    state, result, sends = run(state, Input("balance", card=swipe()), host)
    assert [x.purpose for x in sends] == ["balance"]
    state, result, sends = run(state, Input("settlement"), host)
    assert result.approved and [x.purpose for x in sends][:2] == ["settlement", "batch_upload"]  # D11 still


def test_adjusting_an_offline_sale_already_sent_does_not_change_what_was_sent() -> None:
    state, host = signed_on()
    state, _ = machine.start(state, Input("offline", amount=2000, card=swipe(pin=""), auth_code="654321"), NOW)
    stan = state.txns[-1].stan
    state, _, _ = run(state, Input("balance", card=swipe()), host,
                      script=lambda s, h: "timeout" if s.purpose == "offline" else None)  # fmt: skip
    state, out = machine.start(state, Input("offline", kind="adjust", voucher=stan, amount=2500), NOW)
    assert isinstance(out, Done)
    assert state.txn(stan).amount == 2000 and state.txn(stan).status == "adjusted"  # type: ignore[union-attr]
    assert state.txns[-1].operation == "settlement_adjust" and state.txns[-1].amount == 2500


def test_balance_reads_field_54() -> None:
    state, host = signed_on()
    state, result, sends = run(
        state,
        Input("balance", card=swipe()),
        host,
        script=lambda s, h: h.reply(s.message, f54="1002156C000000012345"),
    )
    assert 4 not in sends[0].message and sends[0].message.text(3) == "310000"
    assert result.approved and result.balance == 12345 and state.reversal is None


def test_preauth_family() -> None:
    state, host = signed_on()
    state, pre, sends = run(state, Input("preauth", amount=5000, card=swipe()), host)
    assert sends[0].message.mti == "0100" and sends[0].message.text(25) == "06" and pre.approved
    state, comp, sends = run(
        state, Input("completion", amount=4500, auth_code=pre.auth_code, card=swipe()), host
    )
    req = sends[0].message
    assert (
        req.mti == "0200" and req.text(38) == pre.auth_code and req.text(61).startswith("000001" + pre.stan)
    )
    assert comp.approved
    state, cv, sends = run(state, Input("completion_void", voucher=comp.stan), host)
    assert (
        sends[0].message.text(3) == "200000"
        and Field60.parse(sends[0].message.text(60)).type_code == "21"
        and cv.approved
    )
    state, pv, sends = run(state, Input("preauth_void", auth_code=pre.auth_code, card=swipe()), host)
    assert sends[0].message.mti == "0100" and sends[0].message.text(3) == "200000" and pv.approved


# ------------------------------------------------------------------ offline, signatures, STAN


def test_offline_captured_then_trickled_after_next_online() -> None:
    state, host = signed_on()
    state, out = machine.start(
        state, Input("offline", amount=2000, card=swipe(pin=""), auth_code="654321"), NOW
    )
    assert isinstance(out, Done) and out.result.approved
    off = state.txns[-1]
    assert off.status == "offline_pending" and off.stan == "000002"
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["sale", "offline"]
    adv = sends[1].message
    assert (
        adv.mti == "0220"
        and adv.text(11) == "000002"
        and adv.text(38) == "654321"
        and adv.text(63).startswith("CUP")
    )
    assert Field60.parse(adv.text(60)).type_code == "30"
    assert state.txn("000002").status == "offline_sent"  # type: ignore[union-attr]


def test_offline_trickle_stops_on_timeout_and_is_retried() -> None:
    state, host = signed_on()
    state, _ = machine.start(
        state, Input("offline", amount=2000, card=swipe(pin=""), auth_code="654321"), NOW
    )
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host,
                               script=lambda s, h: "timeout" if s.purpose == "offline" else None)  # fmt: skip
    assert result.approved and state.txn("000002").status == "offline_pending"  # type: ignore[union-attr]
    assert state.txn("000002").send_count == 1  # type: ignore[union-attr]
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    # Sent once and unanswered, it is in doubt: it goes *before* the next online message (R5),
    # with the same STAN and content.
    assert [s.purpose for s in sends] == ["offline", "sale"]
    assert state.txn("000002").status == "offline_sent"  # type: ignore[union-attr]


def test_e_signature_uploaded_retried_and_unsigned() -> None:
    state, host = signed_on()
    jbig = b"\x00" * 20 + b"JBIGDATA"
    fail_first = iter([True])

    def script(send: Send, h: Host) -> object:
        if send.purpose == "signature":
            return "timeout" if next(fail_first, False) else None
        return None

    state, result, sends = run(
        state, Input("sale", amount=100, card=swipe(), signature=jbig), host, script=script
    )
    assert [s.purpose for s in sends] == ["sale", "signature"] and result.approved
    stan = result.stan
    assert state.txn(stan).signature == "pending" and stan in state.signatures  # type: ignore[union-attr]
    sig = sends[1].message
    assert (
        sig.mti == "0820" and sig.text(11) == stan and sig.data(62) == jbig and sig.text(60) == "07000001800"
    )
    tlv = TLV.decode(sig.data(55) or b"")
    assert (
        tlv["FF00"] == "演示便利店".encode("gbk")
        and tlv["FF01"] == "消费".encode("gbk")
        and tlv["FF70"] == b"\x02"
    )
    assert sends[1].body[-8:] != b""  # MAC'd
    # Retried after the next online transaction.
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert [s.purpose for s in sends] == ["sale", "signature"]
    assert state.txn(stan).signature == "uploaded" and not state.signatures  # type: ignore[union-attr]
    assert state.txn(result.stan).signature == "unsigned"  # type: ignore[union-attr]


def test_stan_wraps() -> None:
    state = TerminalState(stan=999_998)
    state, s1 = next_stan(state)
    state, s2 = next_stan(state)
    assert (s1, s2) == ("999999", "000001")
    st, host = signed_on()
    st = replace(st, stan=999_999)
    st, result, sends = run(st, Input("sale", amount=100, card=swipe()), host)
    assert sends[0].message.text(11) == "000001" and result.approved


def test_start_refuses_bad_input_without_changing_state() -> None:
    state, host = signed_on()
    with pytest.raises(TerminalError):
        machine.start(state, Input("sale", amount=0, card=swipe()), NOW)
    with pytest.raises(TerminalError):
        machine.start(state, Input("refund", amount=100, card=swipe(), rrn="x"), NOW)
    with pytest.raises(TerminalError):
        machine.start(state, Input("teleport"), NOW)


# ------------------------------------------------------------------ settlement and batch upload


def _day(state: TerminalState, host: Host, n_dom: int = 3, n_foreign: int = 0) -> TerminalState:
    for i in range(n_dom):
        state, r, _ = run(state, Input("sale", amount=100 + i, card=swipe()), host)
        assert r.approved
    host.card_org = "VIS"
    for i in range(n_foreign):
        state, r, _ = run(state, Input("sale", amount=1000 + i, card=swipe(pan="4761730000000011")), host)
        assert r.approved
    host.card_org = "CUP"
    return state


def test_balanced_settlement_ends_with_207() -> None:
    state, host = signed_on()
    state = _day(state, host, 3)
    state, _ = machine.start(
        state, Input("offline", amount=2000, card=swipe(pin=""), auth_code="654321"), NOW
    )
    state, result, sends = run(state, Input("settlement"), host)
    purposes = [s.purpose for s in sends]
    assert purposes == ["offline", "settlement", "batch_upload", "batch_end"]
    st = sends[1].message
    assert st.mti == "0500" and st.text(60) == "00000001201" and 64 not in CODEC.decode(sends[1].body)
    assert st.text(48)[:15] == f"{100 + 101 + 102 + 2000:012d}004"
    resend = sends[2].message
    assert resend.mti == "0320" and resend.text(60)[:2] == "30" and resend.text(60)[8:11] == "000"  # D11
    end = sends[3].message
    assert end.text(60) == "00000001207" and end.text(48) == "0001"
    assert result.approved and result.settlement is not None
    s = result.settlement
    assert s["domestic_result"] == "1" and s["foreign_result"] == "1" and s["batch_upload_count"] == 1
    assert state.batch == "000002" and not state.txns and state.last_settlement["settled_batch"] == "000001"


def test_unbalanced_settlement_uploads_at_most_8_per_message_then_202() -> None:
    state, host = signed_on()
    state = _day(state, host, 10, 2)

    def script(send: Send, h: Host) -> object:
        if send.purpose == "settlement":
            return h.reply(send.message, f48=settle_flags(send.message, "2", "1"))
        return None

    state, result, sends = run(state, Input("settlement"), host, script=script)
    ups = [s.message for s in sends if s.purpose == "batch_upload"]
    assert [len(BatchUploadEntries.parse(m.text(48)).entries) for m in ups] == [
        8,
        2,
    ]  # only the domestic side
    assert all(m.text(60)[8:11] == "201" for m in ups)
    entries = BatchUploadEntries.parse(ups[0].text(48)).entries
    assert entries[0].pan == PAN and not entries[0].foreign
    end = sends[-1].message
    assert end.text(60)[8:11] == "202" and end.text(48) == "0010"
    assert result.settlement is not None and result.settlement["domestic_result"] == "2"
    assert result.settlement["batch_upload_count"] == 10 and state.batch == "000002"


def test_settlement_auto_sign_off_parameter_21() -> None:
    state, host = signed_on()
    state = replace(state, params={"21": "1"})
    state, result, sends = run(state, Input("settlement"), host)
    assert (
        [s.purpose for s in sends][-1] == "sign_off"
        and state.keys is None
        and state.sign_on_owed == "signed off"
    )


def test_settlement_timeout_keeps_batch() -> None:
    state, host = signed_on()
    state = _day(state, host, 1)
    state, result, sends = run(state, Input("settlement"), host, script=lambda s, h: "timeout")
    assert result.error == "timeout" and state.batch == "000001" and len(state.txns) == 1


def test_sign_off_and_echo() -> None:
    state, host = signed_on()
    state, result, sends = run(state, Input("echo"), host)
    assert result.approved and sends[0].message.text(60) == "00000001301"
    state, result, sends = run(state, Input("sign_off"), host)
    assert result.approved and sends[0].message.text(60) == "00000001002" and state.keys is None
    state, result, sends = run(state, Input("sale", amount=1, card=swipe()), host)
    assert [s.purpose for s in sends] == ["sign_on", "sale"]


def test_cheap_to_instantiate() -> None:
    states = [machine.new_state() for _ in range(1000)]
    assert len({id(s) for s in states}) == 1000


def test_issuer_script_queues_a_script_result_advice() -> None:
    state, host = signed_on()
    icc = TLV(
        [
            ("9F26", "0102030405060708"),
            ("9F27", "80"),
            ("95", "0000000000"),
            ("9F36", "0001"),
            ("9F10", "07010103A0"),
        ]
    )
    chip = Card(pan=PAN, entry="insert", expiry="3012", seq="001", icc=icc, pin="123456")
    script55 = TLV(
        [("91", "0A0B0C0D0E0F00113030"), ("72", TLV([("9F18", "11223344"), ("86", "8418000004AABBCCDD")]))]
    )
    state, result, sends = run(state, Input("sale", amount=100, card=chip), host,
                               script=lambda s, h: h.reply(s.message, f55=script55) if s.purpose == "sale" else None)  # fmt: skip
    assert [s.purpose for s in sends] == ["sale", "script_advice"] and result.approved
    adv = sends[1].message
    assert (
        adv.mti == "0620" and adv.text(60)[8:11] == "951" and adv.text(61).startswith("000001" + result.stan)
    )
    assert isinstance(adv[55], TLV) and adv[55]["DF31"] == bytes.fromhex("2011223344")
    assert state.txn(result.stan).script == "sent"  # type: ignore[union-attr]


@pytest.mark.parametrize("pan,org", [("4761730000000011", "VIS"), ("5555555555554444", "MCC"),
                                     ("3530111333300000", "JCB"), ("378282246310005", "AMX"),
                                     ("6212142000000000012", "CUP")])  # fmt: skip
def test_card_organisation_by_bin(pan: str, org: str) -> None:
    from posgate.terminal.cards import read_card
    from posgate.terminal.operations.base import organisation_of

    assert organisation_of(pan) == org
    assert read_card(pan).organisation == org and swipe(pan=pan).org == org


def test_offline_visa_sale_counts_foreign_before_and_after_its_advice() -> None:
    visa = "4761730000000011"
    state, host = signed_on()
    state, _ = machine.start(state, Input("offline", amount=2000, card=swipe(pin="", pan=visa), auth_code="1"), NOW)
    off = state.txns[-1]
    assert off.card_org == "VIS" and not off.domestic  # by the card itself, before any reply
    from posgate.terminal.operations.settlement import totals

    t = totals(state)
    assert (t.domestic.debit_count, t.foreign.debit_count, t.foreign.debit_amount) == (0, 1, 2000)
    # The host's 63.1 decides once the advice is acknowledged (here it says CUP: it wins).
    state, _, sends = run(state, Input("balance", card=swipe()), host)
    assert "offline" in [s.purpose for s in sends]
    assert sends[-1].message.text(63).startswith("VIS")  # the advice says what the terminal knows
    assert state.txn(off.stan).status == "offline_sent" and state.txn(off.stan).card_org == "CUP"  # type: ignore[union-attr]
    # A reader that knows better than the BIN is believed.
    state, _ = machine.start(state, Input("offline", amount=10, card=replace(swipe(pin=""), organisation="JCB"),
                                          auth_code="1"), NOW)  # fmt: skip
    assert state.txns[-1].card_org == "JCB"


def test_online_sale_without_63_takes_the_card_organisation() -> None:
    state, host = signed_on()
    state, result, _ = run(state, Input("sale", amount=100, card=swipe(pan="4761730000000011")), host,
                           script=lambda s, h: h.reply(s.message, f63=None))  # fmt: skip
    assert result.approved and result.card_org == "VIS" and state.txns[-1].card_org == "VIS"


def test_offline_adjust_and_tip() -> None:
    state, host = signed_on()
    state, sale, _ = run(state, Input("sale", amount=1000, card=swipe()), host)
    state, out = machine.start(state, Input("offline", kind="tip", voucher=sale.stan, tip=200), NOW)
    assert isinstance(out, Done) and out.result.amount == 1200
    tip = state.txns[-1]
    assert tip.operation == "tip_adjust" and state.txn(sale.stan).status == "adjusted"  # type: ignore[union-attr]
    state, out = machine.start(
        state, Input("offline", amount=500, card=swipe(pin=""), auth_code="111111"), NOW
    )
    off_stan = state.txns[-1].stan
    state, out = machine.start(state, Input("offline", kind="adjust", voucher=off_stan, amount=450), NOW)
    assert state.txn(off_stan).amount == 450  # type: ignore[union-attr]  # corrected in place: not uploaded yet
    state, result, sends = run(state, Input("balance", card=swipe()), host)
    advices = {s.message.text(60)[:2]: s.message for s in sends if s.purpose == "offline"}
    assert set(advices) == {"34", "30"}
    assert (
        advices["34"].text(48) == "000000000200"
        and advices["34"].text(37) == sale.rrn
        and advices["34"].text(4) == "000000001200"
    )
    assert advices["30"].text(4) == "000000000450"
    state, out = machine.start(state, Input("offline", kind="adjust", voucher=off_stan, amount=400), NOW)
    state, result, sends = run(state, Input("balance", card=swipe()), host)
    adj = [s.message for s in sends if s.purpose == "offline"][0]
    assert (
        adj.text(60)[:2] == "32"
        and adj.text(4) == "000000000400"
        and adj.text(61).startswith("000001" + off_stan)
    )
    from posgate.terminal.operations.settlement import totals

    t = totals(state)
    assert (t.domestic.debit_amount, t.domestic.debit_count) == (1200 + 400, 2)


def test_header_requirement_obeyed_after_a_decline_but_not_from_a_mismatched_reply() -> None:
    state, host = signed_on()
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host,
                               script=lambda s, h: (h.reply(s.message, "51"), "3") if s.purpose == "sale" else None)  # fmt: skip
    assert [s.purpose for s in sends] == ["sale", "sign_on"] and result.response_code == "51"
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host,
                               script=lambda s, h: (h.reply(s.message, f11="000000"), "3") if s.purpose == "sale" else None)  # fmt: skip
    assert [s.purpose for s in sends] == ["sale"] and result.error == "mismatch"


def test_tracks_encrypted_under_the_tdk_with_scheme_004_only() -> None:
    from posgate.crypto import decrypt_track

    state, host = signed_on(scheme="004")
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    req = sends[0].message
    assert req.text(53) == "2610000000000000" and req.text(35) != swipe().track2
    assert host.keys is not None and host.keys.tdk is not None
    assert decrypt_track(host.keys.tdk, req.text(35)) == swipe().track2
    state, host = signed_on(scheme="003")
    state, result, sends = run(state, Input("sale", amount=100, card=swipe()), host)
    assert sends[0].message.text(53) == "2600000000000000" and sends[0].message.text(35) == swipe().track2


@pytest.mark.parametrize("operation", ["sign_off", "settlement", "parameter_download"])
def test_pending_reversal_goes_before_any_online_message(operation: str) -> None:
    state, host = signed_on()
    state, _ = machine.start(state, Input("sale", amount=500, card=swipe()), NOW)
    state, _ = machine.on_timeout(state, NOW)
    state, result, sends = run(
        state,
        Input(operation),
        host,
        script=lambda s, h: h.reply(s.message, f62=b"1230") if s.purpose == "parameter_download" else None,
    )
    assert sends[0].purpose == "reversal" and state.reversal is None


def test_void_refuses_another_card_and_preauth_void_by_voucher() -> None:
    state, host = signed_on()
    state, sale, _ = run(state, Input("sale", amount=800, card=swipe()), host)
    with pytest.raises(TerminalError, match="card"):
        machine.start(state, Input("void", voucher=sale.stan, card=swipe(pan="6217000000000000020")), NOW)
    state, pre, _ = run(state, Input("preauth", amount=5000, card=swipe()), host)
    state, pv, sends = run(state, Input("preauth_void", voucher=pre.stan), host)
    req = sends[0].message
    assert (
        pv.approved and req.text(4) == "000000005000" and req.text(38) == pre.auth_code and req.text(2) == PAN
    )
    assert state.txn(pre.stan).status == "voided"  # type: ignore[union-attr]
    with pytest.raises(TerminalError):
        machine.start(state, Input("completion", amount=100, auth_code=pre.auth_code), NOW)


def test_x919_mac_option() -> None:
    from posgate.crypto import x9_19_mac

    state, host = signed_on()
    state = replace(state, config=replace(state.config, mac_algorithm="x919"))
    state, out = machine.start(state, Input("sale", amount=100, card=swipe()), NOW)
    assert isinstance(out, Send) and host.keys is not None
    mak = host.keys.mak * 2
    assert out.body[-8:] == x9_19_mac(mak, out.body[:-8])
    reply = CODEC.encode(
        CODEC.decode(host.reply(out.message, mac=False)).with_fields({}), mac=lambda mab: x9_19_mac(mak, mab)
    )
    state, done = machine.on_reply(state, reply, NOW)
    assert isinstance(done, Done) and done.result.approved
