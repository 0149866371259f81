"""Simulated card reader for the CLI, the load generator and tests: a PAN becomes what a
real reader would hand over — track 2 (docs/demo-data.md: ``PAN=YYMM2010000000000``), the card
organisation from the BIN (62… CUP, 4… VIS...) and, for a chip (insert) or contactless (tap)
read, a plausible field 55 (the ARQC's tags, 3.6).

Randomness (the unpredictable number 9F37; the ATC and cryptogram of a card we hold no keys
for) is passed in as ``randbytes`` so callers decide (``os.urandom`` in the CLI, a seeded source
in tests).

A personalised chip card (the demo chip card, :data:`posgate.domain.chip.DEMO_CHIP_CARDS`) is
simulated for real (issue 14): its AC master key is derived from the issuer master key (EMV
option A, as a personalisation bureau would), its ARQC is the EMV MAC over its CDOL1 data under
the session key of its ATC, and the :class:`Card` carries the key so that the card can check the
issuer's ARPC and make its TC (:mod:`posgate.terminal.operations.chip`). The ATC lives in the
card: callers that persist it (the CLI and TUI, in the terminal's journal) pass ``atc``; without
one, a per-process counter per card stands in (fresh hosts in tests, the load generator).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime

from posgate.crypto.emv import cdol1_data, derive_card_key, derive_session_key, generate_ac
from posgate.dialect.qr import check_code
from posgate.domain.chip import DEMO_CHIP_CARDS, ChipPersonalisation
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


_ATC: dict[str, Iterator[int]] = {}  # stand-in ATCs per PAN, for callers that keep none


def chip_key(pan: str) -> tuple[str, bytes] | None:
    """(PAN sequence number, AC master key) of a personalised chip card, else None."""
    p = DEMO_CHIP_CARDS.get(pan)
    return (p.psn, derive_card_key(p.imk_ac, pan, p.psn)) if p else None


def next_atc(pan: str) -> int:
    """The next stand-in ATC of ``pan`` in this process (1, 2, ...)."""
    return next(_ATC.setdefault(pan, itertools.count(1)))


def icc_data(amount: int, when: datetime, randbytes: Callable[[int], bytes], *, pin: bool, tap: bool,
             key: bytes | None = None, atc: int | None = None) -> TLV:  # fmt: skip
    """The tags of a CUP ARQC request (spec 2, field 55): 9F26 9F27 9F10 9F37 9F36 95 9A 9C
    9F02 5F2A 82 9F1A 9F03 9F33 9F34 9F35 9F1E 84 9F09 9F41. With the card's AC master ``key``
    and its ``atc``, 9F26 is the real ARQC; without, random bytes (a card we hold no keys for)."""
    if atc is None:
        atc = int.from_bytes(randbytes(2), "big") % 0xFFFF + 1
    tlv = _icc_tags(amount, when, randbytes, pin=pin, tap=tap, atc=atc)
    if key is None:
        return tlv
    tags = {t: v for t, v in tlv.items if isinstance(v, bytes)}
    arqc = generate_ac(derive_session_key(key, atc), cdol1_data(tags))
    return TLV([(t, arqc if t == "9F26" else v) for t, v in tlv.items])


def _icc_tags(amount: int, when: datetime, randbytes: Callable[[int], bytes], *, pin: bool, tap: bool,
              atc: int) -> TLV:  # fmt: skip
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
    atc: int | None = None,
    chip: ChipPersonalisation | None = None,
) -> Card:
    """What the reader and PIN pad give for ``pan`` read with ``entry``. ``chip``: the card's
    personalisation when it is not a demo card (the fleet's cards); ``atc``: its counter."""
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
    personal = (chip.psn, derive_card_key(chip.imk_ac, pan, chip.psn)) if chip is not None else chip_key(pan)
    if personal is None:
        icc = icc_data(amount, when, randbytes, pin=bool(pin), tap=entry == "tap", atc=atc)
        return Card(pan=pan, entry=entry, track2=t2, expiry=exp, seq="001", icc=icc, pin=pin, organisation=org)
    psn, key = personal
    if atc is None:
        atc = next_atc(pan)
    if not 1 <= atc <= 0xFFFF:
        raise ValueError("the card's transaction counter (ATC) is exhausted")
    icc = icc_data(amount, when, randbytes, pin=bool(pin), tap=entry == "tap", key=key, atc=atc)
    return Card(pan=pan, entry=entry, track2=t2, expiry=exp, seq=psn.zfill(3), icc=icc, pin=pin,
                organisation=org, chip_key=key)  # fmt: skip


def read_qr(code: str) -> Card:
    """What the scanner gives for a customer's payment code (scan-to-pay, docs/decisions.md Q1):
    the code stands where the PAN stands; the organisation is CUP (the acquirer settles every
    wallet's QR payments in the domestic totals, Q4). Raises ValueError for a malformed code."""
    return Card(pan=check_code(code), entry="qr", organisation="CUP")
