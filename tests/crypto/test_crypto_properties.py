"""Hypothesis properties: round trips, reference implementations, and no key material in text."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posgate.crypto import (
    CheckValueError,
    WorkingKeys,
    decrypt_pin,
    decrypt_track,
    des_decrypt,
    des_encrypt,
    encrypt_pin,
    encrypt_track,
    generate_working_keys,
    iso9797_alg1_tdes_mac,
    luhn_check_digit,
    luhn_valid,
    pin_block_format0,
    pin_block_format1,
    pin_block_format2,
    pin_block_format3,
    pin_block_format4_decipher,
    pin_block_format4_encipher,
    pin_from_format0,
    translate_pin_block,
    unwrap_working_keys,
    wrap_working_keys,
    x9_9_mac,
    x9_19_mac,
)
from posgate.crypto.keys import has_odd_parity, is_weak_key
from posgate.crypto.mac import cup_ecb_mac
from posgate.crypto.pinblock import pin_from_format1, pin_from_format2, pin_from_format3, random_fill_af
from posgate.crypto.track import track_data_block

SCHEMES = ("001", "003", "004")


def drbg(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic randbytes for tests (SHAKE-256 of seed || counter)."""
    counter = itertools.count()

    def randbytes(n: int) -> bytes:
        return hashlib.shake_256(seed + next(counter).to_bytes(4, "big")).digest(n)

    return randbytes


