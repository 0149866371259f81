"""Exceptions of :mod:`posgate.crypto`.

Every failure in this package is a :class:`CryptoError` (a ``ValueError``), so callers that
parse untrusted messages can catch one type. The messages say *what* went wrong (which key,
which length, which rule) and never carry key bytes, check values, PINs, PIN blocks or track
data: exception text ends up in logs, and logs are not a place for card secrets.
"""

from __future__ import annotations


class CryptoError(ValueError):
    """Base class; the message never contains key, PIN or track material."""


class CheckValueError(CryptoError):
    """A working key's check value does not match (sign-on must be aborted).

    ``key_name`` says which key failed: ``"PIK"``, ``"MAK"`` or ``"TDK"``.
    """

    def __init__(self, key_name: str) -> None:
        super().__init__(f"{key_name} check value mismatch")
        self.key_name = key_name


class PinBlockError(CryptoError):
    """A PIN block is malformed or cannot be decoded (wrong key, wrong PAN, wrong format)."""
