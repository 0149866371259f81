"""``posgate terminal --chip-fails``: the simulated chip read fails, the card is swiped and the
sale goes up as a fallback (22 = 02x, 60.5 = 2; docs/decisions.md C4), against the host
pipeline behind a TCP server. A plain swipe of the chip card is declined 45."""

from __future__ import annotations

from pathlib import Path

from .hostd import HostThread
from .test_cli import OK, cli

CHIP = "6225880000000000010"


def test_chip_fails_falls_back_to_the_stripe_and_is_approved(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with HostThread() as host:
        rc, r = cli(state, host.port, "signon", "--json")
        assert rc == 0 and r["approved"], r
        rc, r = cli(state, host.port, "sale", "8.00", "--card", CHIP, "--pin", "123456", "--json")
        assert rc == 1 and r["response_code"] == "45" and "插卡" in r["action"], r
        rc, r = cli(state, host.port, "--chip-fails", "sale", "8.00", "--card", CHIP, "--entry", "insert",
                    "--pin", "123456", "--json")  # fmt: skip
        assert rc == 0 and r["approved"], r
        rc, r = cli(state, host.port, "sale", "1.00", "--card", OK, "--pin", "123456", "--json")
        assert rc == 0 and r["approved"], r  # a magstripe demo card swipes as before
        # --chip-fails is about a chip read: refused with any other entry, nothing sent.
        rc, out = cli(state, host.port, "--chip-fails", "sale", "1.00", "--card", OK, "--pin", "123456")
        assert rc == 2
