"""The computed vectors of docs/dialect.md section 11.3 (public test keys from PS10)."""

from __future__ import annotations

import pytest

from posgate.crypto import (
    CheckValueError,
    WorkingKeys,
    decrypt_pin,
    decrypt_track,
    des_decrypt,
    des_encrypt,
    encrypt_pin,
    encrypt_track,
    kcv,
    pin_block_format0,
    unwrap_working_keys,
    wrap_working_keys,
    x9_19_mac,
)
from posgate.crypto.mac import cup_ecb_mac, cup_ecb_mac_trace

H = bytes.fromhex

TMK = H("159D86C7C1F779EA29F77A6858E0DA2A")
ENC_PIK = H("75CAD854C2E59A5EEDD7CA7410C2C215")
ENC_MAK = H("E6218EF29513B143")
PIK = H("64F2451FB3A29158DC924F2A32541C02")
MAK = H("F82A9BA462D57A7C")
TDK = H("0123456789ABCDEFFEDCBA9876543210")
ENC_TDK = H("20A69927F177219944F8F3688FADD35E")

F62_004 = H(
    "75CAD854C2E59A5EEDD7CA7410C2C215 46DD7383 E6218EF29513B143 0000000000000000 DC451C06"
    " 20A69927F177219944F8F3688FADD35E 08D7B4FB"
)
F62_001 = H("75CAD854C2E59A5E D44FAF88 E6218EF29513B143 DC451C06")

SYNTHETIC_0810 = H(
    "0810003800010AC0001400008613280504180800094500313830343138313332383035303033323930313234303332"
    "393031323430303030303030310011000000010040006075CAD854C2E59A5EEDD7CA7410C2C21546DD7383E6218EF2"
    "9513B1430000000000000000DC451C0620A69927F177219944F8F3688FADD35E08D7B4FB"
)

# docs/dialect.md 11.1(d): real contactless sale, body from the MTI, field 64 at the end.
REAL_SALE = H(
    "0200703C06C020C09A1119621785760000805080400000000000000000010001051612430209230807100001001237621785"
    "7600008050804D23082201000082300039323333363738373834373130303035333939303030323135367D6A7408DFE2E9E5"
    "260000000000000001459F26089C0A057796D091E39F2701809F1013070F0103A00000010A010000005959BAF31C349F3704"
    "2AE9F9B49F36020FCD950500000000009A031802099C01009F02060000000000015F2A02015682027C009F1A0201569F0306"
    "0000000000009F330390C8C09F34030000009F3501229F1E0831323334353637388408A0000003330101019F090200209F41"
    "040000000200122200000100064433374345464536"
)
REAL_SALE_MAB = REAL_SALE[:-8]  # MTI .. field 60 (the sale has no 61-63)


def test_clear_working_keys_and_check_values() -> None:
    assert des_decrypt(TMK, ENC_PIK) == PIK
    assert des_decrypt(TMK, ENC_MAK) == MAK
    assert kcv(PIK) == H("46DD7383")
    assert kcv(MAK) == H("DC451C06")
    assert des_encrypt(TMK, TDK) == ENC_TDK
    assert kcv(TDK) == H("08D7B4FB")


def test_field62_scheme_004_wrap_and_unwrap() -> None:
    keys = WorkingKeys(pik=PIK, mak=MAK, tdk=TDK)
    assert wrap_working_keys(TMK, "004", keys) == F62_004
    assert unwrap_working_keys(TMK, "004", F62_004) == keys


def test_field62_scheme_003_is_the_first_40_bytes() -> None:
    keys = WorkingKeys(pik=PIK, mak=MAK)
    assert wrap_working_keys(TMK, "003", keys) == F62_004[:40]
    assert unwrap_working_keys(TMK, "003", F62_004[:40]) == keys


def test_field62_scheme_001_single_length() -> None:
    keys = WorkingKeys(pik=PIK[:8], mak=MAK)
    assert wrap_working_keys(TMK, "001", keys) == F62_001
    got = unwrap_working_keys(TMK, "001", F62_001)
    assert got == keys
    assert kcv(got.pik) == H("D44FAF88")


def test_synthetic_0810_carries_the_60_byte_field62() -> None:
    # Field 62 is the last field: LLL (BCD 0060) then the 60 bytes.
    assert SYNTHETIC_0810[-62:-60] == H("0060")
    assert unwrap_working_keys(TMK, "004", SYNTHETIC_0810[-60:]) == WorkingKeys(PIK, MAK, TDK)


@pytest.mark.parametrize(("offset", "name"), [(16, "PIK"), (36, "MAK"), (56, "TDK")])
def test_field62_bad_check_value_names_the_key(offset: int, name: str) -> None:
    bad = bytearray(F62_004)
    bad[offset] ^= 0x01
    with pytest.raises(CheckValueError) as exc:
        unwrap_working_keys(TMK, "004", bytes(bad))
    assert exc.value.key_name == name
    assert name in str(exc.value)


def test_pin_block_with_the_clear_pik() -> None:
    pin, pan = "123456", "6212142000000000012"
    clear = pin_block_format0(pin, pan)
    assert clear == H("06121456FFFFFFFE")
    assert clear == bytes(a ^ b for a, b in zip(H("06123456FFFFFFFF"), H("0000200000000001"), strict=True))
    assert encrypt_pin(PIK, pin, pan) == H("9CA4E8A0FA2C49B3")
    assert decrypt_pin(PIK, H("9CA4E8A0FA2C49B3"), pan) == pin


def test_cup_ecb_mac_of_the_real_sale() -> None:
    assert len(REAL_SALE_MAB) == 263
    assert REAL_SALE[-8:] == b"D37CEFE6"  # the host's MAC under an unpublished MAK
    trace = cup_ecb_mac_trace(MAK, REAL_SALE_MAB)
    assert trace.xor_result == H("E8185ECE2025F8A4")
    assert trace.enc_block1 == H("3BCA62B3B63F9989")
    assert trace.temp_block == H("09FA5086F007D8BD")
    assert trace.enc_block2 == H("4089D575A0423DEC")
    mac = cup_ecb_mac(MAK, REAL_SALE_MAB)
    assert mac == b"4089D575"
    assert mac == H("3430383944353735")


def test_x9_19_of_the_real_sale_with_the_pik_as_key() -> None:
    assert x9_19_mac(PIK, REAL_SALE_MAB) == H("BD73515C10200412")


def test_cup_ecb_mac_swishcard_example() -> None:
    assert cup_ecb_mac(H("5CBE7E38A146FD5C"), H("010203")) == b"F11F2C27"


def test_tdk_track2_encryption_example() -> None:
    track = "6217857600008050804D23082201000082300"
    enc = encrypt_track(TDK, track)
    assert enc == "6217857600008050804D120D490283F482D00"
    assert des_encrypt(TDK, H("2308220100008230")) == H("120D490283F482D0")
    assert decrypt_track(TDK, enc) == track
    # The same track in '=' form: the clear separator stays '='.
    assert encrypt_track(TDK, track.replace("D", "=")) == enc.replace("D", "=")
