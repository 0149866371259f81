"""The simulated chip card's ATC lives in the terminal's journal and goes up across runs
(issue 14): two ``posgate terminal sale --entry insert`` processes in a row are both approved by
an issuer that declines an ATC it has seen; the counters are sealed (keyed by PAN)."""

from __future__ import annotations

from pathlib import Path

import pytest

from posgate.terminal.journal import Journal

from .hostd import HostThread
from .test_cli import cli

CHIP = "6225880000000000010"


def test_journal_atc_goes_up_across_opens_and_is_sealed(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    assert [j.next_atc(CHIP), j.next_atc(CHIP), j.next_atc("6212142000000000012")] == [1, 2, 1]
    j.close()
    j = Journal.open(tmp_path)
    assert j.next_atc(CHIP) == 3
    j.close()
    for f in tmp_path.iterdir():
        assert CHIP.encode() not in f.read_bytes(), f.name


@pytest.mark.slow
def test_chip_sales_in_separate_runs_are_both_approved(tmp_path: Path) -> None:
    with HostThread() as host:
        state = tmp_path / "state"
        rc, r = cli(state, host.port, "signon", "--json")
        assert rc == 0 and r["approved"], r
        for amount in ("10.00", "11.00"):
            rc, r = cli(state, host.port, "sale", amount, "--card", CHIP, "--entry", "insert", "--pin", "123456",
                        "--json")  # fmt: skip
            assert rc == 0 and r["approved"] and r["response_code"] == "00", r
        card = host.store.card_by_pan(CHIP)
        assert card is not None and card.icc_atc == 2
