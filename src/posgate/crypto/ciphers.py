"""The block cipher of a terminal's keys, as a parameter: DES/TDES or SM4 (国密).

Theory of operation
-------------------
A CUP terminal uses one cipher for everything its keys do: wrapping the working keys under
the TMK, their check values, the MAC, the PIN block and the track data block. The methods
are the same with either cipher, only the block grows from 8 to 16 bytes (docs/dialect.md
4.4). So each method is written once, in :mod:`~posgate.crypto.keys`, ``mac``, ``pinblock``
and ``track``, and takes a :class:`BlockCipher`; :data:`DES` is the default everywhere, so
every existing caller keeps its behaviour.

A check value is the cipher of one all-zero block under the clear key, leftmost bytes kept:
ANSI X9.24-1 for DES/TDES (8 zero bytes) and, for SM4, 16 zero bytes — the form a Chinese
bank's SM4 sign-on checks (docs/decisions.md N2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from posgate.crypto.errors import CryptoError
from posgate.crypto.sm4 import sm4_decrypt, sm4_encrypt
from posgate.crypto.tdes import des_decrypt, des_encrypt

__all__ = ["ALGORITHMS", "DES", "SM4", "BlockCipher", "cipher_for"]


@dataclass(frozen=True, slots=True)
class BlockCipher:
    """One block cipher in ECB mode: its name, block length and key lengths."""

    name: str  # "des" | "sm4": the per-terminal setting
    block: int  # bytes
    key_lengths: tuple[int, ...]
    encrypt: Callable[[bytes, bytes], bytes]
    decrypt: Callable[[bytes, bytes], bytes]

    def kcv(self, key: bytes, length: int = 4) -> bytes:
        """Key check value: the leftmost ``length`` bytes of E(key, one zero block)."""
        if not 1 <= length <= self.block:
            raise CryptoError(f"KCV length must be 1..{self.block} bytes, got {length}")
        return self.encrypt(key, bytes(self.block))[:length]

    def __repr__(self) -> str:
        return f"BlockCipher({self.name})"


DES = BlockCipher("des", 8, (8, 16, 24), des_encrypt, des_decrypt)
SM4 = BlockCipher("sm4", 16, (16,), sm4_encrypt, sm4_decrypt)

#: Per-terminal algorithm name -> cipher.
ALGORITHMS: dict[str, BlockCipher] = {"des": DES, "sm4": SM4}


def cipher_for(algorithm: str) -> BlockCipher:
    """The cipher named by a terminal's ``algorithm`` setting (``des`` or ``sm4``)."""
    try:
        return ALGORITHMS[algorithm]
    except (KeyError, TypeError):
        raise CryptoError(f"unknown key algorithm {algorithm!r} (expected des or sm4)") from None
