"""--demo provisions exactly docs/demo-data.md, and a second run changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from posgate.crypto.tdes import kcv
from posgate.store import schema as s
from posgate.store.demo import provision_demo


def _snapshot(engine):
    out = {}
    with engine.connect() as conn:
        for table in (s.settings, s.merchants, s.terminals, s.cards, s.batches):
            out[table.name] = sorted(tuple(map(str, r)) for r in conn.execute(select(table)))
    return out


def test_demo_data_and_idempotence(db):
    assert provision_demo(db.engine, db.keyring) > 0
    first = _snapshot(db.engine)
    assert provision_demo(db.engine, db.keyring) == 0
    assert _snapshot(db.engine) == first

    with db.unit_of_work() as store:
        assert store.setting("institution_id") == "00049990"
        assert store.setting("timezone") == "Asia/Shanghai"
        assert store.setting("currency") == "156"
        mart = store.merchant("898100012340001")
        assert mart is not None and (mart.name, mart.name_en, mart.mcc, mart.fee_rate_bp) == ("演示便利店", "Demo Mart", "5411", 60)
        bistro = store.merchant("898100012340002")
        assert bistro is not None and (bistro.mcc, bistro.fee_rate_bp, bistro.status) == ("5812", 38, "active")
        for tid, mid, tmk, serial in (
            ("10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001"),
            ("10000002", "898100012340001", "31313131313131313232323232323232", "DEMO0002"),
            ("20000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003"),
        ):
            t = store.terminal(tid)
            assert t is not None
            assert (t.merchant_id, t.tmk.hex().upper(), t.device_serial, t.batch_no) == (mid, tmk, serial, "000001")
            assert t.status == "active" and t.pik is None and t.signed_on_day is None

    with db.engine.connect() as conn:
        kcvs = dict(conn.execute(select(s.terminals.c.terminal_id, s.terminals.c.tmk_kcv)).all())
        cards = {r.pan_hash: r for r in conn.execute(select(s.cards))}
    assert kcvs["10000001"] == kcv(bytes.fromhex("159D86C7C1F779EA29F77A6858E0DA2A")).hex().upper()
    expected = {
        "6212142000000000012": ("3012", "debit", "CUP", "active", 10_000_000, None, False),
        "6217000000000000020": ("3012", "debit", "CUP", "active", 1_000, None, False),
        "6217000000000000038": ("2001", "debit", "CUP", "active", 500_000, None, False),
        "6217000000000000046": ("3012", "debit", "CUP", "lost", 500_000, None, False),
        "6217000000000000053": ("3012", "debit", "CUP", "stolen", 500_000, None, False),
        "6217000000000000061": ("3012", "debit", "CUP", "restricted", 500_000, None, False),
        "6217000000000000079": ("3012", "debit", "CUP", "active", 10_000_000, 50_000, False),
        "6225880000000000010": ("3012", "credit", "CUP", "active", 5_000_000, None, True),
        "4761730000000011": ("3012", "debit", "VIS", "active", 10_000_000, None, False),
        # scan-to-pay demo payment codes (docs/decisions.md Q3)
        "6288000000000000011": ("3012", "debit", "CUP", "active", 10_000_000, None, False),
        "6288000000000000029": ("3012", "debit", "CUP", "password", 10_000_000, None, False),
        "6288000000000000037": ("3012", "debit", "CUP", "active", 0, None, False),
        "6288000000000000045": ("2001", "debit", "CUP", "active", 10_000_000, None, False),
        "134567890123456789": ("3012", "debit", "CUP", "active", 10_000_000, None, False),
        "281234567890123456": ("3012", "debit", "CUP", "active", 10_000_000, None, False),
    }
    assert len(cards) == len(expected)
    for pan, want in expected.items():
        row = cards[db.keyring.pan_hash(pan)]
        assert (row.expiry, row.kind, row.organisation, row.state, row.balance, row.per_txn_limit, bool(row.chip)) == want
        assert db.keyring.verify_pin(pan, "123456", row.pin_verifier)
        assert db.keyring.decrypt_pan(row.pan_enc) == pan
        assert row.pan_masked == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
