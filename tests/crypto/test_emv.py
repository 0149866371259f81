"""ARQC / ARPC / key derivation checked against pyemv, an independent implementation, with the
demo chip card's issuer master keys (docs/demo-data.md)."""

from __future__ import annotations

import pytest

# pyemv reaches TripleDES through cryptography's deprecated path: its warning is not ours.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
pyemv = pytest.importorskip("pyemv")
from pyemv import ac as pac  # noqa: E402
from pyemv import kd  # noqa: E402

from posgate.crypto import CryptoError  # noqa: E402
from posgate.crypto.emv import (  # noqa: E402
    arc_of,
    arpc_method1,
    cdol1_data,
    derive_card_key,
    derive_session_key,
    generate_ac,
    verify_ac,
)

PAN, PSN = "6225880000000000010", "01"
IMK_AC = bytes.fromhex("9E15204313F7318ACB79B90BD986AD29")
TAGS = {
    "9F02": bytes.fromhex("000000012345"),
    "9F03": bytes(6),
    "9F1A": bytes.fromhex("0156"),
    "95": bytes(5),
    "5F2A": bytes.fromhex("0156"),
    "9A": bytes.fromhex("261203"),
    "9C": b"\x00",
    "9F37": bytes.fromhex("1A2B3C4D"),
    "82": bytes.fromhex("7C00"),
    "9F36": bytes.fromhex("002A"),
    "9F10": bytes.fromhex("07010103A0A802010A010000000000"),
}


@pytest.mark.parametrize("pan,psn", [(PAN, PSN), ("4761730000000011", "00"), ("62258800000001", "7")])
def test_card_key_matches_pyemv_option_a(pan: str, psn: str) -> None:
    assert derive_card_key(IMK_AC, pan, psn) == kd.derive_icc_mk_a(IMK_AC, pan, psn.zfill(2))


@pytest.mark.parametrize("atc", [0, 1, 0x2A, 0xFFFF])
def test_session_key_matches_pyemv_common_sk(atc: int) -> None:
    mk = derive_card_key(IMK_AC, PAN, PSN)
    assert derive_session_key(mk, atc) == kd.derive_common_sk(mk, atc.to_bytes(2, "big") + bytes(6))


def test_arqc_and_arpc_match_pyemv() -> None:
    sk = derive_session_key(derive_card_key(IMK_AC, PAN, PSN), 0x2A)
    data = cdol1_data(TAGS)
    assert data.endswith(bytes.fromhex("03A0A802")) and len(data) == 33 + 4
    arqc = generate_ac(sk, data)
    assert arqc == pac.generate_ac(sk, data, pac.PaddingType.EMV)
    assert verify_ac(sk, data, arqc)
    assert not verify_ac(sk, data, bytes([arqc[0] ^ 1]) + arqc[1:])
    assert arpc_method1(sk, arqc, arc_of("00")) == pac.generate_arpc_1(sk, arqc, b"00")
    assert arpc_method1(sk, arqc, arc_of("51")) != arpc_method1(sk, arqc, arc_of("00"))


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(CryptoError):
        derive_card_key(IMK_AC[:8], PAN, PSN)
    with pytest.raises(CryptoError):
        derive_session_key(IMK_AC, 0x10000)
    with pytest.raises(CryptoError):
        cdol1_data({k: v for k, v in TAGS.items() if k != "9F37"})
