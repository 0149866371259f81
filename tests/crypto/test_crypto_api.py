"""Contract of posgate.crypto: API names, errors, no warnings, no leaks, caching, threads, imports."""

from __future__ import annotations

import ast
import threading
import warnings
from pathlib import Path

import pytest

import posgate.crypto as crypto
from posgate.crypto import (
    CheckValueError,
    CryptoError,
    PinBlockError,
    WorkingKeys,
    decrypt_pin,
    decrypt_track,
    des_decrypt,
    des_encrypt,
    dukpt,
    encrypt_pin,
    encrypt_track,
    generate_working_keys,
    kcv,
    luhn_check_digit,
    luhn_valid,
    mac_verify,
    pin_block_format0,
    pin_block_format1,
    pin_block_format3,
    pin_block_format4_decipher,
    pin_block_format4_encipher,
    pin_from_format0,
    set_odd_parity,
    tdes,
    translate_pin_block,
    unwrap_working_keys,
    wrap_working_keys,
    x9_9_mac,
    x9_19_mac,
)
from posgate.crypto.keys import field62_length, has_odd_parity, is_weak_key
from posgate.crypto.mac import cup_ecb_mac, pad_iso9797
from posgate.crypto.pinblock import random_fill_af

H = bytes.fromhex
K8 = H("0123456789ABCDEF")
K16 = H("0123456789ABCDEFFEDCBA9876543210")
K24 = H("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
PKG = Path(crypto.__file__).resolve().parent

BRIEF_API = """
CryptoError CheckValueError PinBlockError des_encrypt des_decrypt kcv WorkingKeys
generate_working_keys wrap_working_keys unwrap_working_keys set_odd_parity pin_block_format0
pin_block_format1 pin_block_format3 pin_from_format0 encrypt_pin_block decrypt_pin_block
encrypt_pin decrypt_pin translate_pin_block pin_block_format4_encipher pin_block_format4_decipher
cup_ecb_mac x9_9_mac x9_19_mac iso9797_alg1_tdes_mac mac_verify encrypt_track decrypt_track
luhn_check_digit luhn_valid
""".split()


def test_public_api_is_reexported() -> None:
    for name in BRIEF_API:
        assert name in crypto.__all__, name
        assert hasattr(crypto, name), name
    assert set(crypto.__all__) <= set(dir(crypto))


def test_error_hierarchy() -> None:
    assert issubclass(CryptoError, ValueError)
    assert issubclass(CheckValueError, CryptoError)
    assert issubclass(PinBlockError, CryptoError)


# --- no deprecation warnings -------------------------------------------------------------------


@pytest.mark.parametrize("key", [K8, K16, K24], ids=["single", "double", "triple"])
def test_des_emits_no_warning(key: bytes) -> None:
    tdes.clear_cipher_cache()  # make sure the cipher objects are built inside the block
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ct = des_encrypt(key, bytes(16))
        assert des_decrypt(key, ct) == bytes(16)
        kcv(key)
        tdes.tdes_cbc_encrypt(key, bytes(24))
        tdes.des_encrypt_uncached(key, bytes(8))
    assert caught == []


def test_everything_else_emits_no_warning() -> None:
    tdes.clear_cipher_cache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = generate_working_keys("004", lambda n: H("1F2E3D4C5B6A7988A1B2C3D4E5F60718")[:n])
        unwrap_working_keys(K16, "004", wrap_working_keys(K16, "004", keys))
        decrypt_pin(keys.pik, encrypt_pin(keys.pik, "1234", "6200000000000005"), "6200000000000005")
        cup_ecb_mac(keys.mak, b"x" * 100)
        x9_19_mac(K16, b"x" * 100)
        assert keys.tdk is not None
        decrypt_track(keys.tdk, encrypt_track(keys.tdk, "6200000000000005=30122010000012345"))
        dukpt.dukpt_transaction_key(
            dukpt.dukpt_ipek(K16, H("FFFF9876543210E00003")), H("FFFF9876543210E00003")
        )
    assert caught == []


# --- DES adapter -------------------------------------------------------------------------------


def test_cipher_contexts_are_cached_per_key() -> None:
    tdes.clear_cipher_cache()
    des_encrypt(K16, bytes(8))
    before = tdes._encryptor.cache_info()
    for _ in range(10):
        des_encrypt(K16, bytes(8))
    after = tdes._encryptor.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 10


@pytest.mark.parametrize("bad", [b"", b"\x01" * 7, b"\x01" * 15, b"\x01" * 32])
def test_des_rejects_bad_key_length(bad: bytes) -> None:
    with pytest.raises(CryptoError, match="8, 16 or 24 bytes"):
        des_encrypt(bad, bytes(8))


def test_des_rejects_non_bytes_key() -> None:
    with pytest.raises(CryptoError):
        des_encrypt(16, bytes(8))  # type: ignore[arg-type]
    assert des_encrypt(bytearray(K8), bytes(8)) == des_encrypt(K8, bytes(8))  # type: ignore[arg-type]


def test_partial_block_is_rejected_and_does_not_poison_the_context() -> None:
    good = des_encrypt(K16, bytes(8))
    with pytest.raises(CryptoError, match="multiple of 8"):
        des_encrypt(K16, bytes(5))
    with pytest.raises(CryptoError, match="multiple of 8"):
        des_decrypt(K16, bytes(9))
    assert des_encrypt(K16, bytes(8)) == good


def test_key_errors_do_not_contain_key_material() -> None:
    key = H("A1B2C3D4E5F6A7B8C9")  # 9 bytes
    with pytest.raises(CryptoError) as exc:
        des_encrypt(key, bytes(8))
    assert key.hex().upper() not in str(exc.value) and key.hex() not in str(exc.value)


def test_kcv() -> None:
    assert kcv(K16) == H("08D7B4FB")
    assert kcv(K16, 3) == H("08D7B4")
    with pytest.raises(CryptoError):
        kcv(K16, 0)
    with pytest.raises(CryptoError):
        kcv(K16, 9)


def test_des_is_thread_safe() -> None:
    expected = des_encrypt(K16, bytes(8) * 4096)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                assert des_encrypt(K16, bytes(8) * 4096) == expected
                assert des_encrypt(K16, bytes(8)) == expected[:8]
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- keys --------------------------------------------------------------------------------------


def test_set_odd_parity() -> None:
    assert set_odd_parity(H("0000000000000000")) == H("0101010101010101")
    assert set_odd_parity(H("FFFFFFFFFFFFFFFF")) == H("FEFEFEFEFEFEFEFE")
    assert set_odd_parity(H("0123456789ABCDEF")) == H("0123456789ABCDEF")
    assert set_odd_parity(H("0022446688AACCEE")) == H("0123456789ABCDEF")
    assert has_odd_parity(K16) and not has_odd_parity(H("0000000000000000"))


def test_weak_keys() -> None:
    assert is_weak_key(H("0000000000000000"))  # parity-adjusted 0101...
    assert is_weak_key(H("1F1F1F1F0E0E0E0E"))
    assert is_weak_key(H("011F011F010E010E"))
    assert is_weak_key(H("0723C80DB5F4CD3D0723C80DB5F4CD3D"))  # equal halves
    assert is_weak_key(H("0123456789ABCDEF0023456789ABCDEF"))  # equal up to parity
    assert not is_weak_key(K16) and not is_weak_key(K24) and not is_weak_key(K8)


@pytest.mark.parametrize(
    ("scheme", "lengths"), [("001", (8, 8, None)), ("003", (16, 8, None)), ("004", (16, 8, 16))]
)
def test_generate_working_keys_lengths(scheme: str, lengths: tuple[int, int, int | None]) -> None:
    draws: list[int] = []

    def randbytes(n: int) -> bytes:
        draws.append(n)
        return bytes((7 * len(draws) + 13 * i) % 256 for i in range(n))

    keys = generate_working_keys(scheme, randbytes)
    got = (len(keys.pik), len(keys.mak), None if keys.tdk is None else len(keys.tdk))
    assert got == lengths
    assert field62_length(scheme) == {"001": 24, "003": 40, "004": 60}[scheme]


def test_generate_rejects_weak_or_broken_randomness() -> None:
    with pytest.raises(CryptoError, match="weak"):
        generate_working_keys("003", lambda n: bytes(n))
    with pytest.raises(CryptoError, match="did not return"):
        generate_working_keys("003", lambda n: bytes(n - 1))
    with pytest.raises(CryptoError, match="unknown working-key scheme"):
        generate_working_keys("002", lambda n: bytes(n))


def test_weak_draw_is_replaced() -> None:
    draws = iter([bytes(8), H("1F2E3D4C5B6A7988"), H("A1B2C3D4E5F60718")])
    keys = generate_working_keys("001", lambda n: next(draws))
    assert keys.pik == set_odd_parity(H("1F2E3D4C5B6A7988"))


def test_wrap_validates_lengths() -> None:
    with pytest.raises(CryptoError, match="16-byte PIK"):
        wrap_working_keys(K16, "003", WorkingKeys(pik=K8, mak=K8))
    with pytest.raises(CryptoError, match="8-byte MAK"):
        wrap_working_keys(K16, "001", WorkingKeys(pik=K8, mak=K16))
    with pytest.raises(CryptoError, match="no TDK"):
        wrap_working_keys(K16, "003", WorkingKeys(pik=K16, mak=K8, tdk=K16))
    with pytest.raises(CryptoError, match="TDK"):
        wrap_working_keys(K16, "004", WorkingKeys(pik=K16, mak=K8))
    with pytest.raises(CryptoError, match="TMK"):
        wrap_working_keys(K8[:7], "004", WorkingKeys(pik=K16, mak=K8, tdk=K16))
    with pytest.raises(CryptoError):
        WorkingKeys(pik=b"short", mak=K8)


def test_unwrap_wrong_length_is_not_a_check_value_error() -> None:
    with pytest.raises(CryptoError, match="must be 40 bytes") as exc:
        unwrap_working_keys(K16, "003", bytes(39))
    assert not isinstance(exc.value, CheckValueError)


def test_unwrap_tolerates_a_non_zero_filler_after_an_8_byte_mak() -> None:
    keys = WorkingKeys(pik=K16, mak=H("5BB5C72CD00B7338"))
    f62 = bytearray(wrap_working_keys(K16, "003", keys))
    f62[28:36] = H("1122334455667788")
    assert unwrap_working_keys(K16, "003", bytes(f62)) == keys
    f62[20] ^= 0x80  # now the MAK itself is wrong
    with pytest.raises(CheckValueError) as exc:
        unwrap_working_keys(K16, "003", bytes(f62))
    assert exc.value.key_name == "MAK"


def test_corrupted_encrypted_key_fails_its_check_value() -> None:
    keys = WorkingKeys(pik=K16, mak=K8, tdk=K24[:16])
    f62 = bytearray(wrap_working_keys(K16, "004", keys))
    f62[45] ^= 0x10
    with pytest.raises(CheckValueError) as exc:
        unwrap_working_keys(K16, "004", bytes(f62))
    assert exc.value.key_name == "TDK"


# --- PIN blocks --------------------------------------------------------------------------------

PAN = "6222620910029130840"


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "١٢٣٤", "", "12 34"])
def test_bad_pin_is_rejected(pin: str) -> None:
    with pytest.raises(PinBlockError):
        pin_block_format0(pin, PAN)


