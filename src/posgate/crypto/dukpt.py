"""DUKPT key derivation: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3:2017), host side.

Theory of operation (docs/dialect.md appendix A)
-----------------------------------------
Derived Unique Key Per Transaction: every device holds an initial key derived from a base
derivation key (BDK) and its key serial number (KSN); each transaction uses a key derived
from the initial key along the one-bits of the KSN's transaction counter, so the host can
recompute any transaction key from BDK + KSN while a device never keeps past keys.

*TDES*: KSN = 10 bytes, the low 21 bits are the counter (at most 10 one-bits).
IPEK = ``TDES_BDK(ksn8) || TDES_(BDK xor C0C0C0C000000000C0C0C0C000000000)(ksn8)`` where
ksn8 is the leftmost 8 bytes of the KSN with the counter cleared. The transaction key walks
counter bits 20..0, applying the non-reversible key generation NRKG for every set bit.
PIN / MAC-request / MAC-response / data-request keys are XOR variants of it. (The extra
one-way step of the data-encryption key has no verified vector and is not provided.)

*AES*: KSN = 12 bytes: 8-byte initial key ID (IKID) + 32-bit counter (at most 16 one-bits).
Keys are derived by AES-ECB of a 16-byte derivation-data block (version 01, block counter,
key usage, algorithm, key length in bits, 8 bytes of context), two blocks for 256-bit keys.
IK = derive(BDK, usage 8001, IKID); transaction key = walk counter bits 31..0 with
derive(key, usage 8000, IKID[4:8] || working counter). (Working-key derivation from the
transaction key has no verified vector and is not provided.)

Derived keys are one-shot, so the uncached cipher paths are used: they must not push the
long-lived PIK/MAK contexts out of the cache.
"""

from __future__ import annotations

from posgate.crypto.aes import aes_encrypt_uncached
from posgate.crypto.errors import CryptoError
from posgate.crypto.tdes import des_encrypt_uncached

__all__ = [
    "aes_dukpt_derive",
    "aes_dukpt_initial_key",
    "aes_dukpt_transaction_key",
    "dukpt_data_request_variant",
    "dukpt_ipek",
    "dukpt_mac_request_key",
    "dukpt_mac_response_key",
    "dukpt_pin_key",
    "dukpt_transaction_key",
]

_C0 = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
_COUNTER_MASK = (1 << 21) - 1
_PIN_VARIANT = bytes.fromhex("00000000000000FF00000000000000FF")
_MAC_REQ_VARIANT = bytes.fromhex("000000000000FF00000000000000FF00")
_MAC_RESP_VARIANT = bytes.fromhex("00000000FF00000000000000FF000000")
_DATA_REQ_VARIANT = bytes.fromhex("0000000000FF00000000000000FF0000")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _check(name: str, value: object, lengths: tuple[int, ...]) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) not in lengths:
        allowed = "/".join(str(n) for n in lengths)
        raise CryptoError(f"{name} must be {allowed} bytes")
    return bytes(value)


# --- TDES DUKPT --------------------------------------------------------------------------------


def _tdes_ksn(ksn: bytes) -> tuple[int, int]:
    """(KSN as int with the counter cleared, counter); validates the counter."""
    k = int.from_bytes(_check("TDES DUKPT KSN", ksn, (10,)), "big")
    counter = k & _COUNTER_MASK
    if counter.bit_count() > 10:
        raise CryptoError("TDES DUKPT counter has more than 10 one-bits")
    return k & ~_COUNTER_MASK, counter


def dukpt_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """TDES DUKPT initial key (IPEK) of the device with this KSN, from a 16-byte BDK."""
    bdk = _check("TDES DUKPT BDK", bdk, (16,))
    base, _ = _tdes_ksn(ksn)
    ksn8 = (base >> 16).to_bytes(8, "big")
    return des_encrypt_uncached(bdk, ksn8) + des_encrypt_uncached(_xor(bdk, _C0), ksn8)


