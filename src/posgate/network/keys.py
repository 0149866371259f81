"""The MAC key of one host-to-host connection, and how it travels under the zone master key.

Theory of operation (docs/upstream.md "MAC and key change", docs/decisions.md U1-U3)
----------------------------------------------------------------------------------
Each connection is a session with its own double-length MAC key (MAK): the network draws it at
sign-on and sends it in the sign-on reply, encrypted under the zone master key (ZMK) both sides
hold, followed by its check value (KCV, the first 4 bytes of E(MAK, 0…0) in hex); the acquirer
decrypts it and refuses it when the check value differs. A key change (0800, 70 = 101) replaces
it the same way, asked for by either side.

A new key takes effect for every message written after the one that delivered it. Messages
already on the wire the other way were MAC'd under the old key: :class:`SessionKeys` keeps a
replaced key for ``grace`` seconds after a change and accepts it meanwhile, so a key change
in the middle of traffic fails nothing. Keys live in memory only and never appear in a
``repr``, a log line or an exception.
"""

from __future__ import annotations

from collections.abc import Callable

from posgate.crypto import des_decrypt, des_encrypt, kcv, set_odd_parity
from posgate.dialect import network as h2h
from posgate.iso8583 import Message

KEY_BLOCK = 40  # hex characters: 32 of the key under the ZMK, 8 of its check value


def new_mak(randbytes: Callable[[int], bytes]) -> bytes:
    """A fresh double-length DES key with odd parity."""
    return set_odd_parity(randbytes(16))


def check_value(key: bytes) -> str:
    return kcv(key).hex().upper()


def wrap(zmk: bytes, key: bytes) -> str:
    """``key`` under the ZMK (ECB, 2-key TDES) + its check value: 40 upper-case hex characters."""
    return des_encrypt(zmk, key).hex().upper() + check_value(key)


def unwrap(zmk: bytes, block: str) -> bytes:
    """The key of a :func:`wrap` block. Raises ValueError when its check value does not match."""
    if len(block) != KEY_BLOCK:
        raise ValueError("a key block is 40 hex characters (key under the zone master key, check value)")
    try:
        key = des_decrypt(zmk, bytes.fromhex(block[:32]))
    except ValueError:
        raise ValueError("a key block is hex") from None
    if check_value(key) != block[32:].upper():
        raise ValueError("the key's check value does not match (wrong zone master key?)")
    return key


class SessionKeys:
    """The MAK of one connection, and the keys it replaced during ``grace`` seconds each."""

    __slots__ = ("_current", "_previous", "since", "changes")

    MAX_PREVIOUS = 4  # keys replaced within the grace window still verifying (changes in quick succession)

    def __init__(self, mak: bytes, now: float) -> None:
        self._current = mak
        self._previous: list[tuple[bytes, float]] = []  # (key, verifies until)
        self.since = now  # when the current key took effect (the periodic change reads it)
        self.changes = 0

    def __repr__(self) -> str:
        return f"SessionKeys(kcv={self.kcv}, changes={self.changes})"

    @property
    def kcv(self) -> str:
        return check_value(self._current)

    def rotate(self, mak: bytes, now: float, grace: float) -> None:
        """``mak`` signs from now on; the key it replaces still verifies for ``grace`` seconds."""
        self._previous = [(k, until) for k, until in self._previous if until > now][-(self.MAX_PREVIOUS - 1):]
        self._previous.append((self._current, now + grace))
        self._current = mak
        self.since = now
        self.changes += 1

    def sign(self, msg: Message) -> bytes:
        return h2h.sign(msg, self._current)

    def verify(self, msg: Message, now: float) -> bool:
        return h2h.mac_ok(msg, self._current, *(k for k, until in reversed(self._previous) if now < until))
