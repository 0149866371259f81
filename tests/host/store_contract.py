"""The HostStore / IssuerStore contract as reusable test functions.

Every ``check_*`` function takes a *factory*: a zero-argument callable returning a fresh,
empty store provisioned with :func:`provision` applied (or able to take it). Run them against
any implementation:

    from tests.host.store_contract import CHECKS   # or: from host.store_contract import CHECKS

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_contract(check, sql_store_factory):
        check(sql_store_factory)

The factory's store must already contain what :func:`provision` describes (merchant
``898100012340001`` with terminal ``10000001``; card ``6212142000000000012``); the memory
store gets it from :func:`memory_factory`. All writes happen in one unit of work: a store that
needs a transaction should open it in the factory and keep it open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from posgate.host.memory import MemoryStore
from posgate.host.ports import (
    DifferenceRecord,
    RiskRule,
    SettlementRecord,
    SignatureRecord,
    SignOnEntry,
    TxnRecord,
)

Factory = Callable[[], Any]
T0 = datetime(2024, 5, 6, 2, 0, tzinfo=UTC)
MID, TID, PAN = "898100012340001", "10000001", "6212142000000000012"
TMK = bytes.fromhex("159D86C7C1F779EA29F77A6858E0DA2A")


def provision(store: MemoryStore) -> MemoryStore:
    store.add_merchant(MID, "演示便利店", "Demo Mart", "5411", 60)
    store.add_terminal(TID, MID, TMK, "DEMO0001", at=T0)
    store.add_card(PAN, "3012", 10_000_000)
    return store


def memory_factory() -> MemoryStore:
    return provision(MemoryStore())


def txn(store: Any, **kw: Any) -> TxnRecord:
    values: dict[str, Any] = dict(
        id=None, created_at=T0, day="2024-05-06", terminal_id=TID, merchant_id=MID, batch_no="000001",
        stan="000001", mti="0200", operation="sale", processing_code="000000", amount=1_000, currency="156",
        pan_hash=store.pan_hash(PAN), pan_masked="621214*********0012", pan_enc=store.encrypt_pan(PAN),
        card_organisation="CUP", entry_mode="021", response_code="00", auth_code="000001", rrn="000000000001",
        status="approved", original_id=None, refunded_amount=0, request_digest="d" * 64, reply=b"\x60reply",
        trace=[["Decode", "PREPARED", "sale"]],
    )  # fmt: skip
    values.update(kw)
    return TxnRecord(**values)


def check_terminal_and_merchant(factory: Factory) -> None:
    s = factory()
    t = s.terminal(TID)
    assert t is not None and t.merchant_id == MID and t.tmk == TMK and t.batch_no == "000001"
    assert s.terminal("99999999") is None
    s.update_terminal(TID, pik=b"\x01" * 16, mak=b"\x02" * 8, tdk=None, key_scheme="003", signed_on_day="2024-05-06",
                      signed_off=False, operator="01", mac_failures=0, resign_requested=False, resign_reason=None,
                      last_sign_on_at=T0)  # fmt: skip
    t = s.terminal(TID)
    assert t.pik == b"\x01" * 16 and t.mak == b"\x02" * 8 and t.key_scheme == "003"
    assert t.signed_on_day == "2024-05-06" and t.operator == "01"
    s.update_terminal(TID, last_status_upload={"raw": "00"}, batch_no="000002", pending_serial="X1")
    t = s.terminal(TID)
    assert t.batch_no == "000002" and t.pending_serial == "X1" and t.last_status_upload == {"raw": "00"}
    assert t.dialect == "cup"  # the baseline until a profile is assigned
    s.update_terminal(TID, dialect="gz-bill")
    assert s.terminal(TID).dialect == "gz-bill"
    m = s.merchant(MID)
    assert m is not None and m.status == "active"
    s.update_merchant(MID, status="suspended", suspended_reason="why", suspended_at=T0, suspended_by="system:D6")
    m = s.merchant(MID)
    assert m.status == "suspended" and m.suspended_reason == "why"


def check_sign_on_register(factory: Factory) -> None:
    s = factory()
    assert s.merchant_last_sign_on_day(MID) is None

    def entry(day: str, kind: str) -> SignOnEntry:
        return SignOnEntry(T0, day, TID if kind != "reinstated" else "", MID, kind, "daily", "01", "DEMO0001", "004",
                           "000001", "000001", "00")  # fmt: skip

    s.record_sign_on(entry("2024-05-03", "sign_on"))
    s.record_sign_on(entry("2024-05-04", "refused"))
    s.record_sign_on(entry("2024-05-05", "sign_off"))
    assert s.merchant_last_sign_on_day(MID) == "2024-05-03"
    s.record_sign_on(entry("2024-05-06", "reinstated"))
    assert s.merchant_last_sign_on_day(MID) == "2024-05-06"


def check_transactions(factory: Factory) -> None:
    s = factory()
    a = s.insert_transaction(txn(s))
    b = s.insert_transaction(txn(s, stan="000002", rrn="000000000002"))
    r = s.insert_transaction(txn(s, mti="0400", operation="reversal", rrn=None, original_id=a))
    assert len({a, b, r}) == 3
    got = s.transaction(a)
    assert got is not None and got.id == a and got.trace == [["Decode", "PREPARED", "sale"]]
    assert s.decrypt_pan(got.pan_enc) == PAN
    assert s.find_message(TID, "000001", "000001", "0200").id == a
    assert s.find_message(TID, "000001", "000001", "0210") is None
    assert {x.id for x in s.find_by_stan(TID, "000001", "000001")} == {a, r}
    assert [x.id for x in s.find_by_rrn("000000000002")] == [b]
    assert [x.id for x in s.children(a)] == [r]
    assert {x.id for x in s.batch_transactions(TID, "000001")} == {a, b, r}
    s.update_transaction(a, status="reversed", refunded_amount=5, signed=True, settlement_id=None)
    got = s.transaction(a)
    assert got.status == "reversed" and got.refunded_amount == 5 and got.signed
    try:
        s.insert_transaction(txn(s))
    except Exception:  # noqa: BLE001 - any integrity error
        pass
    else:
        raise AssertionError("TID + batch + STAN + MTI must be unique")


def check_batches_and_settlements(factory: Factory) -> None:
    s = factory()
    s.open_batch(TID, "000002", T0)
    s.close_batch(TID, "000001", T0)
    rec = SettlementRecord(None, T0, "2024-05-06", TID, MID, "000001", "000009", {"domestic": {}}, {"domestic": {}},
                           "1", "2", 0, None, "unbalanced")  # fmt: skip
    sid = s.insert_settlement(rec)
    latest = s.latest_settlement(TID, "000001")
    assert latest is not None and latest.id == sid and latest.foreign_result == "2"
    s.update_settlement(sid, uploaded=3, upload_end="202", status="reconciled")
    latest = s.latest_settlement(TID, "000001")
    assert latest.uploaded == 3 and latest.upload_end == "202" and latest.status == "reconciled"
    assert s.latest_settlement(TID, "000002") is None
    a = s.insert_transaction(txn(s))
    s.update_transaction(a, settlement_id=sid)
    assert s.transaction(a).settlement_id == sid
    diff = DifferenceRecord(sid, TID, MID, "000001", "000003", "missing_on_host", 100, None, None, None)
    s.insert_difference(diff)
    assert list(s.settlement_differences(sid)) == [diff]
    assert list(s.settlement_differences(sid + 1000)) == []
    s.insert_signature(SignatureRecord(a, T0, "terminal", b"jbig", None, None, None, b"\xff\x00\x00"))


def check_identifiers(factory: Factory) -> None:
    s = factory()
    rrns = {s.next_rrn(T0) for _ in range(50)}
    codes = {s.next_auth_code() for _ in range(50)}
    assert len(rrns) == 50 and all(len(x) == 12 and x.isdigit() for x in rrns)
    assert len(codes) == 50 and all(len(x) == 6 and x.isdigit() for x in codes)


def check_activity(factory: Factory) -> None:
    s = factory()
    h = s.pan_hash(PAN)
    s.insert_transaction(txn(s, stan="000001", amount=100, created_at=T0 - timedelta(minutes=30)))
    s.insert_transaction(txn(s, stan="000002", amount=200, created_at=T0 - timedelta(minutes=5)))
    s.insert_transaction(txn(s, stan="000003", amount=400, response_code="51", status="declined"))
    s.insert_transaction(txn(s, stan="000004", amount=800, status="reversed"))
    s.insert_transaction(txn(s, stan="000005", amount=1600, operation="refund"))
    s.insert_transaction(txn(s, stan="000006", amount=3200, status="voided"))
    assert s.card_activity(h, T0 - timedelta(minutes=10)) == (2, 3400)
    assert s.card_activity(h, T0 - timedelta(hours=1)) == (3, 3500)
    assert s.merchant_activity(MID, "2024-05-06") == 3500
    assert s.merchant_activity(MID, "2024-05-07") == 0


def check_risk_and_audit(factory: Factory) -> None:
    s = factory()
    rules = s.risk_rules()
    assert all(isinstance(r, RiskRule) for r in rules)
    s.record_risk_hit(1, T0, TID, MID, "621214*********0012", 100, "card_velocity: 3 in 10 min")
    s.audit(T0, "host", "duplicate_stan", "terminal", TID, MID, detail="x")
    assert s.setting("nope", "dflt") == "dflt"


def check_card_protection(factory: Factory) -> None:
    s = factory()
    h = s.pan_hash(PAN)
    assert h == s.pan_hash(PAN) and PAN not in h and h != s.pan_hash("6217000000000000020")
    blob = s.encrypt_pan(PAN)
    assert PAN.encode() not in blob and s.decrypt_pan(blob) == PAN


def check_issuer_store(factory: Factory) -> None:
    s = factory()
    h = s.pan_hash(PAN)
    c = s.card(h)
    assert c is not None and c.balance == 10_000_000 and c.held == 0 and c.organisation == "CUP"
    assert c.pin_verifier == s.pin_verifier(PAN, "123456") != s.pin_verifier(PAN, "654321")
    s.update_card(h, balance=1, held=2, pin_tries=1, pin_tries_day="2024-05-06")
    c = s.card(h)
    assert (c.balance, c.held, c.pin_tries, c.pin_tries_day) == (1, 2, 1, "2024-05-06")
    assert s.card(s.pan_hash("6217000000000000020")) is None


CHECKS = [
    check_terminal_and_merchant,
    check_sign_on_register,
    check_transactions,
    check_batches_and_settlements,
    check_identifiers,
    check_activity,
    check_risk_and_audit,
    check_card_protection,
    check_issuer_store,
]