@pytest.mark.parametrize("pan", ["", "1", "62226209100291308401", "6222-6209"])
def test_bad_pan_is_rejected(pan: str) -> None:
    with pytest.raises(PinBlockError):
        pin_block_format0("1234", pan)


def test_pan_shorter_than_13_digits_is_left_padded() -> None:
    assert pin_block_format0("1234", "123456789") == bytes(
        a ^ b for a, b in zip(H("041234FFFFFFFFFF"), H("0000000012345678"), strict=True)
    )


def test_wrong_pan_or_key_is_detected_and_not_leaked() -> None:
    enc = encrypt_pin(K16, "987654", PAN)
    with pytest.raises(PinBlockError) as exc:
        decrypt_pin(K16, enc, "6200000000000005")
    with pytest.raises(PinBlockError) as exc2:
        decrypt_pin(K8, enc, PAN)
    for e in (exc.value, exc2.value):
        text = str(e)
        assert "987654" not in text and PAN not in text and enc.hex().upper() not in text


def test_format0_decoding_rules() -> None:
    pan = "6200000000000005"  # PAN field all zeros: the clear block is the PIN field
    assert pin_from_format0(H("041234FFFFFFFFFF"), pan) == "1234"
    with pytest.raises(PinBlockError, match="format 0"):
        pin_from_format0(H("141234FFFFFFFFFF"), pan)
    with pytest.raises(PinBlockError, match="length"):
        pin_from_format0(H("031234FFFFFFFFFF"), pan)
    with pytest.raises(PinBlockError, match="length"):
        pin_from_format0(H("0D1234FFFFFFFFFF"), pan)
    with pytest.raises(PinBlockError, match="non-decimal"):
        pin_from_format0(H("04123AFFFFFFFFFF"), pan)
    with pytest.raises(PinBlockError, match="fill"):
        pin_from_format0(H("041234FFFFFFFFFE"), pan)
    with pytest.raises(PinBlockError, match="8 bytes"):
        pin_from_format0(H("041234FFFFFFFF"), pan)


