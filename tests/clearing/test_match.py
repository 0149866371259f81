"""The matcher, one outcome at a time (sans-IO: records and transactions are plain values)."""

from __future__ import annotations

import dataclasses

from posgate.clearing.match import AcquirerTxn, counts, match

from .test_file import rec


def txn(id: int = 1, **kw: object) -> AcquirerTxn:  # noqa: A002
    base: dict[str, object] = dict(id=id, terminal_id="10000001", merchant_id="898100012340001", stan="000101",
                                   rrn="000000000101", amount=12_34, response_code="00", status="approved",
                                   operation="sale", processing_code="000000")  # fmt: skip
    base.update(kw)
    return AcquirerTxn(**base)  # type: ignore[arg-type]


def only(records, txns):
    out = match(records, txns)
    assert len(out) == 1, out
    return out[0]


def test_matched() -> None:
    o = only([rec()], [txn()])
    assert o.outcome == "matched" and o.effect == 0 and not o.is_difference and o.txn.id == 1 and o.index == 0


def test_amount_mismatch_effect_follows_the_side() -> None:
    o = only([rec(amount=15_00)], [txn(amount=12_34)])
    assert o.outcome == "amount_mismatch" and o.effect == 15_00 - 12_34
    refund = only([rec(amount=5_00, processing_code="200000", mti="0220")],
                  [txn(amount=3_00, operation="refund", processing_code="200000")])  # fmt: skip
    assert (
        refund.outcome == "amount_mismatch" and refund.effect == -2_00
    )  # a bigger refund: the merchant gets less


def test_missing_on_our_side() -> None:
    o = only([rec()], [])
    assert o.outcome == "missing_ours" and o.effect == 12_34 and o.txn is None
    void = only([rec(processing_code="200000")], [])
    assert void.outcome == "missing_ours" and void.effect == -12_34


def test_missing_on_their_side() -> None:
    o = only([], [txn()])
    assert o.outcome == "missing_theirs" and o.effect == -12_34 and o.record is None
    refund = only([], [txn(operation="refund", processing_code="200000")])
    assert refund.effect == 12_34
    assert match([], [txn(response_code="51", status="declined")]) == []  # declined on our side: nothing owed


def test_response_mismatch_both_ways() -> None:
    we_reversed = only([rec()], [txn(status="reversed")])
    assert we_reversed.outcome == "response_mismatch" and we_reversed.effect == 12_34
    we_declined = only([rec()], [txn(response_code="51", status="declined")])
    assert we_declined.outcome == "response_mismatch"
    they_declined = only([rec(response_code="51")], [txn()])
    assert they_declined.outcome == "response_mismatch" and they_declined.effect == -12_34
    both_declined = only([rec(response_code="51")], [txn(response_code="51", status="declined")])
    assert both_declined.outcome == "matched" and both_declined.effect == 0


def test_duplicate_in_the_file() -> None:
    out = match([rec(), rec()], [txn()])
    assert [o.outcome for o in out] == ["matched", "duplicate"] and out[1].effect == 0 and out[1].index == 1


def test_no_effect_and_counts() -> None:
    o = only([rec(response_code="05")], [])
    assert o.outcome == "no_effect" and not o.is_difference


def test_key_is_rrn_terminal_and_stan() -> None:
    for change in ({"rrn": "000000000999"}, {"terminal_id": "10000002"}, {"stan": "000999"}):
        out = match([rec()], [txn(**change)])
        assert sorted(o.outcome for o in out) == ["missing_ours", "missing_theirs"], change


def test_a_day() -> None:
    records = [rec(stan=f"{i:06d}", rrn=f"{i:012d}", amount=100 + i) for i in range(1, 6)]
    records.append(records[0])
    ours = [txn(i, stan=f"{i:06d}", rrn=f"{i:012d}", amount=100 + i) for i in range(2, 8)]
    ours[0] = dataclasses.replace(ours[0], amount=1)  # 2: amount mismatch
    ours[1] = dataclasses.replace(ours[1], status="reversed")  # 3: we reversed it
    c = counts(match(records, ours))
    assert c == {"matched": 2, "amount_mismatch": 1, "response_mismatch": 1, "missing_ours": 1, "missing_theirs": 2,
                 "duplicate": 1, "no_effect": 0}  # fmt: skip
