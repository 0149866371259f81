"""CUP track-data encryption with the TDK (fields 35/36 when 53.3 = ``1``).

Theory of operation (docs/dialect.md 6.3)
-------------------------------------------------------------
A track is a string of BCD nibbles: digits, and the field separator written ``=`` or as
nibble ``D``. Only one 8-byte block is encrypted, the *track data block* (TDB): pack the
track to BCD (append a ``0`` nibble when the digit count is odd); the TDB is the 8 bytes
that end just before the last byte, ``bcd[-9:-1]``. It is replaced in place by its 2-key
TDES-ECB encryption under the TDK, then the track is unpacked and the padding nibble
dropped, so the length is unchanged. Tracks shorter than 17 digits are left-padded with
``F`` first (LY terminal rule); decryption strips leading ``F`` nibbles again. The start of
the PAN and usually the separator stay in clear.

Alphabet: the encrypted block is hex, so an encrypted track contains ``A``–``F`` nibbles.
A track is rendered with nibble ``D`` written as the *separator character*, ``=`` or ``D``:
in the ``=`` form a ``D`` nibble of the ciphertext is written ``=`` too, which is exactly how
a BCD track codec that maps nibble D to ``=`` (field 35/36 on the wire) shows the bytes.
Both functions accept ``=`` and ``D`` on input (lower-case hex too).

Which form comes back: :func:`encrypt_track` reads it off its clear input (``D`` if the
track is written with one, else ``=``), which is exact. :func:`decrypt_track` must not guess from the
*ciphertext*: with a 14-, 16- or 18-digit PAN the separator itself lies in the encrypted
block, and about one key in three (15/16 to the 16th power) gives a block with no ``D``
nibble, so the encrypted string then shows no separator at all. Reading that as "the ``D``
form" once returned the PAN run into the expiry date, and the host declined a good card
``14``. So a track is in the ``D`` form only if it shows a ``D``; otherwise it is taken as
the ``=`` form, the form of the wire and of the card reader. Pass ``separator=`` to be exact.

After decryption the block must hold track nibbles only (digits, ``D``, leading ``F``);
anything else means a wrong TDK and raises :class:`CryptoError`. No message contains track
data.
"""

from __future__ import annotations

from posgate.crypto.errors import CryptoError
from posgate.crypto.tdes import des_decrypt, des_encrypt

__all__ = ["decrypt_track", "encrypt_track", "track_data_block"]

_MIN_DIGITS = 17
_CLEAR_NIBBLES = frozenset("0123456789D")
_ANY_NIBBLES = frozenset("0123456789ABCDEF")


def _separator(track: str, separator: str | None) -> str:
    if separator is None:
        # '=' unless the input visibly is in the D form (module docstring: a ciphertext
        # block may hide the separator, so its absence must not decide).
        return "D" if "D" in track.upper() and "=" not in track else "="
    if separator not in ("=", "D"):
        raise CryptoError("track separator must be '=' or 'D'")
    return separator


def _nibbles(track: str, allowed: frozenset[str]) -> str:
    if not isinstance(track, str):
        raise CryptoError("track must be a str")
    s = track.upper().replace("=", "D")
    if not s or not set(s) <= allowed:
        raise CryptoError("track contains characters outside its alphabet")
    return s


def _padded(s: str) -> tuple[str, int, bool]:
    """(even-length nibble string with >= 18 nibbles, F nibbles prepended, 0 appended?)."""
    lead = max(0, _MIN_DIGITS - len(s))
    s = "F" * lead + s
    odd = len(s) % 2 == 1
    return (s + "0" if odd else s), lead, odd


def _render(s: str, sep: str) -> str:
    return s if sep == "D" else s.replace("D", "=")


def track_data_block(track: str) -> bytes:
    """The clear 8-byte TDB of ``track``: ``bcd[-9:-1]`` after the padding rules above."""
    s, _, _ = _padded(_nibbles(track, _CLEAR_NIBBLES))
    return bytes.fromhex(s[-18:-2])


def encrypt_track(tdk: bytes, track: str, *, separator: str | None = None) -> str:
    """Encrypt the TDB of ``track`` (digits with ``=`` or ``D``) under the TDK.

    Returns the track in the same alphabet as the input (see the module docstring).
    """
    sep = _separator(track, separator)
    s, _, odd = _padded(_nibbles(track, _CLEAR_NIBBLES))
    enc = des_encrypt(tdk, bytes.fromhex(s[-18:-2])).hex().upper()
    out = s[:-18] + enc + s[-2:]
    return _render(out[:-1] if odd else out, sep)


def decrypt_track(tdk: bytes, track: str, *, separator: str | None = None) -> str:
    """Inverse of :func:`encrypt_track`; raises :class:`CryptoError` if the result is not a track."""
    sep = _separator(track, separator)
    s = _nibbles(track, _ANY_NIBBLES)
    if len(s) < _MIN_DIGITS:
        raise CryptoError(f"encrypted track must have at least {_MIN_DIGITS} nibbles, got {len(s)}")
    odd = len(s) % 2 == 1
    if odd:
        s += "0"
    clear = s[:-18] + des_decrypt(tdk, bytes.fromhex(s[-18:-2])).hex().upper() + s[-2:]
    if odd:
        clear = clear[:-1]
    clear = clear.lstrip("F")
    if not clear or not set(clear) <= _CLEAR_NIBBLES:
        raise CryptoError("decrypted track is not track data (wrong TDK?)")
    return _render(clear, sep)
