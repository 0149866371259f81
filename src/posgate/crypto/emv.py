"""EMV application cryptograms (ARQC / TC / ARPC) for CUP chip (PBOC) cards — sans-IO.

Theory of operation (docs/decisions.md C1)
------------------------------------------
* Card master key: EMV Book 2 A1.4.1 option A. ``Y`` = the rightmost 16 digits of PAN ‖ PAN
  sequence number (left-padded with zeros when shorter), packed BCD; ``MK = 3DES(IMK, Y) ‖
  3DES(IMK, Y ⊕ FF…FF)`` with odd parity.
* Session key: EMV Book 2 A1.3.1 common session key derivation with ``R = ATC ‖ 00…00``:
  ``SK = 3DES(MK, ATC ‖ F0 ‖ 00…) ‖ 3DES(MK, ATC ‖ 0F ‖ 00…)`` with odd parity.
* ARQC / TC: ISO 9797-1 MAC algorithm 3 (the X9.19 retail MAC) under the session key over the
  card's CDOL data (:func:`cdol1_data`), padding method 2 (``80`` then zeros).
* ARPC method 1 (Book 2 8.2.1): ``3DES(SK, ARQC ⊕ (ARC ‖ 00 00 00 00 00 00))``; tag 91 of the
  reply's field 55 = ARPC ‖ ARC, ARC being field 39 in ASCII (``00`` → ``3030``).

Checked against pyemv (an independent implementation) in tests/crypto/test_emv.py. Nothing here
logs or keeps a key; comparisons of cryptograms are constant-time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from posgate.crypto.errors import CryptoError
from posgate.crypto.keys import set_odd_parity
from posgate.crypto.mac import x9_19_mac
from posgate.crypto.tdes import des_encrypt

__all__ = [
    "CDOL1_TAGS",
    "arc_of",
    "arpc_method1",
    "cdol1_data",
    "cvr_of",
    "derive_card_key",
    "derive_session_key",
    "generate_ac",
    "verify_ac",
]

# The data the card signs for the first GENERATE AC (docs/decisions.md C1), in this order, then
# the card verification results (CVR) taken from the issuer application data 9F10.
CDOL1_TAGS: tuple[tuple[str, int], ...] = (
    ("9F02", 6), ("9F03", 6), ("9F1A", 2), ("95", 5), ("5F2A", 2), ("9A", 3), ("9C", 1),
    ("9F37", 4), ("82", 2), ("9F36", 2),
)  # fmt: skip


def _need_key(key: bytes, what: str) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise CryptoError(f"{what} must be a double-length (16-byte) key")


def derive_card_key(imk: bytes, pan: str, psn: str = "00") -> bytes:
    """The card's master key from the issuer master key (EMV option A)."""
    _need_key(imk, "the issuer master key")
    if not pan.isdigit() or not psn.isdigit() or len(psn) > 2:
        raise CryptoError("the PAN and the PAN sequence number must be digits (PSN: 1 or 2)")
    y = bytes.fromhex((pan + psn.zfill(2))[-16:].zfill(16))
    left = des_encrypt(bytes(imk), y)
    right = des_encrypt(bytes(imk), bytes(b ^ 0xFF for b in y))
    return set_odd_parity(left + right)


def derive_session_key(card_key: bytes, atc: int) -> bytes:
    """The session key for one ATC (EMV common session key derivation)."""
    _need_key(card_key, "the card key")
    if not 0 <= atc <= 0xFFFF:
        raise CryptoError("the ATC is two bytes")
    a = atc.to_bytes(2, "big")
    return set_odd_parity(des_encrypt(bytes(card_key), a + b"\xf0" + bytes(5) + a + b"\x0f" + bytes(5)))


def cvr_of(iad: bytes) -> bytes:
    """The CVR in PBOC issuer application data (9F10): length, DKI, CVN, then 4 CVR bytes."""
    if len(iad) < 7:
        raise CryptoError("the issuer application data (9F10) is too short to hold a CVR")
    return bytes(iad[3:7])


def cdol1_data(tags: Mapping[str, bytes]) -> bytes:
    """The bytes the card MACs: :data:`CDOL1_TAGS` values (each exactly its length), then the CVR."""
    out = bytearray()
    for tag, n in CDOL1_TAGS:
        v = tags.get(tag)
        if v is None or len(v) != n:
            raise CryptoError(f"tag {tag} missing or not {n} bytes")
        out += v
    iad = tags.get("9F10")
    if iad is None:
        raise CryptoError("tag 9F10 missing")
    return bytes(out + cvr_of(iad))


def generate_ac(session_key: bytes, data: bytes) -> bytes:
    """ARQC / TC / AAC: ISO 9797-1 MAC algorithm 3, padding method 2."""
    _need_key(session_key, "the session key")
    return x9_19_mac(bytes(session_key), data, padding=2)


def verify_ac(session_key: bytes, data: bytes, ac: bytes) -> bool:
    return hmac.compare_digest(generate_ac(session_key, data), bytes(ac))


def arc_of(response_code: str) -> bytes:
    """The authorisation response code (8A) for field 39: its two ASCII characters."""
    if len(response_code) != 2:
        raise CryptoError("the response code is two characters")
    return response_code.encode("ascii")


def arpc_method1(session_key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1: 3DES(SK, ARQC ⊕ (ARC ‖ 000000000000))."""
    _need_key(session_key, "the session key")
    if len(arqc) != 8 or len(arc) != 2:
        raise CryptoError("ARPC method 1 takes an 8-byte ARQC and a 2-byte ARC")
    block = bytes(a ^ b for a, b in zip(arqc, bytes(arc) + bytes(6), strict=True))
    return des_encrypt(bytes(session_key), block)
