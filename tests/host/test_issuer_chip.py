"""The built-in issuer checks a chip card's ARQC and answers with an ARPC (issue 14).

The card side here is pyemv (an independent EMV implementation), not posgate's simulator, so
the host's cryptography is checked against someone else's."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
pyemv = pytest.importorskip("pyemv")
from pyemv import ac as pac  # noqa: E402
from pyemv import kd  # noqa: E402

from posgate.domain.chip import DEMO_CHIP_CARDS  # noqa: E402
from posgate.host.issuer import BuiltinIssuer  # noqa: E402
from posgate.host.memory import MemoryStore  # noqa: E402
from posgate.host.ports import IssuerRequest  # noqa: E402
from posgate.iso8583 import TLV  # noqa: E402

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
PAN = "6225880000000000010"
P = DEMO_CHIP_CARDS[PAN]


def card_key() -> bytes:
    return kd.derive_icc_mk_a(P.imk_ac, PAN, P.psn)


def issuer(keys: bool = True) -> tuple[MemoryStore, BuiltinIssuer]:
    s = MemoryStore()
    s.add_card(PAN, "3012", 100_000, kind="credit", chip=True, icc_keys=P.keys if keys else None)
    return s, BuiltinIssuer.with_random_zone_key(s, random.Random(1).randbytes)


def field55(atc: int, amount: int, *, tamper: bool = False) -> tuple[bytes, bytes, bytes]:
    """(field 55, ARQC, session key) as the card would make them, with pyemv."""
    cdol = [("9F02", f"{amount:012d}"), ("9F03", "000000000000"), ("9F1A", "0156"), ("95", "0000000000"),
            ("5F2A", "0156"), ("9A", "261203"), ("9C", "00"), ("9F37", "11223344"), ("82", "7C00"),
            ("9F36", f"{atc:04X}")]  # fmt: skip
    iad = "07010103A0A802010A010000000000"
    data = b"".join(bytes.fromhex(v) for _, v in cdol) + bytes.fromhex(iad)[3:7]
    sk = kd.derive_common_sk(card_key(), atc.to_bytes(2, "big") + bytes(6))
    arqc = pac.generate_ac(sk, data, pac.PaddingType.EMV)
    if tamper:
        arqc = bytes([arqc[0] ^ 0x01]) + arqc[1:]
    tlv = TLV([("9F26", arqc), ("9F27", "80"), ("9F10", iad), *cdol])
    return tlv.raw, arqc, sk


def ask(i: BuiltinIssuer, icc: bytes, amount: int = 1_000, kind: str = "debit"):  # type: ignore[no-untyped-def]
    return i.authorize(
        IssuerRequest(kind=kind, pan=PAN, expiry=None, amount=amount, icc=icc, pan_seq="001"), NOW
    )


def test_valid_arqc_is_approved_with_an_arpc_pyemv_agrees_with() -> None:
    s, i = issuer()
    icc, arqc, sk = field55(5, 1_000)
    r = ask(i, icc)
    assert r.response_code == "00" and r.icc is not None
    tag91 = TLV.decode(r.icc)["91"]
    assert tag91 == pac.generate_arpc_1(sk, arqc, b"00") + b"00"
    card = s.card_by_pan(PAN)
    assert card is not None and card.icc_atc == 5 and card.balance == 99_000


def test_a_decline_after_a_good_arqc_still_carries_an_arpc_for_its_own_code() -> None:
    _, i = issuer()
    icc, arqc, sk = field55(5, 200_000)
    r = ask(i, icc, 200_000)
    assert r.response_code == "51"
    assert TLV.decode(r.icc or b"")["91"] == pac.generate_arpc_1(sk, arqc, b"51") + b"51"


def test_tampered_arqc_is_declined_59_without_arpc_and_changes_nothing() -> None:
    s, i = issuer()
    r = ask(i, field55(5, 1_000, tamper=True)[0])
    assert (r.response_code, r.icc) == ("59", None)
    card = s.card_by_pan(PAN)
    assert card is not None and card.balance == 100_000 and card.icc_atc is None


def test_tampered_amount_breaks_the_cryptogram() -> None:
    _, i = issuer()
    icc = field55(5, 1_000)[0].replace(
        bytes.fromhex("9F0206000000001000"), bytes.fromhex("9F0206000000000100")
    )
    assert ask(i, icc, 100).response_code == "59"


def test_field4_other_than_the_signed_amount_is_declined() -> None:
    s, i = issuer()
    r = ask(i, field55(5, 1_000)[0], 100)  # a valid cryptogram for 10.00, field 4 says 1.00
    assert (r.response_code, r.icc) == ("59", None)
    assert s.card_by_pan(PAN).balance == 100_000  # type: ignore[union-attr]


def test_replayed_or_older_atc_is_declined() -> None:
    s, i = issuer()
    first = field55(7, 1_000)[0]
    assert ask(i, first).response_code == "00"
    assert ask(i, first).response_code == "59"  # the same cryptogram again
    assert ask(i, field55(6, 1_000)[0]).response_code == "59"  # an older ATC, validly signed
    assert ask(i, field55(8, 1_000)[0]).response_code == "00"
    assert s.card_by_pan(PAN).balance == 98_000  # type: ignore[union-attr]


def test_unreadable_field55_is_a_format_error() -> None:
    _, i = issuer()
    assert ask(i, b"\x9f\x26\x08\x01").response_code == "30"
    broken = TLV([("9F26", bytes(8)), ("9F36", "0001")]).raw  # no CDOL data
    assert ask(i, broken).response_code == "30"


def test_undo_and_cards_without_keys_are_not_checked() -> None:
    _, i = issuer(keys=False)
    assert ask(i, field55(1, 1_000, tamper=True)[0]).response_code == "00"
    _, i = issuer()
    assert ask(i, field55(1, 1_000, tamper=True)[0], kind="reverse_debit").response_code == "00"


def test_keys_are_sealed_at_rest_and_not_in_repr() -> None:
    s, _ = issuer()
    card = s.card_by_pan(PAN)
    assert card is not None and card.icc_keys_enc is not None
    assert P.imk_ac not in card.icc_keys_enc and P.imk_ac.hex() not in repr(card).lower()
    assert s.icc_master_keys(card.icc_keys_enc) == P.keys


def test_verify_tc_against_a_pyemv_tc() -> None:
    _, i = issuer()
    icc, _, sk = field55(5, 1_000)
    assert ask(i, icc).response_code == "00"
    tags = TLV.decode(icc)
    data = b"".join(v for t, v in tags.items if t not in ("9F26", "9F27", "9F10") and isinstance(v, bytes))
    data += bytes.fromhex("03A0A802")

    def tc_icc(tc: bytes, atc_tags: TLV = tags) -> bytes:
        return TLV([*(((t, tc) if t == "9F26" else (t, b"\x40") if t == "9F27" else (t, v)) for t, v in atc_tags.items),
                    ("8A", b"00")]).raw  # fmt: skip

    good = pac.generate_ac(sk, b"00" + data, pac.PaddingType.EMV)
    assert ask(i, tc_icc(good), 0, kind="verify_tc").response_code == "00"
    assert ask(i, tc_icc(bytes([good[0] ^ 1]) + good[1:]), 0, kind="verify_tc").response_code == "59"
    later = TLV.decode(field55(6, 1_000)[0])  # an ATC the issuer never saw with an ARQC
    assert ask(i, tc_icc(good, later), 0, kind="verify_tc").response_code == "59"
    card = i._store.card(i._store.pan_hash(PAN))  # type: ignore[attr-defined]
    assert card is not None and card.balance == 99_000  # verifying moves nothing
