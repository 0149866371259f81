"""Simulated card reader for the CLI, the load generator and tests: a PAN becomes what a
real reader would hand over — track 2 (docs/demo-data.md: ``PAN=YYMM2010000000000``), the card
organisation from the BIN (62… CUP, 4… VIS...) and, for a chip (insert) or contactless (tap)
read, a plausible field 55 (the ARQC's tags, 3.6).

Randomness (the unpredictable number 9F37, the cryptogram 9F26) is passed in as
``randbytes`` so callers decide (``os.urandom`` in the CLI, a seeded source in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from posgate.dialect.qr import check_code
from posgate.iso8583 import TLV
from posgate.terminal.operations.base import Card, organisation_of

# docs/demo-data.md: PAN → expiry (YYMM)
DEMO_CARDS: dict[str, str] = {
    "6212142000000000012": "3012",
    "6217000000000000020": "3012",
    "6217000000000000038": "2001",
    "6217000000000000046": "3012",
    "6217000000000000053": "3012",
    "6217000000000000061": "3012",
    "6217000000000000079": "3012",
    "6225880000000000010": "3012",
    "4761730000000011": "3012",
}
DEFAULT_EXPIRY = "3012"
ENTRIES = ("swipe", "insert", "tap", "manual", "fallback")


def track2(pan: str, expiry: str | None = None) -> str:
    return f"{pan}={expiry or DEMO_CARDS.get(pan, DEFAULT_EXPIRY)}2010000000000"


def icc_data(amount: int, when: datetime, randbytes: Callable[[int], bytes], *, pin: bool, tap: bool) -> TLV:
    """The tags of a CUP ARQC request (spec 2, field 55): 9F26 9F27 9F10 9F37 9F36 95 9A 9C
    9F02 5F2A 82 9F1A 9F03 9F33 9F34 9F35 9F1E 84 9F09 9F41."""
    atc = int.from_bytes(randbytes(2), "big") % 0xFFFF + 1
    return TLV(
        [
            ("9F26", randbytes(8)),
            ("9F27", "80"),
            ("9F10", "07010103A0A802010A010000000000"),
            ("9F37", randbytes(4)),
            ("9F36", f"{atc:04X}"),
            ("95", "0000000000" if not tap else "0000000800"),
            ("9A", when.strftime("%y%m%d")),
            ("9C", "00"),
            ("9F02", f"{amount:012d}"),
            ("5F2A", "0156"),
            ("82", "7C00"),
            ("9F1A", "0156"),
            ("9F03", "000000000000"),
            ("9F33", "E0E1C8"),
            ("9F34", "420300" if pin else "1F0302"),
            ("9F35", "22"),
            ("9F1E", b"POSGATE1"),
            ("84", "A000000333010101"),
            ("9F09", "0020"),
            ("9F41", f"{atc:08d}"),
        ]
    )


def read_card(
    pan: str,
    entry: str = "swipe",
    *,
    pin: str = "",
    amount: int = 0,
    when: datetime | None = None,
    randbytes: Callable[[int], bytes] | None = None,
    expiry: str | None = None,
) -> Card:
    """What the reader and PIN pad give for ``pan`` read with ``entry``."""
    if entry not in ENTRIES:
        raise ValueError(f"entry must be one of {', '.join(ENTRIES)}")
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise ValueError("the card number must be 12 to 19 digits")
    exp = expiry or DEMO_CARDS.get(pan, DEFAULT_EXPIRY)
    org = organisation_of(pan)  # the reader's card table: 62… CUP, 4… VIS...
    if entry == "manual":
        return Card(pan=pan, entry="manual", expiry=exp, pin=pin, organisation=org)
    t2 = track2(pan, exp)
    if entry in ("swipe", "fallback"):
        return Card(pan=pan, entry=entry, track2=t2, pin=pin, organisation=org)
    if randbytes is None or when is None:
        raise ValueError("an IC read needs randbytes and the time")
    icc = icc_data(amount, when, randbytes, pin=bool(pin), tap=entry == "tap")
    return Card(pan=pan, entry=entry, track2=t2, expiry=exp, seq="001", icc=icc, pin=pin, organisation=org)


def read_qr(code: str) -> Card:
    """What the scanner gives for a customer's payment code (scan-to-pay, docs/decisions.md Q1):
    the code stands where the PAN stands; the organisation is CUP (the acquirer settles every
    wallet's QR payments in the domestic totals, Q4). Raises ValueError for a malformed code."""
    return Card(pan=check_code(code), entry="qr", organisation="CUP")