seeds = st.binary(min_size=16, max_size=16)
tmks = st.sampled_from([8, 16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
pins = st.text(alphabet="0123456789", min_size=4, max_size=12)
des_keys = st.sampled_from([8, 16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@st.composite
def luhn_pans(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet="0123456789", min_size=12, max_size=18))
    return body + luhn_check_digit(body)


def _hex_forms(b: bytes) -> list[str]:
    return [b.hex().upper(), b.hex(), repr(b)]


def _key_texts(tmk: bytes, keys: WorkingKeys) -> list[str]:
    out = _hex_forms(tmk) + _hex_forms(keys.pik) + _hex_forms(keys.mak)
    if keys.tdk is not None:
        out += _hex_forms(keys.tdk)
    return out


# --- sign-on keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@given(seed=seeds, tmk=tmks)
def test_generated_keys_wrap_unwrap_round_trip(scheme: str, seed: bytes, tmk: bytes) -> None:
    keys = generate_working_keys(scheme, drbg(seed))
    for k in (keys.pik, keys.mak, keys.tdk):
        if k is not None:
            assert has_odd_parity(k)
            assert not is_weak_key(k)
    f62 = wrap_working_keys(tmk, scheme, keys)
    assert len(f62) == {"001": 24, "003": 40, "004": 60}[scheme]
    assert unwrap_working_keys(tmk, scheme, f62) == keys


@given(
    scheme=st.sampled_from(["003", "004"]),
    tmk=tmks,
    pik=st.binary(min_size=16, max_size=16),
    mak=st.sampled_from([8, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    tdk=st.binary(min_size=16, max_size=16),
)
def test_any_keys_wrap_unwrap_round_trip(scheme: str, tmk: bytes, pik: bytes, mak: bytes, tdk: bytes) -> None:
    keys = WorkingKeys(pik=pik, mak=mak, tdk=tdk if scheme == "004" else None)
    assert unwrap_working_keys(tmk, scheme, wrap_working_keys(tmk, scheme, keys)) == keys


@pytest.mark.parametrize("scheme", SCHEMES)
@given(seed=seeds, tmk=tmks, data=st.data())
def test_corrupted_check_value_raises_without_key_material(
    scheme: str, seed: bytes, tmk: bytes, data: st.DataObject
) -> None:
    keys = generate_working_keys(scheme, drbg(seed))
    f62 = bytearray(wrap_working_keys(tmk, scheme, keys))
    cv_offsets = {
        "001": {"PIK": 8, "MAK": 20},
        "003": {"PIK": 16, "MAK": 36},
        "004": {"PIK": 16, "MAK": 36, "TDK": 56},
    }
    name = data.draw(st.sampled_from(sorted(cv_offsets[scheme])))
    pos = cv_offsets[scheme][name] + data.draw(st.integers(0, 3))
    f62[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CheckValueError) as exc:
        unwrap_working_keys(tmk, scheme, bytes(f62))
    assert exc.value.key_name == name
    text = str(exc.value) + repr(exc.value)
    for secret in _key_texts(tmk, keys) + _hex_forms(bytes(f62)):
        assert secret not in text


@given(seed=seeds, scheme=st.sampled_from(SCHEMES))
def test_working_keys_repr_has_no_key_material(seed: bytes, scheme: str) -> None:
    keys = generate_working_keys(scheme, drbg(seed))
    text = repr(keys) + str(keys) + f"{keys}"
    for k in (keys.pik, keys.mak, keys.tdk):
        if k is not None:
            for form in _hex_forms(k) + _hex_forms(k[:8]) + _hex_forms(k[-8:]):
                assert form not in text
    assert "bytes, KCV" in text


# --- PIN blocks -------------------------------------------------------------------------------


@given(
    pin=pins,
    pan=luhn_pans(),
    pik=st.sampled_from([8, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
def test_encrypt_decrypt_pin_round_trip(pin: str, pan: str, pik: bytes) -> None:
    assert luhn_valid(pan)
    enc = encrypt_pin(pik, pin, pan)
    assert len(enc) == 8
    assert decrypt_pin(pik, enc, pan) == pin
    assert pin_from_format0(des_decrypt(pik, enc), pan) == pin


@given(pin=pins, pan=luhn_pans(), seed=seeds)
def test_other_formats_round_trip(pin: str, pan: str, seed: bytes) -> None:
    rnd = drbg(seed)
    assert pin_from_format1(pin_block_format1(pin, rnd(7))) == pin
    assert pin_from_format2(pin_block_format2(pin)) == pin
    assert pin_from_format3(pin_block_format3(pin, pan, random_fill_af(rnd)), pan) == pin
    key = rnd(16)
    block = pin_block_format4_encipher(key, pin, pan, rnd(8))
    assert len(block) == 16
    assert pin_block_format4_decipher(key, block, pan) == pin


@given(pin=pins, pan=luhn_pans(), src=des_keys, dst=des_keys)
def test_translate_pin_block(pin: str, pan: str, src: bytes, dst: bytes) -> None:
    translated = translate_pin_block(src, dst, encrypt_pin(src, pin, pan), pan=pan)
    assert translated == encrypt_pin(dst, pin, pan)
    assert decrypt_pin(dst, translated, pan) == pin


@given(pin=pins, pan=luhn_pans())
def test_format0_matches_naive_definition(pin: str, pan: str) -> None:
    pin_field = f"0{len(pin):X}{pin}".ljust(16, "F")
    pan_field = "0000" + pan[-13:-1].rjust(12, "0")
    naive = bytes(a ^ b for a, b in zip(bytes.fromhex(pin_field), bytes.fromhex(pan_field), strict=True))
    assert pin_block_format0(pin, pan) == naive


# --- track data -------------------------------------------------------------------------------


@st.composite
def tracks(draw: st.DrawFn) -> str:
    pan = draw(luhn_pans())
    rest = draw(st.text(alphabet="0123456789", min_size=4, max_size=37 - len(pan) - 1))
    sep = draw(st.sampled_from(["=", "D"]))
    more = draw(st.lists(st.text(alphabet="0123456789", max_size=20), max_size=3))
    return sep.join([pan, rest, *more])


@given(track=tracks(), tdk=st.binary(min_size=16, max_size=16))
def test_track_round_trip(track: str, tdk: bytes) -> None:
    sep = "=" if "=" in track else "D"
    enc = encrypt_track(tdk, track)
    assert len(enc) == len(track)
    assert decrypt_track(tdk, enc, separator=sep) == track
    # Only the 16 nibbles of the TDB change; the clear rest keeps its characters.
    end = len(track) - (1 if len(track) % 2 else 2)
    assert enc[: end - 16] == track[: end - 16]
    assert enc[end:] == track[end:]
    assert bytes.fromhex(enc[end - 16 : end].replace("=", "D")) == des_encrypt(tdk, track_data_block(track))


@given(
    digits=st.text(alphabet="0123456789", min_size=1, max_size=16), tdk=st.binary(min_size=16, max_size=16)
)
def test_short_track_round_trip(digits: str, tdk: bytes) -> None:
    enc = encrypt_track(tdk, digits)
    assert len(enc) == 17  # left-padded with F to 17 digits
    assert decrypt_track(tdk, enc) == digits


# --- MACs against naive reference implementations ------------------------------------------


def naive_cup_mac(mak: bytes, mab: bytes) -> bytes:
    data = mab + bytes(-len(mab) % 8)
    block = bytes(8)
    for i in range(0, len(data), 8):
        block = bytes(a ^ b for a, b in zip(block, data[i : i + 8], strict=True))
    h = block.hex().upper().encode()
    e1 = des_encrypt(mak, h[:8])
    temp = bytes(a ^ b for a, b in zip(e1, h[8:], strict=True))
    return des_encrypt(mak, temp).hex().upper()[:8].encode()


def naive_cbc_mac(key: bytes, data: bytes) -> bytes:
    h = bytes(8)
    for i in range(0, len(data), 8):
        h = des_encrypt(key, bytes(a ^ b for a, b in zip(h, data[i : i + 8], strict=True)))
    return h


def pad(data: bytes, method: int) -> bytes:
    if method == 2:
        data += b"\x80"
    elif not data:
        return bytes(8)
    return data + bytes(-len(data) % 8)


mabs = st.binary(max_size=400)


@given(mak=st.sampled_from([8, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n)), mab=mabs)
def test_cup_ecb_mac_matches_naive(mak: bytes, mab: bytes) -> None:
    assert cup_ecb_mac(mak, mab) == naive_cup_mac(mak, mab)
    assert cup_ecb_mac(mak, bytearray(mab)) == naive_cup_mac(mak, mab)
    assert cup_ecb_mac(mak, memoryview(mab)) == naive_cup_mac(mak, mab)


@settings(max_examples=200)
@given(key=st.binary(min_size=16, max_size=16), data=mabs, method=st.sampled_from([1, 2]))
def test_cbc_macs_match_naive(key: bytes, data: bytes, method: int) -> None:
    padded = pad(data, method)
    kl, kr = key[:8], key[8:]
    assert x9_9_mac(kl, data, method) == naive_cbc_mac(kl, padded)
    assert iso9797_alg1_tdes_mac(key, data, method) == naive_cbc_mac(key, padded)
    h = naive_cbc_mac(kl, padded)
    assert x9_19_mac(key, data, method) == des_encrypt(kl, des_decrypt(kr, h))
    assert x9_19_mac(kl + kl, data, method) == x9_9_mac(kl, data, method)
