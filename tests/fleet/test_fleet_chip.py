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
