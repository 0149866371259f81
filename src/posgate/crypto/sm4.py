"""SM4 (GB/T 32907-2016, 国密 block cipher) in ECB mode over ``cryptography``'s ``algorithms.SM4``.

Theory of operation
-------------------
SM4 has a 128-bit key and a 128-bit block. The CUP national-cryptography terminal methods
(sign-on key wrapping, the POS MAC, the PIN block and the track data block, docs/dialect.md
section 4.4) only ever need the raw block cipher on whole 16-byte blocks, so this module
offers ECB only; the methods are built in :mod:`posgate.crypto.keys`, ``mac``, ``pinblock``
and ``track`` with the cipher as a parameter (:mod:`posgate.crypto.ciphers`). No cipher is
written by hand: OpenSSL does the rounds.

As in :mod:`posgate.crypto.tdes`, a context is built once per key and cached with a lock of
its own (a context must not be entered by two threads at once). Key bytes are used as cache
keys but never formatted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from posgate.crypto.errors import CryptoError

__all__ = ["BLOCK", "clear_sm4_cache", "sm4_decrypt", "sm4_encrypt"]

#: SM4 block and key length in bytes.
BLOCK = 16

_Entry = tuple[threading.Lock, Callable[[bytes], bytes]]


def _key_bytes(key: bytes) -> bytes:
    if type(key) is bytes:
        k = key
    elif isinstance(key, bytearray | memoryview):
        k = bytes(key)
    else:
        raise CryptoError("SM4 key must be bytes")
    if len(k) != BLOCK:
        raise CryptoError(f"SM4 key must be 16 bytes, got {len(k)}")
    return k


def _check_data(data: bytes) -> None:
    if len(data) % BLOCK:
        raise CryptoError(f"SM4 data must be a multiple of 16 bytes, got {len(data)}")


@lru_cache(maxsize=1024)
def _encryptor(key: bytes) -> _Entry:
    return threading.Lock(), Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update


@lru_cache(maxsize=1024)
def _decryptor(key: bytes) -> _Entry:
    return threading.Lock(), Cipher(algorithms.SM4(key), modes.ECB()).decryptor().update


def sm4_encrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB encrypt whole 16-byte blocks under a 16-byte key (cached context per key)."""
    _check_data(data)
    lock, update = _encryptor(_key_bytes(key))
    with lock:
        return update(bytes(data))


def sm4_decrypt(key: bytes, data: bytes) -> bytes:
    """SM4-ECB decrypt whole 16-byte blocks (inverse of :func:`sm4_encrypt`)."""
    _check_data(data)
    lock, update = _decryptor(_key_bytes(key))
    with lock:
        return update(bytes(data))


def clear_sm4_cache() -> None:
    """Drop every cached SM4 context."""
    _encryptor.cache_clear()
    _decryptor.cache_clear()