def test_format1_and_3_fill_rules() -> None:
    with pytest.raises(PinBlockError, match="fill nibbles"):
        pin_block_format1("1234", H("A3F0"))
    with pytest.raises(PinBlockError, match="A..F"):
        pin_block_format3("1234", PAN, H("ABCDEFAB01"))
    fill = random_fill_af(lambda n: bytes(range(n)))
    assert len(fill) == 5
    assert set(fill.hex().upper()) <= set("ABCDEF")


def test_format4_errors() -> None:
    key = H("00112233445566778899AABBCCDDEEFF")
    block = pin_block_format4_encipher(key, "1234", PAN, bytes(8))
    with pytest.raises(PinBlockError):
        pin_block_format4_decipher(key, block, "6200000000000005")
    with pytest.raises(PinBlockError, match="8 random bytes"):
        pin_block_format4_encipher(key, "1234", PAN, bytes(7))
    with pytest.raises(CryptoError, match="AES key"):
        pin_block_format4_encipher(K8, "1234", PAN, bytes(8))


def test_translate_pin_block_checks_format_when_given_the_pan() -> None:
    enc = encrypt_pin(K16, "1234", PAN)
    assert translate_pin_block(K16, K8, enc) == encrypt_pin(K8, "1234", PAN)
    with pytest.raises(PinBlockError):
        translate_pin_block(K24, K8, enc, pan=PAN)


