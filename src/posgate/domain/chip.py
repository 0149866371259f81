"""The demo chip card's personalisation (docs/demo-data.md, "Chip keys"): what the built-in
issuer keeps (encrypted) for it and what the terminal's simulated card is personalised from.

A real terminal never holds issuer master keys: the simulated card derives its own card key
from them exactly as a personalisation bureau would, and keeps only that.
"""

from __future__ import annotations

from typing import NamedTuple


class ChipPersonalisation(NamedTuple):
    psn: str  # PAN sequence number, tag 5F34 (two digits)
    imk_ac: bytes  # issuer master key for application cryptograms
    imk_smi: bytes  # ... for secure messaging integrity
    imk_smc: bytes  # ... for secure messaging confidentiality

    @property
    def keys(self) -> bytes:
        """IMK-AC ‖ IMK-SMI ‖ IMK-SMC: the 48 bytes the issuer stores encrypted."""
        return self.imk_ac + self.imk_smi + self.imk_smc


DEMO_CHIP_CARDS: dict[str, ChipPersonalisation] = {
    "6225880000000000010": ChipPersonalisation(
        "01",
        bytes.fromhex("9E15204313F7318ACB79B90BD986AD29"),
        bytes.fromhex("4664942FE615FB02E5D57F292AA2B3B6"),
        bytes.fromhex("CE293B8CC12A977379EF256D76109492"),
    ),
}
