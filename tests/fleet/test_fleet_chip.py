"""The fleet's chip sales carry real cryptograms (issue 14): the terminal's card simulator
makes the ARQC, the issuer verifies it, the card checks the ARPC and the TC goes up at
settlement; the card's ATC continues in the terminal's journal from one fleet run to the next."""

from __future__ import annotations

import asyncio
from pathlib import Path

from posgate.fleet.fleet import DEFAULT_MIX, DEMO_CHIP_CARD, Fleet, FleetConfig, parse_mix
from terminal.hostd import HostThread

CHIP = DEMO_CHIP_CARD[0]


def test_default_mix_has_chip_sales() -> None:
    assert parse_mix(DEFAULT_MIX)["chip"] > 0


def test_fleet_chip_sales_are_verified_and_their_tcs_uploaded(tmp_path: Path) -> None:
    with HostThread() as host:
        for run in (1, 2):  # the second run continues the card's ATC from the journal
            cfg = FleetConfig(port=host.port, terminals=1, duration=None, transactions=6, timeout=5,
                              state_dir=tmp_path, mix=parse_mix("chip=1"), ramp=0)  # fmt: skip
            report = asyncio.run(Fleet(cfg).run())
            sales = report["by_operation"]["sale"]
            assert sales["count"] == 6 and sales["approved"] == 6, report
            assert report["settlements"]["count"] == 1 and report["reversals"] == 0
            card = host.store.card_by_pan(CHIP)
            assert card is not None and card.icc_atc == 6 * run
        uploads = [r for r in host.store.settlements.values() if r.uploaded]
        assert uploads and all(s.uploaded >= 6 for s in uploads)  # every TC went up (203), plus the end


def test_provisioned_fleet_cards_are_chip_cards_with_sealed_keys(tmp_path: Path) -> None:
    from sqlalchemy import select, update

    from posgate.fleet.fleet import DEMO_QR_CODES, FLEET_CHIP, fleet_pan, provision
    from posgate.store.database import Database
    from posgate.store.schema import cards

    url, key = f"sqlite:///{tmp_path / 'h.db'}", str(tmp_path / "master.key")
    provision(url, 2, key_file=key)
    db = Database.open(url, key_file=key)
    try:
        with db.engine.begin() as conn:  # as provisioned before chip sales existed
            conn.execute(update(cards).values(chip=False, icc_keys_enc=None))
        provision(url, 2, key_file=key)
        with db.engine.connect() as conn:
            rows = conn.execute(select(cards.c.pan_hash, cards.c.chip, cards.c.icc_keys_enc)).all()
        fleet_cards = {db.keyring.pan_hash(fleet_pan(i)) for i in (1, 2)}
        codes = {db.keyring.pan_hash(code) for code in DEMO_QR_CODES}  # what ``qr`` in the mix pays with
        assert {r[0] for r in rows} == fleet_cards | codes
        for pan_hash, chip, blob in rows:
            if pan_hash in codes:  # a payment code is no chip card: it stays without keys
                assert not chip and blob is None
                continue
            assert chip and blob is not None and FLEET_CHIP.imk_ac not in bytes(blob)
            assert db.keyring.decrypt_key(bytes(blob), b"icc") == FLEET_CHIP.keys
    finally:
        db.close()


def test_default_mixes_have_tap_sales() -> None:
    from posgate.fleet.chaos import CHAOS_MIX

    assert parse_mix(DEFAULT_MIX)["tap"] > 0 and parse_mix(CHAOS_MIX)["tap"] > 0 and parse_mix(CHAOS_MIX)["chip"] > 0


def test_fleet_tap_sales_under_and_over_the_no_cvm_limit_and_the_audit_balances(tmp_path: Path) -> None:
    """``tap``: the demo chip card tapped (qPBOC) with a real ARQC. Under the AID's no-CVM limit
    it goes online without a PIN (22 = 072, no signature to upload); above it with the PIN (071).
    The terminal downloaded the limits at its first sign-on; the host applies them too (docs/decisions.md C2). Voids
    and refunds of tap sales run alongside; the three ledgers agree afterwards."""
    from fleet.test_fleet import memory_ledgers, run_audit
    from posgate.fleet.fleet import TAP_NO_CVM_LIMIT

    with HostThread() as host:
        cfg = FleetConfig(port=host.port, terminals=1, duration=None, transactions=24, timeout=5, state_dir=tmp_path,
                          mix=parse_mix("tap=6,void=1,refund=1"), ramp=0)  # fmt: skip
        fleet = Fleet(cfg)
        before = memory_ledgers(host)[2]
        report = asyncio.run(fleet.run(close=False))
        try:
            taps = [r for r in host.store.txns.values() if r.operation == "sale" and r.entry_mode.startswith("07")]
            free = [r for r in taps if r.entry_mode == "072"]
            with_pin = [r for r in taps if r.entry_mode == "071"]
            assert free and with_pin, [(r.entry_mode, r.amount, r.response_code) for r in taps]
            assert all(r.amount <= TAP_NO_CVM_LIMIT and r.response_code == "00" for r in free)
            assert all(r.amount > TAP_NO_CVM_LIMIT and r.response_code == "00" for r in with_pin)
            assert report["reversals"] == 0 and report["settlements"]["count"] == 1, report
            # 免密免签: a no-PIN tap is logged with no signature owed.
            journal = fleet.terminals[0].journal
            assert journal is not None and fleet.terminals[0].state.ic_loaded  # fetched at the first sign-on
            logged = [t for t, _ in journal.transactions(include_settled=True) if t.entry_mode == "072"]
            assert len(logged) == len(free) and all(t.no_cvm and not t.signature for t in logged)
            result = run_audit(fleet, host, before, [])
        finally:
            asyncio.run(fleet.close())
    assert result.ok, result.as_dict()
