"""AES-ECB block operations for ISO 9564 PIN block format 4 and AES DUKPT.

Theory of operation
-------------------
Format 4 PIN blocks and AES DUKPT only ever need the raw block cipher (ECB on whole 16-byte
blocks); the modes are built on top in :mod:`posgate.crypto.pinblock` and
:mod:`posgate.crypto.dukpt`. As in :mod:`posgate.crypto.tdes`, contexts for long-lived keys
(the format-4 PIN key) are cached per key with a lock each, because building a context
costs several times more than using one. One-shot keys (DUKPT derivations) use
:func:`aes_encrypt_uncached` so that they do not evict the long-lived ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from posgate.crypto.errors import CryptoError

__all__ = ["aes_decrypt", "aes_encrypt", "aes_encrypt_uncached", "clear_aes_cache"]

_Entry = tuple[threading.Lock, Callable[[bytes], bytes]]


def _algorithm(key: bytes) -> algorithms.AES:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise CryptoError("AES key must be bytes")
    if len(key) not in (16, 24, 32):
        raise CryptoError(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
    return algorithms.AES(bytes(key))


def _key_bytes(key: bytes) -> bytes:
    if type(key) is bytes:
        return key
    if isinstance(key, bytearray | memoryview):
        return bytes(key)
    raise CryptoError("AES key must be bytes")


def _check_data(data: bytes) -> None:
    if len(data) % 16:
        raise CryptoError(f"AES data must be a multiple of 16 bytes, got {len(data)}")


@lru_cache(maxsize=1024)
def _encryptor(key: bytes) -> _Entry:
    return threading.Lock(), Cipher(_algorithm(key), modes.ECB()).encryptor().update


@lru_cache(maxsize=1024)
def _decryptor(key: bytes) -> _Entry:
    return threading.Lock(), Cipher(_algorithm(key), modes.ECB()).decryptor().update


def aes_encrypt(key: bytes, data: bytes) -> bytes:
    """AES-ECB encrypt whole 16-byte blocks (cached context per key)."""
    _check_data(data)
    lock, update = _encryptor(_key_bytes(key))
    with lock:
        return update(data)


def aes_decrypt(key: bytes, data: bytes) -> bytes:
    """AES-ECB decrypt whole 16-byte blocks (cached context per key)."""
    _check_data(data)
    lock, update = _decryptor(_key_bytes(key))
    with lock:
        return update(data)


def aes_encrypt_uncached(key: bytes, data: bytes) -> bytes:
    """AES-ECB encrypt with a one-shot context (for single-use derived keys)."""
    _check_data(data)
    return Cipher(_algorithm(key), modes.ECB()).encryptor().update(data)


def clear_aes_cache() -> None:
    """Drop every cached AES context."""
    _encryptor.cache_clear()
    _decryptor.cache_clear()