# --- MACs --------------------------------------------------------------------------------------


def test_mac_argument_checks() -> None:
    with pytest.raises(CryptoError, match="padding"):
        x9_9_mac(K8, b"abc", 3)
    with pytest.raises(CryptoError, match="8-byte key"):
        x9_9_mac(K16, b"abc")
    with pytest.raises(CryptoError, match="16-byte key"):
        x9_19_mac(K8, b"abc")
    assert pad_iso9797(b"", 1) == bytes(8)
    assert pad_iso9797(b"", 2) == H("8000000000000000")
    assert pad_iso9797(bytes(8), 2) == bytes(8) + H("8000000000000000")


def test_cup_ecb_mac_empty_and_aligned() -> None:
    assert cup_ecb_mac(K8, b"") == cup_ecb_mac(K8, bytes(8))
    assert cup_ecb_mac(K8, b"\x01") == cup_ecb_mac(K8, b"\x01" + bytes(7))
    mac = cup_ecb_mac(K8, b"hello")
    assert len(mac) == 8 and mac.isupper() or mac.isdigit()


def test_mac_verify() -> None:
    assert mac_verify(b"4089D575", b"4089D575")
    assert not mac_verify(b"4089D575", b"4089d575")
    assert not mac_verify(b"4089D575", b"4089D57")


