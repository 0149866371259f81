"""Sign-on working keys: generation, wrapping under the TMK, unwrapping and verification.

Theory of operation (docs/dialect.md section 4)
------------------------------------------------------------------
A terminal holds a terminal master key (TMK) loaded out of band. At every sign-on
(0800/0810) the host generates fresh working keys, the PIN key (PIK), the MAC key (MAK) and
with scheme ``004`` the track-data key (TDK), and sends them in field 62 of the 0810,
each encrypted under the TMK in TDES-ECB (every 8-byte half on its own) and followed by a
4-byte check value of the *clear* key: the leftmost 4 bytes of E(key, 8 zero bytes), with
DES for an 8-byte key and TDES for a 16-byte key. 60.3 selects the layout:

=====  ====  ==================================================================
60.3   len   layout
=====  ====  ==================================================================
001    24    PIK(8) CV(4) MAK(8) CV(4)                          single length
003    40    PIK(16) CV(4) MAK(8) 00*8 CV(4)                   double-length PIK
004    60    as 003, then TDK(16) CV(4)                         plus track key
006    60    PIK(16) CV(4) MAK(16) CV(4) TDK(16) CV(4)          SM4 (国密), below
=====  ====  ==================================================================

Scheme ``006`` is the SM4 sign-on of national-cryptography terminals (docs/dialect.md 4.4):
the TMK and all three working keys are 16-byte SM4 keys, each wrapped with SM4-ECB under the
TMK, each check value the leftmost 4 bytes of SM4(key, 16 zero bytes). SM4 keys have no
parity and no weak keys: they are 16 random bytes. The cipher is a parameter
(:class:`~posgate.crypto.ciphers.BlockCipher`), so wrapping, unwrapping and check values are
one code path for DES and SM4; :data:`SCHEME_CIPHER` says which cipher a scheme uses.

The MAK is single length in all three schemes (decision D3); the unused half of its 16-byte
slot is zeros. Some acquirers send a full 16-byte MAK in that slot instead; wrapping a
16-byte MAK produces that form and unwrapping recognises it (non-zero second half whose
TDES check value matches). The terminal side verifies every check value and raises
:class:`CheckValueError` naming the key (``"PIK"``, ``"MAK"``, ``"TDK"``) on mismatch.

Randomness is injected (``randbytes``) so that this package never touches an entropy
source itself. Generated keys get odd parity and are never DES weak or semi-weak keys,
and double-length keys never have equal halves (which would degrade TDES to DES).

:class:`WorkingKeys` never shows key bytes: its ``repr`` gives lengths and check values only.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from posgate.crypto.ciphers import DES, SM4, BlockCipher
from posgate.crypto.errors import CheckValueError, CryptoError

__all__ = [
    "SCHEMES",
    "SCHEME_CIPHER",
    "scheme_cipher",
    "WorkingKeys",
    "field62_length",
    "generate_working_keys",
    "has_odd_parity",
    "is_weak_key",
    "set_odd_parity",
    "unwrap_working_keys",
    "wrap_working_keys",
]


def _parity_table() -> bytes:
    out = bytearray(256)
    for b in range(256):
        hi = b & 0xFE
        out[b] = hi | (0 if hi.bit_count() % 2 else 1)
    return bytes(out)


_ODD_PARITY = _parity_table()

# DES weak and semi-weak keys (FIPS 74), in odd-parity form.
_WEAK_KEYS = frozenset(
    bytes.fromhex(h)
    for h in (
        "0101010101010101 FEFEFEFEFEFEFEFE E0E0E0E0F1F1F1F1 1F1F1F1F0E0E0E0E "
        "011F011F010E010E 1F011F010E010E01 01E001E001F101F1 E001E001F101F101 "
        "01FE01FE01FE01FE FE01FE01FE01FE01 1FE01FE00EF10EF1 E01FE01FF10EF10E "
        "1FFE1FFE0EFE0EFE FE1FFE1FFE0EFE0E E0FEE0FEF1FEF1FE FEE0FEE0FEF1FEF1"
    ).split()
)

#: 60.3 network-management code -> (PIK length, MAK length, TDK length or None).
SCHEMES: dict[str, tuple[int, int, int | None]] = {
    "001": (8, 8, None),
    "003": (16, 8, None),
    "004": (16, 8, 16),
    "006": (16, 16, 16),
}

#: The cipher of each scheme's keys (TMK, working keys, check values, MAC, PIN, track).
SCHEME_CIPHER: dict[str, BlockCipher] = {"001": DES, "003": DES, "004": DES, "006": SM4}

_F62_LENGTH = {"001": 24, "003": 40, "004": 60, "006": 60}
_CV_LEN = 4
_MAX_ATTEMPTS = 32


def set_odd_parity(key: bytes) -> bytes:
    """Return ``key`` with the low bit of every byte set so that each byte has odd parity."""
    return bytes(key).translate(_ODD_PARITY)


def has_odd_parity(key: bytes) -> bool:
    """True if every byte of ``key`` has an odd number of one-bits."""
    return bytes(key).translate(_ODD_PARITY) == bytes(key)


def is_weak_key(key: bytes) -> bool:
    """True for keys unfit for DES/TDES use.

    That is: any 8-byte part is a DES weak or semi-weak key (parity ignored), or a
    double/triple-length key has two equal adjacent parts (parity ignored), so that TDES
    degenerates to single DES.
    """
    k = set_odd_parity(key)
    parts = [k[i : i + 8] for i in range(0, len(k), 8)]
    if any(p in _WEAK_KEYS for p in parts):
        return True
    return any(parts[i] == parts[i + 1] for i in range(len(parts) - 1))


def _check_key(name: str, key: object, lengths: tuple[int, ...]) -> None:
    if not isinstance(key, bytes):
        raise CryptoError(f"{name} must be bytes")
    if len(key) not in lengths:
        allowed = "/".join(str(n) for n in lengths)
        raise CryptoError(f"{name} must be {allowed} bytes, got {len(key)}")


def _cv_text(key: bytes, cipher: BlockCipher) -> str:
    return f"<{len(key)} bytes, KCV {cipher.kcv(key, _CV_LEN).hex().upper()}>"


@dataclass(frozen=True, repr=False)
class WorkingKeys:
    """Clear working keys of one sign-on. ``repr`` shows lengths and check values only.

    ``cipher`` is the block cipher the keys are for: :data:`DES` (schemes 001/003/004) or
    :data:`SM4` (scheme 006).
    """

    pik: bytes
    mak: bytes
    tdk: bytes | None = None
    cipher: BlockCipher = DES

    def __post_init__(self) -> None:
        lengths = self.cipher.key_lengths
        _check_key("PIK", self.pik, lengths)
        _check_key("MAK", self.mak, lengths)
        if self.tdk is not None:
            _check_key("TDK", self.tdk, tuple(n for n in lengths if n >= 16))

    def __repr__(self) -> str:
        c = self.cipher
        tdk = "None" if self.tdk is None else _cv_text(self.tdk, c)
        alg = "" if c is DES else f", cipher={c.name}"
        return f"WorkingKeys(pik={_cv_text(self.pik, c)}, mak={_cv_text(self.mak, c)}, tdk={tdk}{alg})"

    __str__ = __repr__

    def check_values(self) -> dict[str, bytes]:
        """The 4-byte check values, by key name (what field 62 carries)."""
        kcv = self.cipher.kcv
        out = {"PIK": kcv(self.pik, _CV_LEN), "MAK": kcv(self.mak, _CV_LEN)}
        if self.tdk is not None:
            out["TDK"] = kcv(self.tdk, _CV_LEN)
        return out


def _scheme(scheme: str) -> tuple[int, int, int | None]:
    try:
        return SCHEMES[scheme]
    except (KeyError, TypeError):
        raise CryptoError(f"unknown working-key scheme {scheme!r} (expected 001, 003, 004 or 006)") from None


def scheme_cipher(scheme: str) -> BlockCipher:
    """The cipher of the keys of 60.3 ``scheme`` (SM4 for ``006``, DES/TDES otherwise)."""
    _scheme(scheme)
    return SCHEME_CIPHER[scheme]


def field62_length(scheme: str) -> int:
    """Length in bytes of field 62 of the 0810 for the 60.3 ``scheme``."""
    _scheme(scheme)
    return _F62_LENGTH[scheme]


def _random_key(length: int, randbytes: Callable[[int], bytes], cipher: BlockCipher = DES) -> bytes:
    for _ in range(_MAX_ATTEMPTS):
        raw = randbytes(length)
        if not isinstance(raw, bytes | bytearray) or len(raw) != length:
            raise CryptoError(f"randbytes({length}) did not return {length} bytes")
        if cipher is not DES:
            return bytes(raw)  # SM4: no parity bit, no weak keys
        key = set_odd_parity(bytes(raw))
        if not is_weak_key(key):
            return key
    raise CryptoError("randbytes keeps producing weak DES keys; is it really random?")


def generate_working_keys(scheme: str, randbytes: Callable[[int], bytes]) -> WorkingKeys:
    """Fresh random working keys for ``scheme`` (``"001"``, ``"003"``, ``"004"`` or ``"006"``).

    001: PIK 8, MAK 8 bytes; 003: PIK 16, MAK 8; 004: PIK 16, MAK 8, TDK 16: every key byte
    has odd parity; weak keys are drawn again. 006 (SM4): PIK, MAK, TDK 16 random bytes each.
    """
    pik_len, mak_len, tdk_len = _scheme(scheme)
    cipher = SCHEME_CIPHER[scheme]
    pik = _random_key(pik_len, randbytes, cipher)
    mak = _random_key(mak_len, randbytes, cipher)
    tdk = _random_key(tdk_len, randbytes, cipher) if tdk_len else None
    return WorkingKeys(pik=pik, mak=mak, tdk=tdk, cipher=cipher)


def _check_tmk(tmk: bytes, cipher: BlockCipher = DES) -> None:
    _check_key("TMK", tmk, cipher.key_lengths)


def _wrap_sm4(tmk: bytes, keys: WorkingKeys) -> bytes:
    if keys.cipher is not SM4 or keys.tdk is None:
        raise CryptoError("scheme 006 needs SM4 working keys with a TDK")
    out = []
    for key in (keys.pik, keys.mak, keys.tdk):
        out += [SM4.encrypt(tmk, key), SM4.kcv(key, _CV_LEN)]
    return b"".join(out)


def wrap_working_keys(tmk: bytes, scheme: str, keys: WorkingKeys) -> bytes:
    """The field-62 bytes of the 0810 (without the LLL length prefix).

    001 = 24 bytes (PIK8 CV4 MAK8 CV4); 003 = 40 (PIK16 CV4 MAK8 00*8 CV4, or a full
    16-byte MAK in the slot when ``keys.mak`` is 16 bytes); 004 = 60 (003 + TDK16 CV4).
    """
    pik_len, _, tdk_len = _scheme(scheme)
    cipher = SCHEME_CIPHER[scheme]
    _check_tmk(tmk, cipher)
    if cipher is SM4:
        return _wrap_sm4(tmk, keys)
    if keys.cipher is not DES:
        raise CryptoError(f"scheme {scheme} needs DES working keys")
    if len(keys.pik) != pik_len:
        raise CryptoError(f"scheme {scheme} needs a {pik_len}-byte PIK, got {len(keys.pik)}")
    if scheme == "001":
        if len(keys.mak) != 8:
            raise CryptoError(f"scheme 001 needs an 8-byte MAK, got {len(keys.mak)}")
        mak_slot = DES.encrypt(tmk, keys.mak)
    else:
        if len(keys.mak) not in (8, 16):
            raise CryptoError(f"scheme {scheme} needs an 8- or 16-byte MAK, got {len(keys.mak)}")
        mak_slot = DES.encrypt(tmk, keys.mak)
        if len(mak_slot) == 8:
            mak_slot += bytes(8)
    if tdk_len is None and keys.tdk is not None:
        raise CryptoError(f"scheme {scheme} carries no TDK")
    kcv = DES.kcv
    out = [
        DES.encrypt(tmk, keys.pik),
        kcv(keys.pik, _CV_LEN),
        mak_slot,
        kcv(keys.mak, _CV_LEN),
    ]
    if tdk_len is not None:
        if keys.tdk is None or len(keys.tdk) != tdk_len:
            raise CryptoError(f"scheme {scheme} needs a {tdk_len}-byte TDK")
        out += [DES.encrypt(tmk, keys.tdk), kcv(keys.tdk, _CV_LEN)]
    return b"".join(out)


def _verified(name: str, key: bytes, cv: bytes, cipher: BlockCipher = DES) -> bytes:
    if not hmac.compare_digest(cipher.kcv(key, _CV_LEN), cv):
        raise CheckValueError(name)
    return key


def unwrap_working_keys(tmk: bytes, scheme: str, field62: bytes) -> WorkingKeys:
    """Decrypt the working keys of an 0810's field 62 and verify every check value.

    Raises :class:`CheckValueError` (with ``key_name``) on a check-value mismatch and
    :class:`CryptoError` when the field has the wrong length for ``scheme``.
    """
    _, _, tdk_len = _scheme(scheme)
    cipher = SCHEME_CIPHER[scheme]
    _check_tmk(tmk, cipher)
    f = bytes(field62)
    want = _F62_LENGTH[scheme]
    if len(f) != want:
        raise CryptoError(f"field 62 for scheme {scheme} must be {want} bytes, got {len(f)}")
    if cipher is SM4:
        sm4_keys = [
            _verified(name, SM4.decrypt(tmk, f[i : i + 16]), f[i + 16 : i + 20], SM4)
            for name, i in (("PIK", 0), ("MAK", 20), ("TDK", 40))
        ]
        return WorkingKeys(pik=sm4_keys[0], mak=sm4_keys[1], tdk=sm4_keys[2], cipher=SM4)
    des_decrypt = DES.decrypt
    kcv = DES.kcv
    if scheme == "001":
        pik = _verified("PIK", des_decrypt(tmk, f[0:8]), f[8:12])
        mak = _verified("MAK", des_decrypt(tmk, f[12:20]), f[20:24])
        return WorkingKeys(pik=pik, mak=mak)
    pik = _verified("PIK", des_decrypt(tmk, f[0:16]), f[16:20])
    slot, mak_cv = f[20:36], f[36:40]
    if slot[8:] == bytes(8):
        mak = _verified("MAK", des_decrypt(tmk, slot[:8]), mak_cv)
    else:
        # A full 16-byte MAK in the slot (some acquirers); or an 8-byte MAK followed by a
        # non-zero filler, which terminals ignore (docs/dialect.md 4.1).
        mak16 = des_decrypt(tmk, slot)
        if hmac.compare_digest(kcv(mak16, _CV_LEN), mak_cv):
            mak = mak16
        else:
            mak = _verified("MAK", mak16[:8], mak_cv)
    tdk = None
    if tdk_len is not None:
        tdk = _verified("TDK", des_decrypt(tmk, f[40:56]), f[56:60])
    return WorkingKeys(pik=pik, mak=mak, tdk=tdk)
