"""SM4 (国密) terminal cryptography: the cipher against the GB/T 32907-2016 vector, and the
sign-on, check value, MAC, PIN block and track methods with SM4 as their cipher
(docs/dialect.md 4.4, docs/decisions.md N1-N5)."""

from __future__ import annotations

import itertools

import pytest

from posgate.crypto import (
    DES,
    SM4,
    CheckValueError,
    CryptoError,
    PinBlockError,
    cipher_for,
    cup_ecb_mac,
    decrypt_pin,
    encrypt_pin,
    generate_working_keys,
    scheme_cipher,
    sm4_decrypt,
    sm4_encrypt,
    translate_pin_block,
    unwrap_working_keys,
    wrap_working_keys,
)
from posgate.crypto.mac import cup_ecb_mac_trace, cup_mac_xor
from posgate.crypto.pinblock import pin_block_format0
from posgate.crypto.track import decrypt_track, encrypt_track, track_data_block

H = bytes.fromhex
DEMO_TMK = H("0123456789ABCDEFFEDCBA9876543210")  # the demo SM4 terminal 40000001


def counter_bytes():
    c = itertools.count(1)
    return lambda n: bytes((next(c) * 37) & 0xFF for _ in range(n))


def test_sm4_standard_vector_gbt_32907_2016():
    # GB/T 32907-2016 appendix A, example 1: key = plaintext.
    k = H("0123456789abcdeffedcba9876543210")
    assert sm4_encrypt(k, k) == H("681edf34d206965e86b3e94f536e4246")
    assert sm4_decrypt(k, H("681edf34d206965e86b3e94f536e4246")) == k
    assert SM4.encrypt(k, k + k) == H("681edf34d206965e86b3e94f536e4246") * 2


def test_sm4_refuses_bad_lengths():
    with pytest.raises(CryptoError):
        sm4_encrypt(bytes(8), bytes(16))
    with pytest.raises(CryptoError):
        sm4_encrypt(bytes(16), bytes(8))
    with pytest.raises(CryptoError):
        cipher_for("aes")
    assert cipher_for("sm4") is SM4 and cipher_for("des") is DES


def test_sm4_check_value_matches_a_published_bank_sign_on():
    # A published SM4 sign-on (a bank PIN pad walkthrough, docs/decisions.md N2): TMK, the
    # working key under it, and its check value SM4(key, 16 zero bytes).
    tmk = H("1234567890ABCDEFABCDEF0987654321")
    key = SM4.decrypt(tmk, H("3D66234C49E4296FF9C78D8BACBD6A76"))
    assert key == H("F351D490994603795C6EBEE8FAEBB481")
    assert SM4.kcv(key, 8) == H("861E83E31FAEBF10")


def test_scheme_006_round_trip_and_layout():
    keys = generate_working_keys("006", counter_bytes())
    assert keys.cipher is SM4 and scheme_cipher("006") is SM4 and scheme_cipher("004") is DES
    assert len(keys.pik) == len(keys.mak) == len(keys.tdk or b"") == 16
    f62 = wrap_working_keys(DEMO_TMK, "006", keys)
    assert len(f62) == 60
    # PIK(16) CV(4) MAK(16) CV(4) TDK(16) CV(4), each SM4-ECB under the TMK.
    assert f62[0:16] == sm4_encrypt(DEMO_TMK, keys.pik)
    assert f62[16:20] == sm4_encrypt(keys.pik, bytes(16))[:4]
    assert f62[20:36] == sm4_encrypt(DEMO_TMK, keys.mak)
    assert f62[36:40] == sm4_encrypt(keys.mak, bytes(16))[:4]
    assert f62[40:56] == sm4_encrypt(DEMO_TMK, keys.tdk or b"")
    assert f62[56:60] == sm4_encrypt(keys.tdk or b"", bytes(16))[:4]
    back = unwrap_working_keys(DEMO_TMK, "006", f62)
    assert back == keys
    assert "cipher=sm4" in repr(back) and keys.pik.hex() not in repr(back).lower()


@pytest.mark.parametrize("offset,name", [(17, "PIK"), (37, "MAK"), (57, "TDK")])
def test_scheme_006_check_value_mismatch_names_the_key(offset, name):
    f62 = bytearray(wrap_working_keys(DEMO_TMK, "006", generate_working_keys("006", counter_bytes())))
    f62[offset] ^= 1
    with pytest.raises(CheckValueError) as e:
        unwrap_working_keys(DEMO_TMK, "006", bytes(f62))
    assert e.value.key_name == name


