"""Every vector of tests/data/crypto-vectors.json is a test case.

The vectors are dispatched on their ``algorithm`` string. A vector whose algorithm has no
checker fails (it is never skipped), so a new vector in the file cannot slip by untested.
The file lives in the repository (a fresh clone has everything it needs) and its digest is
pinned: a vector changed by accident fails here, one changed on purpose changes the digest too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posgate.crypto import (
    decrypt_pin,
    decrypt_pin_block,
    decrypt_track,
    des_decrypt,
    des_encrypt,
    encrypt_pin,
    encrypt_pin_block,
    encrypt_track,
    iso9797_alg1_tdes_mac,
    kcv,
    luhn_check_digit,
    luhn_valid,
    pin_block_format0,
    pin_block_format1,
    pin_block_format2,
    pin_block_format3,
    pin_block_format4_decipher,
    pin_block_format4_encipher,
    pin_from_format0,
    unwrap_working_keys,
    wrap_working_keys,
    x9_9_mac,
    x9_19_mac,
)
from posgate.crypto.dukpt import (
    aes_dukpt_initial_key,
    aes_dukpt_transaction_key,
    dukpt_ipek,
    dukpt_mac_request_key,
    dukpt_pin_key,
    dukpt_transaction_key,
)
from posgate.crypto.keys import WorkingKeys
from posgate.crypto.mac import cup_ecb_mac, cup_ecb_mac_trace, cup_mac_xor
from posgate.crypto.pinblock import (
    pan_field_format0,
    pan_field_format4,
    pin_field_format4,
    pin_from_format1,
    pin_from_format2,
    pin_from_format3,
)
from posgate.crypto.track import track_data_block

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "tests" / "data" / "crypto-vectors.json"
# sha256 of the 74 published vectors as imported; update it only with a deliberate change.
LOCAL_SHA256 = "363969fd880b6d56f4b0d4c787eab9e6a1f447fedf77b5bb57ce8a419a975647"
VECTORS: list[dict[str, Any]] = json.loads(LOCAL.read_text(encoding="utf-8"))

H = bytes.fromhex


def hx(b: bytes) -> str:
    return b.hex().upper()


def test_vector_file_is_the_pinned_one() -> None:
    assert hashlib.sha256(LOCAL.read_bytes()).hexdigest() == LOCAL_SHA256


def test_vector_file_shape() -> None:
    assert len(VECTORS) == 74
    for v in VECTORS:
        assert {"algorithm", "inputs", "expected", "source", "verified_by"} <= v.keys()


# --- checkers, one per algorithm ------------------------------------------------------------


def _ecb(i: dict[str, Any], e: str) -> None:
    assert i["mode"] == "ECB"
    key, pt = H(i["key"]), H(i["plaintext"])
    assert hx(des_encrypt(key, pt)) == e
    assert des_decrypt(key, H(e)) == pt


def _kcv(i: dict[str, Any], e: str) -> None:
    assert hx(kcv(H(i["key"]), i["n_bytes"])) == e


def _signon_unwrap(i: dict[str, Any], e: dict[str, str]) -> None:
    assert i["layout"] == "PIK_enc(16) PIK_chk(4) MAK_enc(8) 00x8 MAK_chk(4)"
    f62 = H(i["field62_hex_without_LLL"])
    keys = unwrap_working_keys(H(i["tmk"]), "003", f62)
    assert hx(keys.pik) == e["pik_clear"]
    assert hx(keys.mak) == e["mak_clear"]
    assert keys.tdk is None
    assert hx(kcv(keys.pik)) == e["pik_check"]
    assert hx(kcv(keys.mak)) == e["mak_check"]
    assert wrap_working_keys(H(i["tmk"]), "003", keys) == f62


def _signon_wrap(i: dict[str, Any], e: dict[str, str]) -> None:
    tmk = H(i["tmk"])
    keys = WorkingKeys(pik=H(i["pik_clear"]), mak=H(i["mak_clear"]), tdk=H(i["tdk_clear"]))
    f62 = wrap_working_keys(tmk, "004", keys)
    assert hx(f62) == e["field62_60_bytes"]
    assert hx(des_encrypt(tmk, keys.pik)) == e["pik_encrypted"]
    assert hx(des_encrypt(tmk, keys.mak)) == e["mak_encrypted"]
    assert keys.tdk is not None
    assert hx(des_encrypt(tmk, keys.tdk)) == e["tdk_encrypted"]
    assert keys.check_values() == {
        "PIK": H(e["pik_check"]),
        "MAK": H(e["mak_check"]),
        "TDK": H(e["tdk_check"]),
    }
    assert unwrap_working_keys(tmk, "004", f62) == keys


def _pin0(i: dict[str, Any], e: str) -> None:
    assert hx(pan_field_format0(i["pan"])) == i["pan_field"]
    assert hx(pin_block_format0(i["pin"], i["pan"])) == e
    assert pin_from_format0(H(e), i["pan"]) == i["pin"]


def _pin0_encrypted(i: dict[str, Any], e: str) -> None:
    pik = H(i["pik"])
    assert hx(pin_block_format0(i["pin"], i["pan"])) == i["clear_pin_block"]
    assert hx(encrypt_pin_block(pik, H(i["clear_pin_block"]))) == e
    assert hx(encrypt_pin(pik, i["pin"], i["pan"])) == e
    assert hx(decrypt_pin_block(pik, H(e))) == i["clear_pin_block"]
    assert decrypt_pin(pik, H(e), i["pan"]) == i["pin"]


def _pin1(i: dict[str, Any], e: str) -> None:
    assert hx(pin_block_format1(i["pin"], H(i["fill_digits"]))) == e
    assert pin_from_format1(H(e)) == i["pin"]


def _pin2(i: dict[str, Any], e: str) -> None:
    assert hx(pin_block_format2(i["pin"])) == e
    assert pin_from_format2(H(e)) == i["pin"]


def _pin3(i: dict[str, Any], e: str) -> None:
    assert hx(pin_block_format3(i["pin"], i["pan"], H(i["fill_digits"]))) == e
    assert pin_from_format3(H(e), i["pan"]) == i["pin"]


def _pin4(i: dict[str, Any], e: str) -> None:
    key, rnd = H(i["aes_key"]), H(i["random_fill_8_bytes"])
    assert hx(pin_field_format4(i["pin"], rnd)) == i["plain_pin_field"]
    assert hx(pan_field_format4(i["pan"])) == i["plain_pan_field"]
    assert hx(pin_block_format4_encipher(key, i["pin"], i["pan"], rnd)) == e
    assert pin_block_format4_decipher(key, H(e), i["pan"]) == i["pin"]


def _data(i: dict[str, Any]) -> bytes:
    if "data_hex" in i:
        data = H(i["data_hex"])
        if "data_ascii" in i:
            assert data == i["data_ascii"].encode("ascii")
        return data
    return bytes(i["data_ascii"].encode("ascii"))


def _mac(fn: Callable[[bytes, bytes, int], bytes], padding: int) -> Callable[[dict[str, Any], str], None]:
    def check(i: dict[str, Any], e: str) -> None:
        assert hx(fn(H(i["key"]), _data(i), padding)) == e

    return check


def _cup_mac(i: dict[str, Any], e: dict[str, Any]) -> None:
    mak, mab = H(i["mak"]), H(i["mab_hex"])
    mac = cup_ecb_mac(mak, mab)
    assert mac == e["mac_ascii"].encode("ascii")
    assert hx(mac) == e["mac_field_hex"]
    t = cup_ecb_mac_trace(mak, mab)
    steps = e["intermediate"]
    assert hx(t.xor_result) == steps["xor_result"]
    assert t.result_block_ascii == steps["result_block_ascii"].encode("ascii")
    assert hx(t.enc_block1) == steps["enc_block1"]
    assert hx(t.temp_block) == steps["temp_block"]
    assert hx(t.enc_block2) == steps["enc_block2"]
    assert t.mac == mac


def _cup_mac_real(i: dict[str, Any], e: dict[str, str]) -> None:
    msg = H(i["full_message_hex"])
    prefix, tpdu, header = H(i["length_prefix"]), H(i["tpdu"]), H(i["header"])
    assert int.from_bytes(prefix, "big") == len(msg) - 2
    assert msg[:2] == prefix and msg[2:7] == tpdu and msg[7:13] == header
    mab = msg[13:-8]
    assert hx(mab) == i["mab_hex"]
    assert hx(msg[-8:]) == e["field64_hex"]
    mac = cup_ecb_mac(H(i["tak"]), mab)
    assert mac == e["mac_ascii"].encode("ascii") == msg[-8:]
    # The MAB range is exact: starting anywhere else does not reproduce the MAC.
    for start in (0, 2, 7, 11, 12, 14):
        assert cup_ecb_mac(H(i["tak"]), msg[start:-8]) != mac


def _cup_mac_csdn(i: dict[str, Any], e: dict[str, Any]) -> None:
    tak = des_decrypt(H(i["tmk"]), H(i["tak_encrypted"]))
    assert hx(tak) == e["tak_clear"]
    mab = H(i["mab_hex"])
    padded = mab + bytes(-len(mab) % 8)
    acc, chain = 0, []
    for k in range(0, len(padded), 8):
        acc ^= int.from_bytes(padded[k : k + 8], "big")
        chain.append(f"{acc:016X}")
    assert chain == e["xor_chain"]
    assert hx(cup_mac_xor(mab)) == e["xor_chain"][-1]
    assert cup_ecb_mac(tak, mab) == e["mac_ascii"].encode("ascii")


def _track_select(i: dict[str, Any], e: dict[str, str]) -> None:
    for n in ("2", "3"):
        track, bcd = i[f"track{n}"], i[f"track{n}_bcd"]
        assert track.replace("=", "D").ljust(len(bcd), "0") == bcd
        assert hx(track_data_block(track)) == e[f"TDB{n}"]
        assert hx(H(bcd)[-9:-1]) == e[f"TDB{n}"]


def _track_encrypt(i: dict[str, Any], e: dict[str, str]) -> None:
    tdk, track, bcd = H(i["tdk"]), i["track_ascii"], i["track_bcd"]
    assert hx(track_data_block(track)) == i["tdb"]
    assert hx(des_encrypt(tdk, H(i["tdb"]))) == e["encrypted_tdb"]
    odd = len(track) % 2 == 1
    enc_bcd = e["encrypted_track_bcd"]
    expected_d = enc_bcd[:-1] if odd else enc_bcd  # the BCD form carries the pad nibble
    assert track.replace("=", "D").ljust(len(bcd), "0") == bcd
    enc_d = encrypt_track(tdk, track.replace("=", "D"))
    assert enc_d == expected_d
    assert decrypt_track(tdk, enc_d) == track.replace("=", "D")
    enc_eq = encrypt_track(tdk, track)
    assert enc_eq == expected_d.replace("D", "=")
    assert decrypt_track(tdk, enc_eq, separator="=") == track


def _dukpt_ipek(i: dict[str, Any], e: str) -> None:
    assert hx(dukpt_ipek(H(i["bdk"]), H(i["initial_ksn"]))) == e


def _dukpt_tdes(i: dict[str, Any], e: dict[str, str]) -> None:
    ksn = H(i["ksn"])
    assert hx(dukpt_ipek(H(i["bdk"]), ksn)) == i["ipek"]
    tk = dukpt_transaction_key(H(i["ipek"]), ksn)
    assert hx(tk) == e["transaction_key"]
    assert hx(dukpt_pin_key(tk)) == e["pin_key"]
    assert hx(dukpt_mac_request_key(tk)) == e["mac_request_key"]
    assert hx(pin_block_format0(i["pin"], i["pan"])) == i["clear_pin_block"]
    assert hx(encrypt_pin(dukpt_pin_key(tk), i["pin"], i["pan"])) == e["encrypted_pin_block"]
    assert decrypt_pin(dukpt_pin_key(tk), H(e["encrypted_pin_block"]), i["pan"]) == i["pin"]


def _aes_dukpt_ik(i: dict[str, Any], e: str) -> None:
    assert hx(aes_dukpt_initial_key(H(i["bdk"]), H(i["initial_key_id"]))) == e


def _aes_dukpt_tk(i: dict[str, Any], e: str) -> None:
    assert hx(aes_dukpt_transaction_key(H(i["initial_key"]), H(i["ksn"]))) == e


def _luhn_digit(i: dict[str, Any], e: str) -> None:
    assert luhn_check_digit(i["partial_pan"]) == e
    assert luhn_valid(i["partial_pan"] + e)
    assert not luhn_valid(i["partial_pan"] + str((int(e) + 1) % 10))


def _luhn_pans(i: dict[str, Any], e: list[dict[str, Any]]) -> None:
    assert [x["pan"] for x in e] == i["pans"]
    for x in e:
        assert luhn_valid(x["pan"]) is x["luhn_valid"]
        assert len(x["pan"]) == x["length"]


CHECKERS: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "DES-ECB": _ecb,
    "TDES-ECB (2-key, K1-K2-K1)": _ecb,
    "TDES-ECB (3-key)": _ecb,
    "KCV (DES/TDES: encrypt 8 zero bytes, keep leftmost n bytes)": _kcv,
    "CUP sign-on working-key unwrap (3DES-ECB decrypt under TMK) + 4-byte check values": _signon_unwrap,
    "CUP sign-on working-key wrap: PIK/MAK/TDK 3DES-ECB under TMK + 4-byte check values (double length)": _signon_wrap,
    "PIN block ISO 9564-1 format 0 (clear)": _pin0,
    "PIN block ISO 9564-1 format 0 encrypted under PIK (2-key 3DES ECB)": _pin0_encrypted,
    "PIN block ISO 9564-1 format 1 (no PAN; fill = transaction-unique/random hex digits)": _pin1,
    "PIN block ISO 9564-1 format 2 (ICC offline PIN, not encrypted)": _pin2,
    "PIN block ISO 9564-1 format 3 (clear; fill digits A-F)": _pin3,
    "PIN block ISO 9564-1 format 4 (AES-128), enciphered": _pin4,
    "ANSI X9.9 / ISO 9797-1 MAC algorithm 1 (single DES CBC-MAC), padding method 1": _mac(x9_9_mac, 1),
    "ISO 9797-1 MAC algorithm 1 (single DES CBC-MAC), padding method 2": _mac(x9_9_mac, 2),
    "ANSI X9.19 retail MAC = ISO 9797-1 MAC algorithm 3, padding method 1": _mac(x9_19_mac, 1),
    "ISO 9797-1 MAC algorithm 3, padding method 2": _mac(x9_19_mac, 2),
    "ISO 9797-1 MAC algorithm 1 with 2-key TDES (full 3DES CBC-MAC), padding method 1": _mac(
        iso9797_alg1_tdes_mac, 1
    ),
    "ISO 9797-1 MAC algorithm 1 with 2-key TDES (full 3DES CBC-MAC), padding method 2": _mac(
        iso9797_alg1_tdes_mac, 2
    ),
    "ANSI X9.19 retail MAC (padding method 1) over binary MAB": _mac(x9_19_mac, 1),
    "China UnionPay POS 'ECB' MAC (XOR blocks -> 16 hex chars -> E(first 8) xor last 8 -> E -> first 8 hex chars)": _cup_mac,
    "China UnionPay POS 'ECB' MAC - real captured POS message (MAB = MTI .. field 63; TPDU and 6-byte header excluded)": _cup_mac_real,
    "China UnionPay POS 'ECB' MAC - CSDN worked example (TAK under TMK, XOR chain)": _cup_mac_csdn,
    "ISO 9797-1 MAC algorithm 3, padding method 2 ('PBOC MAC' style)": _mac(x9_19_mac, 2),
    "CUP track-data block selection (TDB2/TDB3 = 8 bytes ending one byte before the end of the BCD track)": _track_select,
    "CUP track data encryption with TDK (2-key 3DES ECB on TDB, replaced in place)": _track_encrypt,
    "TDES DUKPT IPEK (ANSI X9.24-1:2009)": _dukpt_ipek,
    "TDES DUKPT transaction key, PIN key, MAC request key, encrypted PIN block": _dukpt_tdes,
    "AES DUKPT initial key (ANSI X9.24-3:2017, AES-128 BDK)": _aes_dukpt_ik,
    "AES DUKPT initial key (ANSI X9.24-3:2017, AES-256 BDK)": _aes_dukpt_ik,
    "AES DUKPT transaction (intermediate derivation) key, AES-128": _aes_dukpt_tk,
    "Luhn (mod 10) check digit": _luhn_digit,
    "Luhn validity of publicly documented TEST card numbers": _luhn_pans,
}


def _id(n: int, v: dict[str, Any]) -> str:
    return f"{n:02d}-{v['algorithm'][:48]}"


@pytest.mark.parametrize("vector", VECTORS, ids=[_id(n, v) for n, v in enumerate(VECTORS)])
def test_vector(vector: dict[str, Any]) -> None:
    checker = CHECKERS.get(vector["algorithm"])
    if checker is None:
        pytest.fail(f"no checker for algorithm {vector['algorithm']!r}: implement it")
    checker(vector["inputs"], vector["expected"])


def test_every_checker_is_used() -> None:
    assert set(CHECKERS) == {v["algorithm"] for v in VECTORS}