def _nrkg(key: bytes, reg: bytes) -> bytes:
    """Non-reversible key generation of X9.24-1 (one step of the key walk)."""
    kl, kr = key[:8], key[8:]
    right = _xor(des_encrypt_uncached(kl, _xor(reg, kr)), kr)
    k2 = _xor(key, _C0)
    left = _xor(des_encrypt_uncached(k2[:8], _xor(reg, k2[8:])), k2[8:])
    return left + right


def dukpt_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """TDES DUKPT transaction ("current") key for ``ksn``, derived from the IPEK."""
    key = _check("TDES DUKPT IPEK", ipek, (16,))
    base, counter = _tdes_ksn(ksn)
    reg = base & ((1 << 64) - 1)
    for bit in range(20, -1, -1):
        if counter >> bit & 1:
            reg |= 1 << bit
            key = _nrkg(key, reg.to_bytes(8, "big"))
    return key


def dukpt_pin_key(transaction_key: bytes) -> bytes:
    """PIN encryption key variant of a TDES DUKPT transaction key."""
    return _xor(_check("transaction key", transaction_key, (16,)), _PIN_VARIANT)


def dukpt_mac_request_key(transaction_key: bytes) -> bytes:
    """MAC (request) key variant of a TDES DUKPT transaction key."""
    return _xor(_check("transaction key", transaction_key, (16,)), _MAC_REQ_VARIANT)


def dukpt_mac_response_key(transaction_key: bytes) -> bytes:
    """MAC (response) key variant of a TDES DUKPT transaction key."""
    return _xor(_check("transaction key", transaction_key, (16,)), _MAC_RESP_VARIANT)


def dukpt_data_request_variant(transaction_key: bytes) -> bytes:
    """Data (request) key *variant*, before X9.24-1's one-way step (which is not provided)."""
    return _xor(_check("transaction key", transaction_key, (16,)), _DATA_REQ_VARIANT)


# --- AES DUKPT ---------------------------------------------------------------------------------

_AES_ALGORITHM = {16: 0x0002, 24: 0x0003, 32: 0x0004}
USAGE_INITIAL_KEY = 0x8001
USAGE_DERIVATION_KEY = 0x8000


def aes_dukpt_derive(key: bytes, usage: int, context: bytes, length: int | None = None) -> bytes:
    """X9.24-3 key derivation: AES-ECB_key of the derivation-data block(s).

    ``length`` is the derived key length in bytes (16/24/32; default: same as ``key``).
    """
    key = _check("AES DUKPT key", key, (16, 24, 32))
    context = _check("AES DUKPT context", context, (8,))
    n = len(key) if length is None else length
    if n not in _AES_ALGORITHM:
        raise CryptoError("AES DUKPT derived key must be 16, 24 or 32 bytes")
    out = b""
    for block in range(1, (n + 15) // 16 + 1):
        dd = (
            bytes((0x01, block))
            + usage.to_bytes(2, "big")
            + _AES_ALGORITHM[n].to_bytes(2, "big")
            + (n * 8).to_bytes(2, "big")
            + context
        )
        out += aes_encrypt_uncached(key, dd)
    return out[:n]


def aes_dukpt_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """AES DUKPT initial key (IK) from the BDK and the 8-byte initial key ID."""
    return aes_dukpt_derive(bdk, USAGE_INITIAL_KEY, _check("initial key ID", initial_key_id, (8,)))


def aes_dukpt_transaction_key(initial_key: bytes, ksn: bytes) -> bytes:
    """AES DUKPT transaction-derivation key for the 12-byte KSN (IKID || counter)."""
    key = _check("AES DUKPT initial key", initial_key, (16, 24, 32))
    ksn = _check("AES DUKPT KSN", ksn, (12,))
    counter = int.from_bytes(ksn[8:], "big")
    if counter.bit_count() > 16:
        raise CryptoError("AES DUKPT counter has more than 16 one-bits")
    working = 0
    for bit in range(31, -1, -1):
        if counter >> bit & 1:
            working |= 1 << bit
            key = aes_dukpt_derive(key, USAGE_DERIVATION_KEY, ksn[4:8] + working.to_bytes(4, "big"))
    return key