def test_scheme_006_wrong_tmk_or_des_keys_refused():
    keys = generate_working_keys("006", counter_bytes())
    f62 = wrap_working_keys(DEMO_TMK, "006", keys)
    with pytest.raises(CheckValueError):
        unwrap_working_keys(bytes(reversed(DEMO_TMK)), "006", f62)
    with pytest.raises(CryptoError):
        wrap_working_keys(DEMO_TMK, "006", generate_working_keys("004", counter_bytes()))
    with pytest.raises(CryptoError):
        wrap_working_keys(DEMO_TMK, "004", keys)
    with pytest.raises(CryptoError):  # an SM4 TMK is 16 bytes
        unwrap_working_keys(DEMO_TMK[:8], "006", f62)


def test_sm4_cup_mac_is_the_xor_method_with_16_byte_blocks():
    mak = H("F351D490994603795C6EBEE8FAEBB481")
    mab = bytes(range(37))
    # by hand: zero-pad to 48, XOR three 16-byte blocks, hex-expand (upper case), then
    # E(first 16) XOR last 16, E again, first 8 hex characters.
    padded = mab + bytes(11)
    x = bytes(a ^ b ^ c for a, b, c in zip(padded[0:16], padded[16:32], padded[32:48], strict=True))
    assert cup_mac_xor(mab, 16) == x
    h = x.hex().upper().encode()
    t = bytes(a ^ b for a, b in zip(sm4_encrypt(mak, h[:16]), h[16:], strict=True))
    want = sm4_encrypt(mak, t)[:4].hex().upper().encode()
    assert cup_ecb_mac(mak, mab, SM4) == want
    assert cup_ecb_mac_trace(mak, mab, SM4).mac == want
    assert len(want) == 8
    # A one-bit change anywhere changes the MAC.
    assert cup_ecb_mac(mak, bytes([1]) + mab[1:], SM4) != want
    # The DES default is untouched by the parameter.
    assert cup_ecb_mac(H("5CBE7E38A146FD5C"), H("010203")) == b"F11F2C27"


def test_sm4_pin_block_is_format_0_widened_to_16_bytes():
    # The published walkthrough's clear block (docs/decisions.md N3): PIN 123654, PAN 6230606601007726888.
    clear = pin_block_format0("123654", "6230606601007726888", SM4)
    assert clear == H("06123654FFFFFFFFFFFF99FEFF88D977")
    pik = H("F351D490994603795C6EBEE8FAEBB481")
    enc = encrypt_pin(pik, "123654", "6230606601007726888", SM4)
    assert enc == sm4_encrypt(pik, clear)
    assert decrypt_pin(pik, enc, "6230606601007726888", SM4) == "123654"
    with pytest.raises(PinBlockError):
        decrypt_pin(pik, enc, "6230606601007726896", SM4)  # another card
    with pytest.raises(PinBlockError):
        decrypt_pin(pik, enc[:8], "6230606601007726888", SM4)


def test_translate_sm4_pin_block_to_a_des_zone_key():
    pik = H("F351D490994603795C6EBEE8FAEBB481")
    zone = H("0123456789ABCDEFFEDCBA9876543210")
    pan = "6212142000000000012"
    enc = encrypt_pin(pik, "123456", pan, SM4)
    out = translate_pin_block(pik, zone, enc, pan=pan, src_cipher=SM4)
    assert len(out) == 8 and decrypt_pin(zone, out, pan) == "123456"
    with pytest.raises(PinBlockError):
        translate_pin_block(pik, zone, enc, src_cipher=SM4)  # re-blocking needs the PAN
    with pytest.raises(PinBlockError):
        translate_pin_block(bytes(16), zone, enc, pan=pan, src_cipher=SM4)  # wrong PIK


@pytest.mark.parametrize(
    "track",
    [
        "6212142000000000012=30122010000000000",  # 37 nibbles, odd
        "6212142000000000012=3012201000000000",  # 36, even
        "62121420000000012=3012",  # 22 < 33: F-padded on the left
    ],
)
def test_sm4_track_encryption_16_byte_block(track):
    tdk = H("00112233445566778899AABBCCDDEEFF")
    enc = encrypt_track(tdk, track, cipher=SM4)
    assert len(enc) == max(len(track), 33)
    assert decrypt_track(tdk, enc, cipher=SM4, separator="=") == track
    s = track.replace("=", "D")
    s = "F" * max(0, 33 - len(s)) + s
    s2 = s + ("0" if len(s) % 2 else "")
    # the 16 bytes just before the last byte are encrypted, everything else stays clear
    assert track_data_block(track, SM4) == H(s2[-34:-2])
    assert enc.replace("=", "D")[: len(s2) - 34] == s2[: len(s2) - 34]
    # another key does not give track data back
    with pytest.raises(CryptoError):
        decrypt_track(bytes(16), enc, cipher=SM4, separator="=")