# --- track -------------------------------------------------------------------------------------

TRACK = "6217857600008050804=23082201000082300"


def test_track_rejects_bad_characters_without_echoing() -> None:
    with pytest.raises(CryptoError) as exc:
        encrypt_track(K16, TRACK + "?")
    assert TRACK not in str(exc.value)
    with pytest.raises(CryptoError):
        encrypt_track(K16, TRACK.replace("0", "A"))
    with pytest.raises(CryptoError):
        encrypt_track(K16, "")
    with pytest.raises(CryptoError, match="separator"):
        encrypt_track(K16, TRACK, separator="^")


def test_track_wrong_tdk_is_usually_detected() -> None:
    # Detection is probabilistic: a wrong key yields 16 track nibbles with p = (11/16)^16
    # (about 0.25 %); K24[:16] happens to be such a key for this track.
    enc = encrypt_track(K16, TRACK)
    assert decrypt_track(K24[:16], enc) != TRACK
    with pytest.raises(CryptoError, match="wrong TDK") as exc:
        decrypt_track(H("89ABCDEF0123456776543210FEDCBA98"), enc)
    assert TRACK not in str(exc.value)


def test_track_accepts_lower_case_and_both_separators() -> None:
    enc = encrypt_track(K16, TRACK)
    assert decrypt_track(K16, enc.lower()) == TRACK
    assert decrypt_track(K16, enc.replace("=", "D"), separator="=") == TRACK
    assert decrypt_track(K16, enc, separator="D") == TRACK.replace("=", "D")


# --- DUKPT -------------------------------------------------------------------------------------


def test_dukpt_counter_limits() -> None:
    with pytest.raises(CryptoError, match="10 one-bits"):
        dukpt.dukpt_transaction_key(K16, H("FFFF9876543210E007FF"))
    with pytest.raises(CryptoError, match="16 one-bits"):
        dukpt.aes_dukpt_transaction_key(K16, H("1234567890123456") + H("0001FFFF"))
    with pytest.raises(CryptoError, match="KSN"):
        dukpt.dukpt_ipek(K16, bytes(9))


def test_dukpt_response_and_data_variants() -> None:
    tk = H("042666B49184CFA368DE9628D0397BC9")
    assert dukpt.dukpt_mac_response_key(tk) == H("042666B46E84CFA368DE96282F397BC9")
    assert dukpt.dukpt_data_request_variant(tk) == H("042666B4917BCFA368DE9628D0C67BC9")


# --- Luhn --------------------------------------------------------------------------------------


def test_luhn_inputs() -> None:
    assert luhn_check_digit("0") == "0"
    assert not luhn_valid("") and not luhn_valid("7") and not luhn_valid("4242 4242 4242 4242")
    assert not luhn_valid("٤٢٤٢")
    with pytest.raises(ValueError):
        luhn_check_digit("")
    with pytest.raises(ValueError):
        luhn_check_digit("12a")


# --- package hygiene ---------------------------------------------------------------------------

FORBIDDEN = {
    "asyncio",
    "socket",
    "selectors",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "typer",
    "time",
    "datetime",
    "random",
    "secrets",
    "logging",
    "os",
    "posgate.host",
    "posgate.terminal",
    "posgate.console",
    "posgate.store",
    "posgate.cli",
}


@pytest.mark.parametrize("module", sorted(p.name for p in PKG.glob("*.py")))
def test_module_has_docstring_and_no_forbidden_imports(module: str) -> None:
    tree = ast.parse((PKG / module).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and len(doc) > 80, f"{module} needs a theory-of-operation docstring"
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
                f"{module} imports {name}"
            )
